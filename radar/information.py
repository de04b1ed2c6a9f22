"""What Z_DR and K_DP tell about a cell's future beyond Z_H: a model-free check of the radar
nature run's truth (``benchmarks/radar_information.py`` runs it in both worlds).

Following each cell (its centre, from the nature run's cell list), at every step where the
cell shows echo at the lowest height, the target is the change of Z_H at that height
``lead`` steps later (at the cell's centre then). Two least-squares regressions with
quadratic terms and pairwise products predict it: from Z_H now and ``hist`` steps earlier
(level and trend) at every height, and from the same plus Z_DR and K_DP now. Each is fitted
on the first half of the records (by time) and scored on the second half (out-of-sample
R^2), so terms that carry nothing do not raise the score: the gain is the information a
network could learn from the dual-polarisation variables, about 0 in the control world.
"""
from __future__ import annotations

import numpy as np

from radar.nature_run import World


def cell_records(world: World, heights: list[float], lead: int, hist: int) -> dict:
    """Per (cell, step): Z_H now and ``hist`` steps earlier, Z_DR and K_DP now at ``heights``,
    the change of Z_H at the lowest height ``lead`` steps later (following the cell), and
    the cell's true life phase and lifetime (steps), which no observation gives."""
    iz = [int(np.argmin(np.abs(world.heights - h))) for h in heights]
    cache: dict[int, dict] = {}

    def field(k):
        if k not in cache:
            cache[k] = world.fields(k)
        return cache[k]

    def at(k, x, y):
        f = field(k)
        jx = int(np.argmin(np.abs(world.x - x)))
        jy = int(np.argmin(np.abs(world.x - y)))
        return f["DBZH"][iz, jy, jx], f["ZDR"][iz, jy, jx], f["KDP"][iz, jy, jx]

    rows = []
    for k in range(hist, world.s["steps"] - lead):
        idx, phase, cx, cy = world.cell_positions(k)
        pos = {}
        for kk in (k - hist, k + lead):
            i2, _, x2, y2 = world.cell_positions(kk)
            pos[kk] = dict(zip(i2, zip(x2, y2)))
        for i, p, xi, yi in zip(idx, phase, cx, cy):
            if i not in pos[k + lead]:
                continue
            z, zdr, kdp = at(k, xi, yi)
            if z[0] <= 0:
                continue
            # before its birth a cell has no echo: its earlier Z_H is the floor at its position now
            z_old = at(k - hist, *pos[k - hist][i])[0] if i in pos[k - hist] else np.zeros_like(z)
            z_new = at(k + lead, *pos[k + lead][i])[0]
            rows.append((k, *z, *z_old, *zdr, *kdp, p, world.life[i], z_new[0] - z[0]))
        for kk in [kk for kk in cache if kk < k - hist + 1]:
            cache.pop(kk)
    a = np.array(rows, float)
    n = len(iz)
    return {"step": a[:, 0], "dbz": a[:, 1:1 + n], "dbz_old": a[:, 1 + n:1 + 2 * n],
            "zdr": a[:, 1 + 2 * n:1 + 3 * n], "kdp": a[:, 1 + 3 * n:1 + 4 * n], "phase": a[:, -3],
            "lifetime": a[:, -2], "target": a[:, -1]}


def _standardised(cols: list[np.ndarray]) -> np.ndarray:
    x = np.column_stack(cols)
    return (x - x.mean(0)) / np.where(x.std(0) > 0, x.std(0), 1.0)


def _design(cols: list[np.ndarray]) -> np.ndarray:
    """Intercept, the standardised columns, their squares and pairwise products."""
    x = _standardised(cols)
    quad = [x[:, i] * x[:, j] for i in range(x.shape[1]) for j in range(i, x.shape[1])]
    return np.column_stack([np.ones(len(x)), x, *quad])


def oos_r2(x: np.ndarray, y: np.ndarray, train: np.ndarray) -> float:
    """R^2 on the records outside ``train`` of the least-squares fit on ``train``."""
    coef = np.linalg.lstsq(x[train], y[train], rcond=None)[0]
    resid = y[~train] - x[~train] @ coef
    return float(1 - resid.var() / y[~train].var())


