"""How good is the truth? Leave-out validation of the gridding.

    python -m pipeline.gridding.leaveout --config config.yaml \\
        --month 2020-01 --soundings interim/soundings/2020-01.nc --gauges interim/gauges/2020-01.nc \\
        [--month ... --soundings ... --gauges ...] --out gridding_leaveout.json

For each of ``leaveout.repeats`` seeded draws, a random ``leaveout.fraction`` of the gauge
stations is withheld, the rain analysis is re-run (:func:`pipeline.gridding.analysis.analyse`,
the production parameters of the config, the production region split: a region's cells use
that region's gauges only) from the remaining gauges to the withheld gauges' positions, and
the analysed value is scored against the withheld observation. Separately, a random fraction
of the sounding stations is withheld and every upper-air channel (variable x level) is
re-analysed the same way (``gridding.concat_analysis`` decides whether the regions are
analysed separately or jointly, as in the production gridding; the profile of each station
nearest a frame time is used, as there).

Scores per field (rain; each sounding variable by level band, :data:`LEVEL_BANDS`): RMSE,
bias (analysis - observation), Pearson correlation and the number of scored pairs, for each
draw and summarised over the draws (mean, standard deviation, min, max). A withheld
observation the analysis cannot reach (fewer than ``min_neighbors`` stations within the
search radius, none within the coverage radius) is not scored; it is counted
(``n_unanalysed``). The draws are over the identifiers of the stations the analysis uses
(inside a region box of the joined grid) in all the months read, so a station is withheld
in every month of a draw. Only the ingested inputs are read (never the
nature run's truth). Writes the JSON (schema: docs/contracts.md, "Gridding leave-out") and
a CSV table next to it (same stem), atomically.
"""
from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.common import cf, cli, integrity
from pipeline.common.atomic import atomic_path
from pipeline.common.config import config_hash, load_config, month_frame_times
from pipeline.common.errors import ConfigError
from pipeline.common.experiments import LEVEL_BANDS
from pipeline.common.provenance import package_versions

# The analysis (pyproj, xarray) is imported where it is used: the workflow imports
# leaveout_months at parse time, which should stay cheap.

log = logging.getLogger("pipeline.gridding.leaveout")

GRID = "concat"  # every observation the production gridding uses (region 1 and region 2)
SCORES = ("rmse", "bias", "correlation", "n")


def leaveout_months(config: dict, months: list[str]) -> list[str]:
    """The months scored: ``leaveout.months`` of them spread evenly over ``months`` (first
    and last included), or every month when it is null."""
    want = config["leaveout"]["months"]
    months = sorted(months)
    if want is None or want >= len(months):
        return months
    idx = np.unique(np.round(np.linspace(0, len(months) - 1, int(want))).astype(int))
    return [months[i] for i in idx]


def draw_withheld(ids, fraction: float, seed: int, repeat: int, kind: str) -> set[str]:
    """The station identifiers withheld in draw ``repeat``: round(fraction * n), at least 1
    and at most n - 1, chosen by a generator seeded by (seed, repeat, kind)."""
    ids = sorted(set(str(i) for i in ids))
    if len(ids) < 2:
        return set()
    k = int(np.clip(round(fraction * len(ids)), 1, len(ids) - 1))
    rng = np.random.default_rng([int(seed), int(repeat), {"gauges": 0, "soundings": 1}[kind]])
    return set(np.asarray(ids)[rng.choice(len(ids), size=k, replace=False)].tolist())


def used_station_ids(config: dict, ds) -> set[str]:
    """Identifiers of the stations (gauges or profiles) the analysis uses: inside a region
    box of the joined grid. Only these are drawn: withholding an unused station tests nothing."""
    from pipeline.gridding.analysis import region_of_points

    used = region_of_points(config, ds["lat"].values, ds["lon"].values, GRID) > 0
    return {str(i) for i in np.asarray(ds["station"].values)[used]}


def fields(config: dict) -> list[dict]:
    """The scored fields: rain, then each sounding variable by level band, with the
    variable-major channel indices (``variable * n_levels + level``) they pool."""
    levels = np.asarray(config["levels_hpa"], float)
    out = [{"field": "rain", "variable": "rain", "band": None, "units": cf.channel_units("rain"), "channels": None}]
    for vi, var in enumerate(config["variables"]):
        for band, (lo, hi) in LEVEL_BANDS.items():
            li = np.flatnonzero((levels >= lo) & (levels <= hi))
            if li.size:
                out.append({"field": f"{var} {band}", "variable": var, "band": band, "units": cf.channel_units(var),
                            "channels": (vi * levels.size + li).tolist(),
                            "levels_hpa": levels[li].tolist()})
    return out


def _projection(config: dict):
    """The production gridding's projection (centred on the joined grid): identical distances."""
    from pipeline.gridding.analysis import projection_for
    from pipeline.gridding.geometry import make_grid

    return projection_for(make_grid(config, "concat"))


