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
- ``loss_curves.png``: training and validation loss of every run;
- ``flow_regimes.png`` (with ``--upstream-data`` and ``--reference``): relative difference
  of the primary score with bootstrap whiskers per wind-direction sector and speed tercile;
- ``lag_correlation.png`` (with ``--upstream-data``): lagged correlations of the regions'
  area-mean rain.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

DPI = 100
COLORS = {"persistence": "tab:gray", "climatology": "tab:olive", "zero": "tab:brown"}
EXP_COLORS = ["tab:blue", "tab:red", "tab:green", "tab:purple"]
EXTRA_COLORS = ["tab:orange", "tab:cyan", "tab:pink", "black"]


def _colors(models: dict) -> dict:
    """A colour per model of ``metrics["models"]`` (seeds excluded)."""
    out, k, j = {}, 0, 0
    for name, block in models.items():
        if block["kind"] == "experiment":
            out[name] = EXP_COLORS[k % len(EXP_COLORS)]
            k += 1
        elif block["kind"] == "baseline":
            out[name] = COLORS.get(name) or EXTRA_COLORS[j % len(EXTRA_COLORS)]
            j += name not in COLORS
    return out


def _save(fig, path: Path) -> None:
    fig.savefig(path, dpi=DPI)  # constrained layout already fits the labels
    plt.close(fig)


def _grid_axes(nrows, ncols, size=2.6):
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols + 1.2, size * nrows + 0.4), squeeze=False,
                             sharex=True, sharey=True, layout="constrained")
    return fig, axes


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


def plot_categorical(path, thresholds, models: dict, colors: dict, conf_pct: str = "95%"):
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
    fig.suptitle(f"categorical scores (whiskers: {conf_pct} block-bootstrap interval; dots: seeds)", fontsize=10)
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


def plot_reliability(path, thresholds, tables: dict[str, dict], colors: dict):
    """Reliability diagram per threshold (observed frequency against mean forecast
    probability) over a histogram of the forecast probabilities (sharpness)."""
    n = len(thresholds)
    fig, axes = plt.subplots(2, n, figsize=(2.8 * n, 5.2), layout="constrained", squeeze=False,
                             gridspec_kw={"height_ratios": [3, 1]})
    for k, thr in enumerate(thresholds):
        ax, hist = axes[0, k], axes[1, k]
        ax.plot([0, 1], [0, 1], color="0.6", lw=0.8, ls="--")
        for name, table in tables.items():
            t = table[f"{thr:g}"]
            ax.plot(_arr(t["forecast_mean"]), _arr(t["observed_frequency"]), marker="o", ms=3,
                    color=colors.get(name), label=name)
            centres = (np.asarray(t["bin_lower"]) + np.asarray(t["bin_upper"])) / 2
            hist.step(centres, np.maximum(np.asarray(t["count"], dtype=float), 0.5), where="mid",
                      color=colors.get(name))
        ax.set(xlim=(0, 1), ylim=(0, 1), title=f">= {thr:g} mm", xlabel="forecast probability")
        hist.set(yscale="log", xlim=(0, 1), xlabel="forecast probability")
        if k == 0:
            ax.set_ylabel("observed frequency")
            hist.set_ylabel("cell-times")
            ax.legend(fontsize=7)
    _save(fig, path)
    plt.close(fig)


def plot_spectra(path, spectra: dict[str, tuple[np.ndarray, np.ndarray]], colors: dict):
    """Mean radially averaged power spectra (sharpness: a blurred forecast loses power at
    short wavelengths)."""
    fig, ax = plt.subplots(figsize=(5.5, 4), layout="constrained")
    for name, (freq, power) in spectra.items():
        keep = freq > 0
        style = {"color": "black", "lw": 2} if name == "truth" else {"color": colors.get(name.split(" (")[0])}
        ax.loglog(1.0 / freq[keep], power[keep], label=name, **style)
    ax.invert_xaxis()
    ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set(xlabel="wavelength (grid cells)", ylabel="power (mm² / 12 h²)")
    ax.legend(fontsize=8)
    _save(fig, path)
    plt.close(fig)


