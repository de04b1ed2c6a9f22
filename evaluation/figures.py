"""Figures of the verification (PNG). Every panel of a figure shares one colour scale.
Maps have latitude/longitude axes in degrees at the aspect 1 / cos(mean latitude) (no
coastlines: nothing is downloaded); rain maps use the fixed levels :data:`RAIN_LEVELS_MM`.

- ``cases.png``: truth | experiments | persistence for the heaviest-rain test cases and one
  random case (rain, sequential palette, one scale for all panels);
- ``difference_maps.png``: prediction - truth for each experiment (diverging, centred on 0),
  per case and the mean over the test period;
- ``error_maps.png``: mean absolute error per cell of each experiment and of persistence and,
  with two experiments, ``|err2| - |err1|`` (blue: the second experiment is better);
- ``categorical_scores.png``: CSI, POD, FAR by threshold with bootstrap whiskers and seed dots;
- ``performance_diagram.png``: Roebber (2009) diagram (success ratio, POD, CSI, bias);
- ``fss.png``: FSS against the neighbourhood size in km per threshold, with the "useful
  skill" line 0.5 + f0/2;
- ``loss_curves.png``: training and validation loss of every run;
- ``flow_regimes.png`` (with ``--upstream-data`` and ``--reference``): relative difference
  of the primary score with bootstrap whiskers per wind-direction sector and speed tercile;
- ``lag_correlation.png`` (with ``--upstream-data``): lagged correlations of the regions'
  area-mean rain;
- ``cases_joined.png`` (with ``--upstream-data``): the cases on the joined grid, region 2
  beside region 1, with the last input frame;
- ``observing_network.png`` (:mod:`evaluation.network`, its own rule): sounding stations and
  gauges with the rain coverage and the loss mask.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.colors  # noqa: E402
import matplotlib.patches  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from evaluation.scores import ORIENTATION  # noqa: E402

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


#: Rain levels of the map colour scale (mm / 12 h): fixed, so that maps of different cases,
#: runs and worlds read alike; below the first level is dry (white).
RAIN_LEVELS_MM = (0.1, 1.0, 5.0, 15.0, 30.0, 50.0)
#: Length of one degree of latitude (km; mean Earth radius 6371.0 km).
KM_PER_DEG_LAT = 6371.0 * np.pi / 180.0


def rain_norm():
    """Colour map and norm of rain maps: one colour per band between the fixed levels
    :data:`RAIN_LEVELS_MM`, white below 0.1 mm (dry), one colour above 50 mm, grey where
    there is no value."""
    bounds = [0.0, *RAIN_LEVELS_MM]
    base = plt.get_cmap("YlGnBu")
    colors = ["white"] + [base(x) for x in np.linspace(0.2, 1.0, len(RAIN_LEVELS_MM) - 1)]
    cmap = matplotlib.colors.ListedColormap(colors).with_extremes(bad="0.85", over="#d7301f")
    return cmap, matplotlib.colors.BoundaryNorm(bounds, cmap.N)


def _rain_colorbar(fig, mesh, axes, units="mm / 12 h"):
    cb = fig.colorbar(mesh, ax=axes, shrink=_bar_shrink(axes), extend="max", spacing="uniform",
                      label=f"rain ({units})")
    cb.set_ticks([0.0, *RAIN_LEVELS_MM], labels=["0", *(f"{v:g}" for v in RAIN_LEVELS_MM)])
    return cb


def _bar_shrink(axes) -> float:
    """Colour bar length beside a grid of maps: shorter than a tall column of rows."""
    return min(0.8, 3.0 / max(np.shape(axes)[0], 1) + 0.2)


def _lon_label(x, _pos=None):
    return f"{abs(x):g}°{'E' if x > 0 else 'W' if x < 0 else ''}"


def _lat_label(y, _pos=None):
    return f"{abs(y):g}°{'N' if y > 0 else 'S' if y < 0 else ''}"


def geo_axes(ax, lat, box_list=(), label_x=True, label_y=True):
    """A latitude/longitude map without downloads: axes in degrees (°N, °E), aspect
    1 / cos(mean latitude) so that a kilometre is as long east-west as north-south, and the
    region ``box_list`` (``(name, [lat_min, lat_max, lon_min, lon_max])``) outlined."""
    lat = np.asarray(lat, dtype=np.float64)
    mean_lat = float(np.nanmean(lat)) if lat.size else 0.0
    ax.set_aspect(1.0 / max(np.cos(np.deg2rad(mean_lat)), 0.05), adjustable="box")
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(_lon_label))
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(_lat_label))
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(4))
    ax.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(5))
    ax.tick_params(labelsize=7)
    if label_x:
        ax.set_xlabel("longitude", fontsize=7)
    if label_y:
        ax.set_ylabel("latitude", fontsize=7)
    for name, (la0, la1, lo0, lo1) in box_list:
        ax.add_patch(matplotlib.patches.Rectangle((lo0, la0), lo1 - lo0, la1 - la0, fill=False,
                                                  edgecolor="black", lw=0.9, ls="--"))
        ax.text(lo0, la1, f" {name}", fontsize=6, va="top", ha="left")
    return ax


def _grid_axes(nrows, ncols, size=2.6, lat=None, lon=None):
    """Panels sized to the map's shape at the correct aspect (``lat``, ``lon``: its coordinates)."""
    width, height = size, size
    if lat is not None and lon is not None and len(lat) > 1 and len(lon) > 1:
        dy = (np.ptp(lat) + abs(lat[1] - lat[0])) / np.cos(np.deg2rad(np.mean(lat)))
        dx = np.ptp(lon) + abs(lon[1] - lon[0])
        ratio = float(np.clip(dy / dx, 0.25, 4.0))
        width, height = (size, size * ratio) if ratio <= 1 else (size / ratio, size)
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols + 1.4, (height + 0.35) * nrows + 0.4),
                             squeeze=False, sharex=True, sharey=True, layout="constrained")
    for i in range(nrows):
        for j in range(ncols):
            geo_axes(axes[i, j], lat if lat is not None else [0.0], label_x=i == nrows - 1, label_y=j == 0)
    return fig, axes


