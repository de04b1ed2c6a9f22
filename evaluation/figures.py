"""Figures of the verification (PNG). Every panel of a figure shares one colour scale.

- ``cases.png``: truth | experiments | persistence for the heaviest-rain test cases and one
  random case (rain, sequential palette, one scale for all panels);
- ``difference_maps.png``: prediction - truth for each experiment (diverging, centred on 0),
  per case and the mean over the test period;
- ``error_maps.png``: mean absolute error per cell of each experiment and of persistence and,
  with two experiments, ``|err2| - |err1|`` (blue: the second experiment is better);
- ``categorical_scores.png``: CSI, POD, FAR by threshold with bootstrap whiskers and seed dots;
- ``performance_diagram.png``: Roebber (2009) diagram (success ratio, POD, CSI, bias);
- ``fss.png``: FSS against window size per threshold;
- ``loss_curves.png``: training and validation loss of every run.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from evaluation import baselines as bl  # noqa: E402
from evaluation.bootstrap import percentile_interval  # noqa: E402

DPI = 100
COLORS = {"persistence": "tab:gray", "climatology": "tab:olive", "zero": "tab:brown"}
EXP_COLORS = ["tab:blue", "tab:red", "tab:green", "tab:purple"]


def _colors(groups) -> dict:
    out, k = {}, 0
    for g in groups:
        if g.kind == "experiment":
            out[g.name] = EXP_COLORS[k % len(EXP_COLORS)]
            k += 1
        else:
            out[g.name] = COLORS.get(g.name, "k")
    return out


def _save(fig, path: Path) -> None:
    fig.savefig(path, dpi=DPI)  # constrained layout already fits the labels
    plt.close(fig)


def _grid_axes(nrows, ncols, size=2.6):
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols + 1.2, size * nrows + 0.4), squeeze=False,
                             sharex=True, sharey=True, layout="constrained")
    return fig, axes


def select_cases(truth_mean: np.ndarray, n_cells: np.ndarray, n_cases: int, seed: int) -> tuple[list[int], int | None]:
    """Indices of the ``n_cases`` heaviest-rain times (mean truth over scored cells) and of
    one random other time (seeded)."""
    usable = np.flatnonzero(n_cells > 0)
    order = usable[np.argsort(-truth_mean[usable], kind="stable")]
    heavy = [int(i) for i in order[:n_cases]]
    rest = np.setdiff1d(usable, heavy)
    rnd = int(np.random.default_rng(seed).choice(rest)) if len(rest) else None
    return heavy, rnd


def plot_cases(path, lat, lon, titles, columns: dict[str, np.ndarray], units="mm / 12 h"):
    """Rows = cases, columns = fields (``columns[label]`` is ``(n_cases, lat, lon)``)."""
    labels = list(columns)
    values = np.concatenate([np.ravel(v) for v in columns.values()])
    vmax = max(1.0, float(np.nanmax(values))) if np.isfinite(values).any() else 1.0
    cmap = plt.get_cmap("YlGnBu").with_extremes(bad="0.85")
    fig, axes = _grid_axes(len(titles), len(labels))
    for i, title in enumerate(titles):
        for j, label in enumerate(labels):
            ax = axes[i, j]
            mesh = ax.pcolormesh(lon, lat, columns[label][i], cmap=cmap, vmin=0, vmax=vmax, shading="nearest")
            ax.set_title(f"{label}\n{title}" if j == 0 else label, fontsize=8)
    fig.colorbar(mesh, ax=axes, shrink=0.8, label=f"rain ({units})")
    _save(fig, path)


def plot_diverging(path, lat, lon, titles, columns: dict[str, np.ndarray], label: str):
    """Diverging maps centred on 0 with one symmetric scale (rows = titles)."""
    labels = list(columns)
    values = np.concatenate([np.ravel(v) for v in columns.values()])
    vmax = float(np.nanmax(np.abs(values))) if np.isfinite(values).any() else 1.0
    vmax = vmax if vmax > 0 else 1.0
    cmap = plt.get_cmap("RdBu_r").with_extremes(bad="0.85")
    fig, axes = _grid_axes(len(titles), len(labels))
    for i, title in enumerate(titles):
        for j, lab in enumerate(labels):
            ax = axes[i, j]
            mesh = ax.pcolormesh(lon, lat, columns[lab][i], cmap=cmap, vmin=-vmax, vmax=vmax, shading="nearest")
            ax.set_title(f"{lab}\n{title}" if j == 0 else lab, fontsize=8)
    fig.colorbar(mesh, ax=axes, shrink=0.8, label=label)
    _save(fig, path)


def plot_error_maps(path, lat, lon, mae: dict[str, np.ndarray], difference: tuple[str, np.ndarray] | None):
    n = len(mae) + (difference is not None)
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n + 1, 3.2), squeeze=False, layout="constrained")
    cmap = plt.get_cmap("magma_r").with_extremes(bad="0.85")
    vals = np.concatenate([np.ravel(v) for v in mae.values()])
    vmax = float(np.nanmax(vals)) if np.isfinite(vals).any() else 1.0
    for j, (lab, field) in enumerate(mae.items()):
        mesh = axes[0, j].pcolormesh(lon, lat, field, cmap=cmap, vmin=0, vmax=vmax, shading="nearest")
        axes[0, j].set_title(f"MAE {lab}", fontsize=9)
    fig.colorbar(mesh, ax=axes[0, :len(mae)], shrink=0.8, label="mean absolute error (mm / 12 h)")
    if difference is not None:
        lab, field = difference
        v = float(np.nanmax(np.abs(field))) if np.isfinite(field).any() else 1.0
        v = v if v > 0 else 1.0
        cm = plt.get_cmap("RdBu_r").with_extremes(bad="0.85")
        mesh = axes[0, -1].pcolormesh(lon, lat, field, cmap=cm, vmin=-v, vmax=v, shading="nearest")
        axes[0, -1].set_title(lab, fontsize=9)
        fig.colorbar(mesh, ax=axes[0, -1], shrink=0.8, label="mm / 12 h (blue: better)")
    _save(fig, path)


def plot_categorical(path, thresholds, models: dict, colors: dict):
    """``models[label] = {score: (point, lo, hi, per_seed or None)}`` for csi, pod, far."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), layout="constrained")
    x = np.arange(len(thresholds))
    n = len(models)
    for k, (lab, sc) in enumerate(models.items()):
        off = (k - (n - 1) / 2) * 0.08
        for ax, score in zip(axes, ("csi", "pod", "far")):
            point, lo, hi, seeds = sc[score]
            err = np.vstack([np.maximum(point - lo, 0), np.maximum(hi - point, 0)])
            ax.errorbar(x + off, point, yerr=np.nan_to_num(err), fmt="o-", ms=4, capsize=3,
                        color=colors.get(lab, "k"), label=lab)
            if seeds is not None and len(seeds) > 1:
                for s in seeds:
                    ax.plot(x + off, s, ".", color=colors.get(lab, "k"), alpha=0.5, ms=3)
    for ax, score in zip(axes, ("CSI", "POD", "FAR")):
        ax.set_xticks(x, [f">= {t:g}" for t in thresholds])
        ax.set_xlabel("threshold (mm / 12 h)")
        ax.set_ylabel(score)
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("categorical scores (whiskers: 95% block-bootstrap interval; dots: seeds)", fontsize=10)
    _save(fig, path)