def plot_flow_regimes(path, block: dict):
    """Relative difference b - a (%) of the primary score with its interval, per direction
    sector and per speed tercile (``metrics.json``'s ``flow_regimes``)."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.8), sharey=True, layout="constrained")
    home = block["sector_from_region2"]
    for ax, key, title in ((axes[0], "sectors", "direction sector (wind from)"),
                           (axes[1], "speed_terciles", "speed tercile")):
        strata = block[key]
        names = list(strata)
        x = np.arange(len(names))
        rel = _arr(strata[n]["relative_pct"] for n in names)
        lo = _arr(strata[n]["relative_ci_low"] for n in names)
        hi = _arr(strata[n]["relative_ci_high"] for n in names)
        err = np.nan_to_num(np.vstack([np.maximum(rel - lo, 0), np.maximum(hi - rel, 0)]))
        colors = ["tab:red" if key == "sectors" and n == home else "tab:blue" for n in names]
        for i, n in enumerate(names):  # hollow: a stratum shorter than one block (no interval)
            ax.errorbar(x[i], rel[i], yerr=err[:, i:i + 1], fmt="o", capsize=4, color=colors[i],
                        mfc=colors[i] if strata[n]["interval"] else "none")
        ax.axhline(0, color="0.5", lw=0.8)
        labels = [f"{n}\n{strata[n]['n_frames']} frames" + ("\n(from region 2)" if key == "sectors" and n == home
                                                           else "") for n in names]
        ax.set_xticks(x, labels, fontsize=8)
        ax.set_xlim(-0.5, len(names) - 0.5)
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3, axis="y")
    axes[0].set_ylabel(f"{block['b']} - {block['a']} {block['score'].upper()} (% of {block['a']})")
    fig.suptitle(f"Skill by flow regime ({block['level_hpa']} hPa steering wind at the analysis time; "
                 f"whiskers: {100 * block['bootstrap']['confidence']:g}% block bootstrap within the stratum; "
                 "hollow: no interval)", fontsize=9)
    _save(fig, path)


def plot_lag_correlation(path, block: dict):
    """Correlation of the following region's area-mean rain at t + lag with the leading one's at t."""
    fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
    lags = np.asarray(block["lags_hours"])
    styles = {"region2_leads_region1": ("region 2 leads region 1", "tab:red", "o-"),
              "flow_from_region2": ("region 2 leads, flow from region 2", "tab:orange", "x--"),
              "region1_leads_region2": ("region 1 leads region 2", "tab:blue", "s-"),
              "region1_autocorrelation": ("region-1 autocorrelation", "0.5", "^:")}
    for key, (label, color, fmt) in styles.items():
        ax.plot(lags, _arr(block[key]["correlation"]), fmt, color=color, label=label, ms=4)
    ax.axhline(0, color="0.5", lw=0.8)
    ax.set_xticks(lags)
    ax.set(xlabel="lag (h)", ylabel="correlation of area-mean rain", ylim=(-1.02, 1.02))
    ax.set_title(f"Lagged correlation, {block['time_start'][:10]} .. {block['time_end'][:10]} "
                 f"(peak {block['peak_lag_hours']} h)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, path)


def _arr(values) -> np.ndarray:
    """JSON numbers (``None`` = undefined) as a float array with NaN."""
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def _categorical_entries(metrics: dict) -> dict:
    """``{model: {score: (point, lo, hi, per-seed or None)}}`` for CSI, POD and FAR from metrics.json."""
    thr = [f"{t:g}" for t in metrics["thresholds_mm"]]
    out = {}
    for name, b in metrics["models"].items():
        if b["kind"] == "seed":
            continue
        entry = {}
        for score in ("csi", "pod", "far"):
            iv = [b["intervals"]["categorical"][t][score] for t in thr]
            seeds = None
            if b["kind"] == "experiment":
                seeds = [_arr(metrics["models"][f"{name}/seed{s}"]["categorical"][t][score] for t in thr)
                         for s in b["seeds"]]
            entry[score] = (_arr(b["categorical"][t][score] for t in thr), _arr(v[0] for v in iv),
                            _arr(v[1] for v in iv), seeds)
        out[name] = entry
    return out


def _map_figures(out: Path, maps) -> list[tuple[str, str]]:
    figs = []
    if maps.case_titles:
        plot_cases(out / "cases.png", maps.lat, maps.lon, maps.case_titles, maps.cases)
        figs.append(("Heaviest-rain test cases and one random case: truth, experiments, persistence "
                     "(one colour scale)", "cases.png"))
        plot_diverging(out / "difference_maps.png", maps.lat, maps.lon,
                       maps.case_titles + ["mean over the test period"], maps.differences,
                       "prediction - truth (mm / 12 h)")
        figs.append(("Difference maps (prediction - truth) per case and averaged over the test period; "
                     "diverging palette centred on 0", "difference_maps.png"))
    plot_error_maps(out / "error_maps.png", maps.lat, maps.lon, maps.mae, maps.mae_difference)
    figs.append(("Mean absolute error per cell" + (" and its difference |err2| - |err1| (blue: upstream "
                 "information helps)" if maps.mae_difference else ""), "error_maps.png"))
    return figs


def make_all(out: Path, maps, metrics: dict, logs: dict[str, pd.DataFrame]) -> list[tuple[str, str]]:
    """Draw every figure into ``out`` from the precomputed ``maps``
    (:class:`evaluation.compare.Maps`), the scores of ``metrics`` (metrics.json) and the
    training ``logs`` (run name -> log); returns ``(caption, file name)`` pairs for the report."""
    out = Path(out)
    thresholds, windows = metrics["thresholds_mm"], metrics["fss_windows"]
    conf_pct = f"{100 * metrics['bootstrap']['confidence']:g}%"
    models = {k: v for k, v in metrics["models"].items() if v["kind"] != "seed"}
    colors = _colors(models)
    thr = [f"{t:g}" for t in thresholds]
    figs = _map_figures(out, maps)
    plot_categorical(out / "categorical_scores.png", thresholds, _categorical_entries(metrics), colors, conf_pct)
    figs.append((f"CSI, POD and FAR by threshold with {conf_pct} block-bootstrap whiskers", "categorical_scores.png"))
    perf = {k: (_arr(b["categorical"][t]["success_ratio"] for t in thr), _arr(b["categorical"][t]["pod"] for t in thr))
            for k, b in models.items()}
    plot_performance_diagram(out / "performance_diagram.png", thresholds, perf, colors)
    figs.append(("Performance diagram (dashed: frequency bias; contours: CSI)", "performance_diagram.png"))
    fss = {k: np.array([_arr(b["fss"][t][str(w)] for w in windows) for t in thr]) for k, b in models.items()}
    plot_fss(out / "fss.png", thresholds, windows, fss, colors)
    figs.append(("Fractions Skill Score against neighbourhood window", "fss.png"))
    reliable = {k: b["reliability"] for k, b in models.items() if b.get("reliability")}
    if reliable:
        plot_reliability(out / "reliability.png", thresholds, reliable, colors)
        figs.append(("Reliability diagram of the seed-averaged exceedance probabilities (dashed: perfect "
                     "reliability), over the number of cell-times per probability bin (sharpness)",
                     "reliability.png"))
    if getattr(maps, "spectra", None):
        plot_spectra(out / "spectra.png", maps.spectra, colors)
        figs.append(("Sharpness: mean radially averaged power spectrum (pysteps rapsd) of the truth, of one "
                     "seed of each experiment and of persistence over the scored test times (unscored cells 0)",
                     "spectra.png"))
    plot_loss_curves(out / "loss_curves.png", logs, colors)
    figs.append(("Training and validation loss of every run", "loss_curves.png"))
    return figs + _upstream_figures(out, metrics)


def _upstream_figures(out: Path, metrics: dict) -> list[tuple[str, str]]:
    figs = []
    if metrics.get("flow_regimes"):
        plot_flow_regimes(out / "flow_regimes.png", metrics["flow_regimes"])
        figs.append(("Skill by flow regime: relative difference of the primary score per steering-wind "
                     "direction sector and speed tercile (red: flow from region 2 towards region 1)",
                     "flow_regimes.png"))
    if metrics.get("lag_diagnostics"):
        plot_lag_correlation(out / "lag_correlation.png", metrics["lag_diagnostics"])
        figs.append(("Lagged correlation of the regions' area-mean gridded rain", "lag_correlation.png"))
    return figs