def plot_cases(path, lat, lon, titles, columns: dict[str, np.ndarray], units="mm / 12 h", boxes=(), size=2.6):
    """Rows = cases, columns = fields (``columns[label]`` is ``(n_cases, lat, lon)``);
    ``boxes``: ``(name, [lat_min, lat_max, lon_min, lon_max])`` outlined on every panel."""
    labels = list(columns)
    cmap, norm = rain_norm()
    fig, axes = _grid_axes(len(titles), len(labels), size=size, lat=lat, lon=lon)
    for i, title in enumerate(titles):
        for j, label in enumerate(labels):
            ax = axes[i, j]
            mesh = ax.pcolormesh(lon, lat, columns[label][i], cmap=cmap, norm=norm, shading="nearest")
            for name, (la0, la1, lo0, lo1) in boxes:
                ax.add_patch(matplotlib.patches.Rectangle((lo0, la0), lo1 - lo0, la1 - la0, fill=False,
                                                          edgecolor="black", lw=0.8, ls="--"))
                if i == 0:
                    ax.text(lo0, la1, f" {name.replace('region', 'region ')}", fontsize=6, va="top")
            ax.set_title(f"{title}\n{label}" if j == 0 else label, fontsize=8)
    _rain_colorbar(fig, mesh, axes, units)
    _save(fig, path)


def plot_diverging(path, lat, lon, titles, columns: dict[str, np.ndarray], label: str):
    """Diverging maps centred on 0 with one symmetric, symmetric-log scale (rows = titles)."""
    labels = list(columns)
    values = np.concatenate([np.ravel(v) for v in columns.values()])
    vmax = float(np.nanmax(np.abs(values))) if np.isfinite(values).any() else 1.0
    vmax = vmax if vmax > 0 else 1.0
    cmap = plt.get_cmap("RdBu_r").with_extremes(bad="0.85")
    # symmetric-log scale (linear within +-1 mm): a case's tens of mm and the test period's
    # mean bias of a few tenths are both legible on the one scale
    norm = matplotlib.colors.SymLogNorm(linthresh=min(1.0, vmax), vmin=-vmax, vmax=vmax, base=10)
    fig, axes = _grid_axes(len(titles), len(labels), lat=lat, lon=lon)
    for i, title in enumerate(titles):
        for j, lab in enumerate(labels):
            ax = axes[i, j]
            mesh = ax.pcolormesh(lon, lat, columns[lab][i], cmap=cmap, norm=norm, shading="nearest")
            ax.set_title(f"{title}\n{lab}" if j == 0 else lab, fontsize=8)
    cb = fig.colorbar(mesh, ax=axes, shrink=_bar_shrink(axes), label=label)
    ticks = [t for t in (0.3, 1, 3, 10, 30, 100) if t <= vmax]
    cb.set_ticks([-t for t in ticks[::-1]] + [0] + ticks, labels=[f"{-t:g}" for t in ticks[::-1]] + ["0"]
                 + [f"{t:g}" for t in ticks])
    _save(fig, path)