def plot_performance_diagram(path, thresholds, models: dict, colors: dict):
    """``models[label] = (success_ratio (n_thr,), pod (n_thr,))``."""
    fig, ax = plt.subplots(figsize=(5.6, 5.4), layout="constrained")
    sr, pod = np.meshgrid(np.linspace(0.001, 1, 200), np.linspace(0.001, 1, 200))
    csi = 1.0 / (1.0 / sr + 1.0 / pod - 1.0)
    cs = ax.contour(sr, pod, csi, levels=np.arange(0.1, 1.0, 0.1), colors="0.6", linewidths=0.7)
    ax.clabel(cs, fmt="%.1f", fontsize=7)
    for b in (0.3, 0.5, 0.8, 1.0, 1.3, 2.0, 3.0):
        xs = np.linspace(0, 1, 50)
        ax.plot(xs, b * xs, ls="--", color="0.75", lw=0.7)
        if b <= 1:
            ax.text(1.0, b, f"{b:g}", fontsize=7, color="0.5")
        else:
            ax.text(1.0 / b, 1.0, f"{b:g}", fontsize=7, color="0.5")
    markers = "osD^vP*X"
    for lab, (s, p) in models.items():
        ax.plot(s, p, "-", color=colors.get(lab, "k"), lw=1, alpha=0.7)
        for k, t in enumerate(thresholds):
            ax.plot(s[k], p[k], markers[k % len(markers)], color=colors.get(lab, "k"), ms=6,
                    label=lab if k == 0 else None)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("success ratio (1 - FAR)")
    ax.set_ylabel("probability of detection")
    thr_txt = ", ".join(f"{markers[k % len(markers)]} >= {t:g}" for k, t in enumerate(thresholds))
    ax.set_title(f"performance diagram (thresholds mm: {thr_txt})", fontsize=8)
    ax.legend(fontsize=8, loc="lower right")
    _save(fig, path)