def gauge_pairs(gauges, config: dict, month: str, withheld: set[str]) -> tuple[np.ndarray, np.ndarray]:
    """(analysed, observed) rain at the withheld gauges, every frame of the month, flattened.
    The analysis of region r uses region r's kept gauges, as the production gridding."""
    from pipeline.gridding.analysis import _gauge_inputs, analyse, params_from_config

    grid_proj = _projection(config)
    frames = month_frame_times(month, int(config["frames"]["step_hours"]))
    gau = _gauge_inputs(gauges, config, frames, grid_proj, GRID)
    values = gau.values[:, :, 0]  # (T, S)
    out = np.asarray(gauges["station"].values).astype(str)
    held = np.isin(out, list(withheld))
    p = params_from_config(config, "rain")
    ana, obs = [], []
    for r in (1, 2):
        keep, target = (gau.region == r) & ~held, (gau.region == r) & held
        if not target.any():
            continue
        # frames are the fields: one call per region, a weight matrix per set of reporting gauges
        ana.append(analyse(gau.xy[keep], values[:, keep].T, gau.xy[target], p).ravel())
        obs.append(values[:, target].T.ravel())
    if not ana:
        return np.zeros(0), np.zeros(0)
    return np.concatenate(ana), np.concatenate(obs)


def sounding_pairs(soundings, config: dict, month: str, withheld: set[str]) -> tuple[np.ndarray, np.ndarray]:
    """(analysed, observed) of every upper-air channel at the withheld stations' profiles,
    (pairs, channels): per frame, the kept stations' profiles analysed to the withheld ones'."""
    from pipeline.gridding.analysis import _frame_profiles, _sounding_inputs, analyse, params_from_config

    grid_proj = _projection(config)
    frames = month_frame_times(month, int(config["frames"]["step_hours"]))
    n_sc = len(config["variables"]) * len(config["levels_hpa"])
    snd = _sounding_inputs(soundings, config, frames, grid_proj, GRID, n_sc,
                           float(config["gridding"]["time_tolerance_hours"]))
    p = params_from_config(config, "soundings")
    separate = config["gridding"]["concat_analysis"] == "separate"
    held = np.isin(snd.stations, list(withheld))
    ana, obs = [np.zeros((0, n_sc))], [np.zeros((0, n_sc))]
    for f in range(len(frames)):
        prof = _frame_profiles(snd.frame_of, f, snd.stations, snd.gap_ns)
        if prof.size == 0:
            continue
        for r in ((1, 2) if separate else (None,)):
            pr = prof if r is None else prof[snd.region[prof] == r]
            keep, target = pr[~held[pr]], pr[held[pr]]
            if target.size == 0:
                continue
            ana.append(analyse(snd.xy[keep], snd.values[keep], snd.xy[target], p))
            obs.append(snd.values[target])
    return np.concatenate(ana), np.concatenate(obs)


def score_pairs(analysed: np.ndarray, observed: np.ndarray) -> dict:
    """RMSE, bias (analysis - observation), Pearson correlation, scored pairs and withheld
    observations without an analysis value."""
    a, o = np.ravel(analysed).astype(float), np.ravel(observed).astype(float)
    has_obs = np.isfinite(o)
    ok = has_obs & np.isfinite(a)
    n = int(ok.sum())
    out = {"rmse": None, "bias": None, "correlation": None, "n": n, "n_unanalysed": int((has_obs & ~ok).sum())}
    if n:
        d = a[ok] - o[ok]
        out["rmse"], out["bias"] = float(np.sqrt(np.mean(d * d))), float(np.mean(d))
        if n > 1 and np.std(a[ok]) > 0 and np.std(o[ok]) > 0:
            out["correlation"] = float(np.corrcoef(a[ok], o[ok])[0, 1])
    return out


def summarise(values) -> dict:
    """mean, std (ddof 1; null with one draw), min, max over draws, ignoring nulls."""
    v = np.asarray([x for x in values if x is not None], float)
    if v.size == 0:
        return {"mean": None, "std": None, "min": None, "max": None}
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if v.size > 1 else None,
            "min": float(v.min()), "max": float(v.max())}