def plot_error_maps(path, lat, lon, mae: dict[str, np.ndarray], difference: tuple[str, np.ndarray] | None):
    n = len(mae) + (difference is not None)
    fig, axes = _grid_axes(1, n, size=3.0, lat=lat, lon=lon)
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


def plot_fss(path, thresholds, windows, models: dict, colors: dict, cell_km: float | None = None,
             base_rate=None):
    """``models[label] = fss (n_thr, n_win)`` against the window's side in km (``cell_km``:
    the north-south size of a grid cell; ``None``: in cells), with the "useful skill" line
    FSS = 0.5 + f0 / 2 per threshold (``base_rate[k]`` = f0, the observed event frequency;
    Roberts and Lean 2008)."""
    fig, axes = plt.subplots(1, len(thresholds), figsize=(3.2 * len(thresholds), 3.4), squeeze=False,
                             sharey=True, layout="constrained")
    scale = np.asarray(windows, dtype=np.float64) * (cell_km if cell_km else 1.0)
    for k, t in enumerate(thresholds):
        ax = axes[0, k]
        for lab, f in models.items():
            ax.plot(scale, f[k], "o-", color=colors.get(lab, "k"), label=lab, ms=4)
        f0 = None if base_rate is None else base_rate[k]
        if f0 is not None and np.isfinite(f0):
            useful = 0.5 + f0 / 2
            ax.axhline(useful, color="0.3", ls="--", lw=1, label="useful: 0.5 + f0/2")
        ax.set_title(f"FSS, rain >= {t:g} mm / 12 h" + (f" (f0 = {f0:.3f})" if f0 is not None and np.isfinite(f0)
                                                        else ""), fontsize=9)
        ax.set_xlabel("neighbourhood size (km)" if cell_km else "window (cells)")
        ax.set_xticks(scale, [f"{v:.0f}" for v in scale] if cell_km else [f"{v:g}" for v in scale], fontsize=7)
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("FSS")
    axes[0, 0].legend(fontsize=7)
    _save(fig, path)


def observed_base_rate(block: dict, thresholds) -> np.ndarray:
    """f0 per threshold: the observed frequency (hits + misses) / all of a model's contingency
    table in ``metrics.json`` (the same for every model scored on the same cells)."""
    out = []
    for t in thresholds:
        c = block["categorical"][f"{t:g}"]
        n = sum(c.get(k) or 0 for k in ("hits", "false_alarms", "misses", "correct_negatives"))
        out.append(((c.get("hits") or 0) + (c.get("misses") or 0)) / n if n else np.nan)
    return np.array(out, dtype=np.float64)


def cell_size_km(lat) -> float | None:
    """North-south size of a grid cell (km) from the latitude coordinate (degrees)."""
    lat = np.asarray(lat, dtype=np.float64)
    return float(abs(np.median(np.diff(lat))) * KM_PER_DEG_LAT) if lat.size > 1 else None


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