def plot_fss(path, thresholds, windows, models: dict, colors: dict):
    """``models[label] = fss (n_thr, n_win)``."""
    fig, axes = plt.subplots(1, len(thresholds), figsize=(3.2 * len(thresholds), 3.2), squeeze=False,
                             sharey=True, layout="constrained")
    for k, t in enumerate(thresholds):
        ax = axes[0, k]
        for lab, f in models.items():
            ax.plot(windows, f[k], "o-", color=colors.get(lab, "k"), label=lab, ms=4)
        ax.set_title(f"FSS, rain >= {t:g} mm", fontsize=9)
        ax.set_xlabel("window (cells)")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("FSS")
    axes[0, 0].legend(fontsize=7)
    _save(fig, path)


def plot_loss_curves(path, logs: dict[str, pd.DataFrame], colors: dict):
    fig, ax = plt.subplots(figsize=(6.5, 4), layout="constrained")
    for lab, df in logs.items():
        c = colors.get(lab.split("/")[0], "k")
        ax.plot(df["epoch"], df["train_loss"], "-", color=c, label=f"{lab} train")
        ax.plot(df["epoch"], df["val_loss"], "--", color=c, label=f"{lab} val")
    if not logs:
        ax.text(0.5, 0.5, "no training logs found", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title("loss curves")
    _save(fig, path)


def make_all(out: Path, config: dict, truth, groups, scored, results, metrics, clim) -> list[tuple[str, str]]:
    """Draw every figure into ``out``; returns ``(caption, file name)`` pairs for the report."""
    out = Path(out)
    ev = config["evaluation"]
    thresholds, windows = metrics["thresholds_mm"], metrics["fss_windows"]
    lat, lon = truth["lat"].values, truth["lon"].values
    colors = _colors(groups)
    exps = [g for g in groups if g.kind == "experiment"]
    figs = []

    # --- cases -------------------------------------------------------------------------
    heavy, rnd = select_cases(scored.truth_mean, scored.n_cells, ev["n_cases"], config["seed"])
    idx = heavy + ([rnd] if rnd is not None else [])
    if idx:
        times = scored.times[idx]
        titles = [f"{t:%Y-%m-%d %H}UTC" + (" (random)" if i == rnd else " (heavy)") for t, i in zip(times, idx)]
        loss_mask = truth["loss_mask"].values.astype(bool)
        obs = truth["rain_mm"].sel(time=times).values.astype(np.float32)
        shown = loss_mask & truth["valid"].sel(time=times).values.astype(bool) & np.isfinite(obs)
        cols = {"truth": np.where(shown, obs, np.nan)}
        preds = {}
        for g in exps:
            m = g.members[0]
            lab = g.name if len(g.members) == 1 else f"{g.name} (seed {m.seed})"
            preds[lab] = m.pred.sel(time=times).values.astype(np.float32)
            cols[lab] = np.where(shown, preds[lab], np.nan)
        pers = bl.baseline_chunk("persistence", truth["rain_mm"], clim, times, bl.persistence_lag(config))
        cols["persistence"] = np.where(shown, pers, np.nan)
        plot_cases(out / "cases.png", lat, lon, titles, cols)
        figs.append(("Heaviest-rain test cases and one random case: truth, experiments, persistence "
                     "(one colour scale)", "cases.png"))
        diffs = {f"{lab} - truth": np.where(shown, p - obs, np.nan) for lab, p in preds.items()}
        mean_bias = {}
        for g, lab in zip(exps, preds):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                mean_bias[f"{lab} - truth"] = np.nanmean(
                    [scored.verifiers[m.name].cells.compute()["bias"] for m in g.members], axis=0)
        cols_d = {k: np.concatenate([diffs[k], mean_bias[k][None]]) for k in diffs}
        plot_diverging(out / "difference_maps.png", lat, lon, titles + ["mean over the test period"], cols_d,
                       "prediction - truth (mm / 12 h)")
        figs.append(("Difference maps (prediction - truth) per case and averaged over the test period; "
                     "diverging palette centred on 0", "difference_maps.png"))

    # --- error maps ----------------------------------------------------------------------
    mae = {}
    for g in exps + [g for g in groups if g.name == "persistence"]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mae[g.name] = np.nanmean([scored.verifiers[m.name].cells.compute()["mae"] for m in g.members], axis=0)
    difference = None
    if len(exps) >= 2:
        a, b = exps[0].name, exps[-1].name
        difference = (f"|err {b}| - |err {a}|", mae[b] - mae[a])
    plot_error_maps(out / "error_maps.png", lat, lon, mae, difference)
    figs.append(("Mean absolute error per cell" + (" and its difference |err2| - |err1| (blue: upstream "
                 "information helps)" if difference else ""), "error_maps.png"))

    # --- categorical, performance diagram, FSS --------------------------------------------
    cat, perf, fss = {}, {}, {}
    for g in groups:
        res = results[g.name]
        entry = {}
        for score in ("csi", "pod", "far"):
            lo, hi = percentile_interval(res.boot[score], ev["confidence"])
            seeds = [res.members[m.name][score] for m in g.members] if g.kind == "experiment" else None
            entry[score] = (np.asarray(res.point[score]), lo, hi, seeds)
        cat[g.name] = entry
        perf[g.name] = (np.asarray(res.point["success_ratio"]), np.asarray(res.point["pod"]))
        fss[g.name] = np.asarray(res.point["fss"])
    plot_categorical(out / "categorical_scores.png", thresholds, cat, colors)
    figs.append(("CSI, POD and FAR by threshold with 95% block-bootstrap whiskers", "categorical_scores.png"))
    plot_performance_diagram(out / "performance_diagram.png", thresholds, perf, colors)
    figs.append(("Performance diagram (dashed: frequency bias; contours: CSI)", "performance_diagram.png"))
    plot_fss(out / "fss.png", thresholds, windows, fss, colors)
    figs.append(("Fractions Skill Score against neighbourhood window", "fss.png"))

    # --- loss curves -----------------------------------------------------------------------
    logs = {m.name: m.train_log for g in exps for m in g.members if m.train_log is not None}
    plot_loss_curves(out / "loss_curves.png", logs, colors)
    figs.append(("Training and validation loss of every run", "loss_curves.png"))
    return figs