def leaveout(config: dict, inputs: list[tuple[str, object, object]]) -> dict:
    """The leave-out table for ``inputs`` = [(month, soundings, gauges), ...] (interim datasets)."""
    from pipeline.gridding.analysis import _check_gauges, _check_soundings

    lo = config["leaveout"]
    fraction, repeats, seed = float(lo["fraction"]), int(lo["repeats"]), int(config["seed"])
    for month, snd, gau in inputs:
        _check_soundings(snd, config, f"soundings {month}")
        _check_gauges(gau, f"gauges {month}")
    gauge_ids = set().union(*(used_station_ids(config, g) for _, _, g in inputs))
    sounding_ids = set().union(*(used_station_ids(config, s) for _, s, _ in inputs))
    table = fields(config)
    per_repeat = {f["field"]: [] for f in table}
    withheld_counts = []
    for r in range(repeats):
        held_g = draw_withheld(gauge_ids, fraction, seed, r, "gauges")
        held_s = draw_withheld(sounding_ids, fraction, seed, r, "soundings")
        withheld_counts.append({"gauges": len(held_g), "soundings": len(held_s)})
        rain = [gauge_pairs(g, config, m, held_g) for m, _, g in inputs]
        upper = [sounding_pairs(s, config, m, held_s) for m, s, _ in inputs]
        ra, ro = np.concatenate([a for a, _ in rain]), np.concatenate([o for _, o in rain])
        ua, uo = np.concatenate([a for a, _ in upper]), np.concatenate([o for _, o in upper])
        for f in table:
            if f["channels"] is None:
                per_repeat[f["field"]].append(score_pairs(ra, ro))
            else:
                per_repeat[f["field"]].append(score_pairs(ua[:, f["channels"]], uo[:, f["channels"]]))
        log.info("leave-out draw %d/%d: %d of %d gauges and %d of %d sounding stations withheld; rain RMSE %.3g mm",
                 r + 1, repeats, len(held_g), len(gauge_ids), len(held_s), len(sounding_ids),
                 np.nan if per_repeat["rain"][-1]["rmse"] is None else per_repeat["rain"][-1]["rmse"])
    rows = []
    for f in table:
        reps = per_repeat[f["field"]]
        rows.append({k: v for k, v in f.items() if k != "channels"}
                    | {s: summarise(x[s] for x in reps) for s in SCORES}
                    | {"n_unanalysed": summarise(x["n_unanalysed"] for x in reps), "per_repeat": reps})
    return {
        "fraction": fraction, "repeats": repeats, "seed": seed, "months": [m for m, _, _ in inputs],
        "grid": GRID, "concat_analysis": config["gridding"]["concat_analysis"],
        "stations": {"gauges": len(gauge_ids), "soundings": len(sounding_ids)},
        "withheld": withheld_counts,
        "bias_definition": "analysis - withheld observation",
        "fields": rows,
        "provenance": {"config_hash": config_hash(config, ("gridding", "grid", "regions", "levels_hpa", "variables",
                                                             "frames", "leaveout", "seed")),
                       "versions": package_versions(("numpy", "xarray", "pyproj")),
                       "created": pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds")},
    }


def table_frame(result: dict) -> pd.DataFrame:
    """The flat table (one row per field) written as CSV and printed in the report."""
    rows = []
    for f in result["fields"]:
        row = {"field": f["field"], "variable": f["variable"], "band": f["band"] or "", "units": f["units"]}
        for s in SCORES:
            row[f"{s}_mean"], row[f"{s}_std"] = f[s]["mean"], f[s]["std"]
        row["n_unanalysed_mean"] = f["n_unanalysed"]["mean"]
        row["repeats"] = result["repeats"]
        rows.append(row)
    return pd.DataFrame(rows)


def write(result: dict, out: str | Path) -> tuple[Path, Path]:
    out = Path(out)
    csv = out.with_suffix(".csv")
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps(result, indent=1))
    with atomic_path(csv) as tmp:
        table_frame(result).to_csv(tmp, index=False, float_format="%.6g")
    return out, csv


def main(argv: list[str] | None = None) -> int:
    ap = cli.parser("python -m pipeline.gridding.leaveout", __doc__)
    cli.add_config(ap)
    ap.add_argument("--month", action="append", required=True, help="YYYY-MM (repeat with each month)")
    ap.add_argument("--soundings", action="append", required=True, help="interim soundings of the month")
    ap.add_argument("--gauges", action="append", required=True, help="interim gauges of the month")
    ap.add_argument("--out", required=True, help="leave-out JSON to write (a CSV table beside it)")

    def body(args) -> int:
        if not len(args.month) == len(args.soundings) == len(args.gauges):
            ap.error("give one --soundings and one --gauges per --month")
        config = load_config(args.config)
        if "leaveout" not in config:
            raise ConfigError(f"{args.config}: no 'leaveout' section")
        t0 = time.perf_counter()
        inputs = [(m, integrity.open_netcdf(s), integrity.open_netcdf(g))
                  for m, s, g in zip(args.month, args.soundings, args.gauges)]
        result = leaveout(config, inputs)
        path, csv = write(result, args.out)
        rain = result["fields"][0]
        log.info("wrote %s and %s (%d months, %d draws; mean rain RMSE %.3g mm) in %.1f s", path, csv, len(inputs),
                 result["repeats"], np.nan if rain["rmse"]["mean"] is None else rain["rmse"]["mean"],
                 time.perf_counter() - t0)
        return 0

    return cli.run(ap, body, argv)


if __name__ == "__main__":
    sys.exit(main())