def plot_spectra(path, spectra: dict[str, tuple[np.ndarray, np.ndarray]], colors: dict,
                 cell_km: float | None = None):
    """Mean radially averaged power spectra (sharpness: a blurred forecast loses power at
    short wavelengths)."""
    fig, ax = plt.subplots(figsize=(5.5, 4), layout="constrained")
    for name, (freq, power) in spectra.items():
        keep = freq > 0
        style = {"color": "black", "lw": 2} if name == "truth" else {"color": colors.get(name.split(" (")[0])}
        ax.loglog((cell_km or 1.0) / freq[keep], power[keep], label=name, **style)
    ax.invert_xaxis()
    ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    ax.xaxis.set_minor_locator(matplotlib.ticker.LogLocator(subs=(2.0, 5.0)))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    ax.set(xlabel="wavelength (km)" if cell_km else "wavelength (grid cells)", ylabel="power (mm² / 12 h²)")
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
        nf = {n: strata[n]["n_frames"] for n in names}
        labels = [f"{n}\n{nf[n]} frame{'' if nf[n] == 1 else 's'}"
                  + ("\n(from region 2)" if key == "sectors" and n == home else "") for n in names]
        ax.set_xticks(x, labels, fontsize=8)
        ax.set_xlim(-0.5, len(names) - 0.5)
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3, axis="y")
    better = {-1: "negative", 1: "positive"}.get(ORIENTATION.get(block["score"], 0))
    axes[0].set_ylabel(f"{block['b']} - {block['a']} {block['score'].upper()} (% of {block['a']})"
                       + (f"\n{better}: {block['b']} better" if better else ""))
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