def information(rec: dict) -> dict:
    """Out-of-sample R^2 of the Z_H change from Z_H level and trend (quadratic terms and
    products), and with Z_DR and K_DP at every height added as linear terms; their gain.
    For reference, the R^2 with the cells' true life phase or true log lifetime added to
    Z_H's terms instead (what a perfect observation of either would give)."""
    train = rec["step"] < np.median(rec["step"])
    zh = _design([rec["dbz"], rec["dbz"] - rec["dbz_old"]])
    dp = np.column_stack([zh, _standardised([rec["zdr"], rec["kdp"]])])
    r_zh = oos_r2(zh, rec["target"], train)
    r_dp = oos_r2(dp, rec["target"], train)
    base = [rec["dbz"], rec["dbz"] - rec["dbz_old"]]
    r_phase = oos_r2(_design(base + [rec["phase"][:, None]]), rec["target"], train)
    r_life = oos_r2(_design(base + [np.log(rec["lifetime"])[:, None]]), rec["target"], train)
    return {"records": int(len(rec["target"])), "r2_zh": round(r_zh, 3), "r2_dualpol": round(r_dp, 3),
            "gain": round(r_dp - r_zh, 3), "r2_zh_true_phase": round(r_phase, 3),
            "r2_zh_true_lifetime": round(r_life, 3)}


def lagrangian_records(world: World, heights: list[float], lead: int, hist: int, every: int = 2,
                       per_step: int = 200, threshold_dbz: float = 10.0, seed: int = 0) -> dict:
    """Per echo pixel, as a nowcast sees it: at every ``every``-th step, up to ``per_step``
    random grid points with Z_H >= ``threshold_dbz`` at the lowest height; Z_H now and
    ``hist`` steps earlier (moved along the steering flow to where it is now), Z_DR and K_DP
    now at ``heights``, and the target: Z_H at the lowest height ``lead`` steps later, moved
    back along the flow (0 where the echo has gone). Unlike :func:`cell_records`, echo that
    dies within the lead and overlapping cells are kept."""
    iz = [int(np.argmin(np.abs(world.heights - h))) for h in heights]
    dx = world.x[1] - world.x[0]
    cache: dict[int, dict] = {}
    rng = np.random.default_rng(seed)

    def field(k):
        if k not in cache:
            cache[k] = world.fields(k)
        return cache[k]

    def moved(a, k0, k1):  # a field valid at k0, carried by the flow to k1 (periodic domain)
        sx = int(round((world.disp_x[k1] - world.disp_x[k0]) / dx))
        sy = int(round((world.disp_y[k1] - world.disp_y[k0]) / dx))
        return np.roll(a, (sy, sx), axis=(-2, -1))

    parts: dict[str, list] = {k: [] for k in ("step", "dbz", "dbz_old", "zdr", "kdp", "future")}
    for k in range(hist, world.s["steps"] - lead, every):
        f = field(k)
        z = f["DBZH"][iz].reshape(len(iz), -1)
        pick = np.flatnonzero(z[0] >= threshold_dbz)
        if len(pick) > per_step:
            pick = np.sort(rng.choice(pick, per_step, replace=False))
        parts["step"].append(np.full(len(pick), k))
        parts["dbz"].append(z[:, pick].T)
        parts["dbz_old"].append(moved(field(k - hist)["DBZH"][iz], k - hist, k).reshape(len(iz), -1)[:, pick].T)
        parts["zdr"].append(f["ZDR"][iz].reshape(len(iz), -1)[:, pick].T)
        parts["kdp"].append(f["KDP"][iz].reshape(len(iz), -1)[:, pick].T)
        parts["future"].append(moved(field(k + lead)["DBZH"][iz[0]], k + lead, k).ravel()[pick])
        for kk in [kk for kk in cache if kk < k - hist + every]:
            cache.pop(kk)
    rec = {k: np.concatenate(v) for k, v in parts.items()}
    rec["target"] = rec["future"] - rec["dbz"][:, 0]
    return rec


def lagrangian_information(rec: dict) -> dict:
    """Out-of-sample R^2 (fitted on the first half of the steps, scored on the second) of the
    ``lead``-step Z_H change of :func:`lagrangian_records`: from Z_H level and trend
    (quadratic terms and products), and with Z_DR and K_DP at every height added as linear
    terms; their gain (about 0 in the control world)."""
    train = rec["step"] < np.median(rec["step"])
    zh = _design([rec["dbz"], rec["dbz"] - rec["dbz_old"]])
    dp = np.column_stack([zh, _standardised([rec["zdr"], rec["kdp"]])])
    r_zh, r_dp = oos_r2(zh, rec["target"], train), oos_r2(dp, rec["target"], train)
    return {"records": int(len(rec["target"])), "r2_zh": round(r_zh, 3), "r2_dualpol": round(r_dp, 3),
            "gain": round(r_dp - r_zh, 3)}


def partial_correlation(x, y, control) -> float:
    """Correlation of x and y after removing from both their linear regression on ``control``
    (and a cubic in it)."""
    c = np.asarray(control, float)
    basis = np.column_stack([np.ones_like(c), c, c ** 2, c ** 3])
    rx = x - basis @ np.linalg.lstsq(basis, x, rcond=None)[0]
    ry = y - basis @ np.linalg.lstsq(basis, y, rcond=None)[0]
    return float(np.corrcoef(rx, ry)[0, 1])