def plot_network(path, lat, lon, rain_fraction, loss_mask, soundings: pd.DataFrame, gauges: pd.DataFrame,
                 boxes=(), months: int | None = None):
    """The observing network: (left) sounding stations (triangles, colour: number of QC'd
    profiles) and gauges (dots) with the region boxes; (right) the fraction of frames with
    gridded rain per cell, the loss mask (scored cells) outlined, stations on top."""
    lat, lon = np.asarray(lat, dtype=np.float64), np.asarray(lon, dtype=np.float64)
    fig, axes = _grid_axes(1, 2, size=4.6, lat=lat, lon=lon)
    ax, cov = axes[0, 0], axes[0, 1]
    half_lat = abs(lat[1] - lat[0]) / 2 if lat.size > 1 else 0.5
    half_lon = abs(lon[1] - lon[0]) / 2 if lon.size > 1 else 0.5
    lons = np.concatenate([[lon.min() - half_lon, lon.max() + half_lon], soundings["lon"], gauges["lon"]])
    lats = np.concatenate([[lat.min() - half_lat, lat.max() + half_lat], soundings["lat"], gauges["lat"]])
    extent = (np.nanmin(lons) - 0.3, np.nanmax(lons) + 0.3, np.nanmin(lats) - 0.3, np.nanmax(lats) + 0.3)
    ax.scatter(gauges["lon"], gauges["lat"], s=5, c="tab:blue", alpha=0.6, lw=0,
               label=f"rain gauges ({len(gauges)})")
    if len(soundings):
        sc = ax.scatter(soundings["lon"], soundings["lat"], s=40, marker="^", c=soundings["count"], cmap="Reds",
                        vmin=0, edgecolor="black", lw=0.6, label=f"sounding stations ({len(soundings)})", zorder=3)
        fig.colorbar(sc, ax=ax, shrink=0.7, location="bottom", label="QC'd soundings per station")
    mesh = cov.pcolormesh(lon, lat, np.asarray(rain_fraction, dtype=np.float64), cmap="Greens", vmin=0, vmax=1,
                          shading="nearest")
    if np.asarray(loss_mask).any():  # outline along cell edges: the mask upsampled cell by cell
        k = 8
        fine = np.kron(np.asarray(loss_mask, dtype=np.float64), np.ones((k, k)))
        flat = np.linspace(lat[0] - np.sign(lat[-1] - lat[0] or 1) * half_lat,
                           lat[-1] + np.sign(lat[-1] - lat[0] or 1) * half_lat, fine.shape[0])
        flon = np.linspace(lon[0] - half_lon, lon[-1] + half_lon, fine.shape[1])
        cov.contour(flon, flat, fine, levels=[0.5], colors="black", linewidths=1.0)
    cov.plot([], [], color="black", lw=1.2, label="loss mask (scored cells)")
    cov.scatter(soundings["lon"], soundings["lat"], s=18, marker="^", facecolor="none", edgecolor="tab:red",
                lw=0.8, label="sounding stations", zorder=3)
    fig.colorbar(mesh, ax=cov, shrink=0.7, location="bottom", label="fraction of frames with gridded rain")
    for a in (ax, cov):
        a.set_xlim(extent[0], extent[1])
        a.set_ylim(extent[2], extent[3])
        for name, (la0, la1, lo0, lo1) in boxes:
            a.add_patch(matplotlib.patches.Rectangle((lo0, la0), lo1 - lo0, la1 - la0, fill=False,
                                                     edgecolor="black", lw=0.9, ls="--"))
            a.text(lo0, la1, f" {name.replace('region', 'region ')}", fontsize=7, va="top")
        a.legend(fontsize=7, loc="lower left", framealpha=0.85)
    span = f" over {months} months" if months else ""
    ax.set_title(f"observing network{span}", fontsize=9)
    cov.set_title("rain coverage and scored cells", fontsize=9)
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
                     "(fixed rain levels)", "cases.png"))
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
    figs += _joined_case_figure(out, maps, metrics)
    plot_categorical(out / "categorical_scores.png", thresholds, _categorical_entries(metrics), colors, conf_pct)
    figs.append((f"CSI, POD and FAR by threshold with {conf_pct} block-bootstrap whiskers", "categorical_scores.png"))
    perf = {k: (_arr(b["categorical"][t]["success_ratio"] for t in thr), _arr(b["categorical"][t]["pod"] for t in thr))
            for k, b in models.items()}
    plot_performance_diagram(out / "performance_diagram.png", thresholds, perf, colors)
    figs.append(("Performance diagram (dashed: frequency bias; contours: CSI)", "performance_diagram.png"))
    fss = {k: np.array([_arr(b["fss"][t][str(w)] for w in windows) for t in thr]) for k, b in models.items()}
    km = cell_size_km(maps.lat)
    f0 = observed_base_rate(next(iter(models.values())), thresholds) if models else None
    plot_fss(out / "fss.png", thresholds, windows, fss, colors, cell_km=km, base_rate=f0)
    figs.append(("Fractions Skill Score against the neighbourhood size "
                 + (f"(window side in km, {km:.0f} km per cell north-south)" if km else "(cells)")
                 + "; dashed: useful skill 0.5 + f0/2, f0 the observed event frequency", "fss.png"))
    reliable = {k: b["reliability"] for k, b in models.items() if b.get("reliability")}
    if reliable:
        plot_reliability(out / "reliability.png", thresholds, reliable, colors)
        figs.append(("Reliability diagram of the seed-averaged exceedance probabilities (dashed: perfect "
                     "reliability), over the number of cell-times per probability bin (sharpness)",
                     "reliability.png"))
    if getattr(maps, "spectra", None):
        plot_spectra(out / "spectra.png", maps.spectra, colors, cell_km=cell_size_km(maps.lat))
        figs.append(("Sharpness: mean radially averaged power spectrum (pysteps rapsd) of the truth, of one "
                     "seed of each experiment and of persistence over the scored test times (unscored cells 0)",
                     "spectra.png"))
    plot_loss_curves(out / "loss_curves.png", logs, colors)
    figs.append(("Training and validation loss of every run", "loss_curves.png"))
    return figs + _upstream_figures(out, metrics)


def _joined_case_figure(out: Path, maps, metrics: dict) -> list[tuple[str, str]]:
    """The cases with region 2 drawn beside region 1 (``maps.joined``,
    :func:`evaluation.compare.joined_cases`) and the observing network map (``maps.network``,
    drawn by :mod:`evaluation.network`, copied)."""
    figs = []
    joined = getattr(maps, "joined", None)
    if joined is not None:
        plot_cases(out / "cases_joined.png", joined.lat, joined.lon, joined.titles, joined.columns,
                   boxes=joined.boxes, size=3.4)
        figs.append(("The same cases on the joined grid, region 2 beside region 1 (dashed boxes): the last "
                     "input frame's gridded rain, the gridded truth at the target time and the experiments' "
                     "forecasts (region 1 only); fixed rain levels", "cases_joined.png"))
    network = getattr(maps, "network", None)
    if network:
        import shutil

        shutil.copyfile(network, out / "observing_network.png")
        figs.append(("Observing network: sounding stations (colour: QC'd soundings) and rain gauges; the "
                     "fraction of frames with gridded rain per cell and the loss mask (scored cells)",
                     "observing_network.png"))
    return figs


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
