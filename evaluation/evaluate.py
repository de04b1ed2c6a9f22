"""Score an experiment's test predictions against the truth, its baselines and (optionally)
a reference experiment; write metrics, predictions, figures and a report.

    python -m evaluation.evaluate --config C --exp exp1 --data processed/region1.zarr \\
        --runs results/runs/exp1/seed0 [...] --out results/exp1
    python -m evaluation.evaluate --config C --exp exp2 --data processed/region1.zarr \\
        --runs results/runs/exp2/seed0 [...] --reference results/exp1 \\
        [--upstream-data processed/concat.zarr [--upstream-stats processed/concat_stats.json]] \\
        --out results/exp2

Every model (each seed of each experiment and the three baselines) is scored on the same
samples: the target times common to all runs (and to the reference), on region-1 cells
where ``loss_mask`` is 1, the truth is valid, and every baseline has a value.

With ``--upstream-data`` (the joined-grid store) the output also holds the lag diagnostics
(:mod:`evaluation.lags`) and, with ``--reference``, the skill by flow regime
(:mod:`evaluation.regimes`); without it these sections are left out (said so in the report).

The steps live in their own modules: :mod:`evaluation.inputs` (opening the stores),
:mod:`evaluation.compare` (scores, bootstrap, differences, maps),
:mod:`evaluation.metrics_json` and :mod:`evaluation.verdicts` (what is written),
:mod:`evaluation.figures` and :mod:`evaluation.report` (drawing and the Markdown report).
"""
from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from evaluation import baselines as bl
from evaluation import metrics_json as mj
from evaluation.compare import (CHUNK_TIMES, Maps, bootstrap_groups, figure_maps, joined_cases, plan_bootstrap,
                                score_members, seed_key)
from evaluation.lags import lag_diagnostics
from evaluation.regimes import flow_regimes
from evaluation.upstream import Upstream, open_upstream
from evaluation.inputs import (EvaluationError, Group, Member, check_experiment, common_times, open_baseline,
                               open_reference, open_run, open_truth, parse_baselines)
from pipeline.common import cli
from pipeline.common.atomic import atomic_path
from pipeline.common.integrity import seal_store
from pipeline.common.config import load_config

log = logging.getLogger("evaluation")

__all__ = ["EvaluationError", "evaluate", "main"]


@dataclass
class Inputs:
    truth: xr.Dataset
    members: list[Member]                # the runs of --exp
    groups: list[Group]                  # reference exp (if any), exp, baselines
    ref_exp: str | None


def open_inputs(exp: str, data, runs, reference, thresholds) -> Inputs:
    """The truth, the runs of ``exp`` and the reference's members, as groups."""
    truth = open_truth(data)
    if not runs:
        raise EvaluationError("--runs: at least one run folder is needed")
    members = [open_run(r, exp, truth, thresholds) for r in runs]
    seeds = [m.seed for m in members]
    if len(set(seeds)) != len(seeds):
        raise EvaluationError(f"--runs: duplicate seeds {seeds} for {exp}")
    check_experiment(members)
    groups = [Group(exp, "experiment", members)]
    ref_exp = None
    if reference is not None:
        ref_exp, ref_members, _ = open_reference(reference, truth, thresholds)
        if ref_exp == exp:
            raise EvaluationError(f"--reference {reference}: holds {exp} itself")
        check_experiment(ref_members)
        groups.insert(0, Group(ref_exp, "experiment", ref_members))
    return Inputs(truth, members, groups, ref_exp)


def write_predictions(members: list[Member], path: Path, exp: str) -> None:
    """Every seed's predictions on the times common to all seeds: ``rain_mm_pred (seed, time,
    lat, lon)`` and, for a probabilistic experiment, ``prob_exceed (seed, time, threshold, lat,
    lon)`` and ``bin_prob (seed, time, bin, lat, lon)`` with their coordinates."""
    times = pd.DatetimeIndex(members[0].pred["time"].values)
    for m in members[1:]:
        times = times.intersection(pd.DatetimeIndex(m.pred["time"].values))
    times = times.sort_values()
    seeds = pd.Index([m.seed for m in members], name="seed")
    arr = xr.concat([m.pred.sel(time=times) for m in members], dim=seeds)
    ds = xr.Dataset({"rain_mm_pred": arr.astype(np.float32)})
    ds["rain_mm_pred"].attrs = {"units": "mm", "long_name": "predicted rain in the 12 h ending at time"}
    if members[0].probs is not None:
        probs = xr.concat([m.probs.sel(time=times) for m in members], dim=seeds)
        for var in ("prob_exceed", "bin_prob"):
            ds[var] = probs[var].astype(np.float32)
    ds.attrs = {"exp": exp, "seeds": [m.seed for m in members], "sources": [m.source for m in members]}
    ds = ds.chunk({"seed": 1, "time": min(CHUNK_TIMES, len(times)), "lat": -1, "lon": -1})
    for v in ds.variables.values():
        v.encoding = {}
    ds.to_zarr(path, mode="w", consolidated=False)
    seal_store(path)  # a later --reference reads it verified


def write_outputs(out, inputs: Inputs, exp: str, metrics: dict, comparison: dict | None, maps: Maps) -> None:
    """Predictions, training logs, metrics, comparison, figures and the report, atomically."""
    from evaluation import figures, report  # matplotlib only when writing

    with atomic_path(Path(out)) as tmp:
        tmp.mkdir(parents=True)
        write_predictions(inputs.members, tmp / "predictions.zarr", exp)
        logs_dir = tmp / "train_logs"
        logs_dir.mkdir()
        logs = {}
        for g in inputs.groups:
            for m in g.members:
                if g.kind == "experiment" and m.train_log is not None:
                    m.train_log.to_csv(logs_dir / f"{m.exp}_seed{m.seed}.csv", index=False)
                    logs[m.name] = m.train_log
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=1))
        pd.DataFrame(mj.metrics_rows(metrics)).to_csv(tmp / "metrics.csv", index=False)
        if comparison is not None:
            (tmp / "comparison.json").write_text(json.dumps(comparison, indent=1))
            mj.comparison_table(comparison).to_csv(tmp / "comparison.csv", index=False)
        if metrics.get("gridding_leaveout"):
            from pipeline.gridding.leaveout import table_frame

            table_frame(metrics["gridding_leaveout"]).to_csv(tmp / "gridding_leaveout.csv", index=False,
                                                             float_format="%.6g")
        figs = figures.make_all(tmp, maps, metrics, logs)
        (tmp / "report.md").write_text(report.render(metrics, comparison, figs))


def evaluate(config: dict, exp: str, data: str | Path, runs: list[str | Path], out: str | Path,
             reference: str | Path | None = None, config_path: str | None = None,
             progress: bool = True, baselines: dict[str, str | Path] | None = None,
             upstream_data: str | Path | None = None, upstream_stats: str | Path | None = None,
             gridding_leaveout: str | Path | None = None, network: str | Path | None = None) -> dict:
    """Score, bootstrap, plot and report; write everything into ``out`` atomically.
    ``baselines``: extra precomputed baselines ``{name: predictions store}`` (e.g. the
    advection baseline), scored like persistence and climatology. ``upstream_data``: the
    joined-grid store (``processed/concat.zarr``; statistics ``upstream_stats``, default next
    to it) for the lag diagnostics and the skill by flow regime. ``gridding_leaveout``: the
    leave-out validation of the gridding (:mod:`pipeline.gridding.leaveout` JSON), copied
    into metrics.json and the report. ``network``: the observing network map
    (``python -m evaluation.network``), copied into ``out`` and the report.
    Returns the metrics dict."""
    from evaluation import report

    ev = config["evaluation"]
    thresholds, windows = [float(t) for t in ev["thresholds_mm"]], [int(w) for w in ev["fss_windows"]]
    inputs = open_inputs(exp, data, runs, reference, thresholds)
    truth, groups = inputs.truth, inputs.groups
    upstream = None
    if upstream_data is not None:
        upstream = open_upstream(config, upstream_data, upstream_stats, truth.attrs)
    times, dropped = common_times([m for g in groups for m in g.members], truth)
    log.info("%s: scoring %d common target times (%s .. %s)", exp, len(times), times[0], times[-1])
    clim = bl.climatology(truth["rain_mm"], config)
    clim_freq = bl.climatological_frequency(truth["rain_mm"], config, thresholds)
    for name in bl.BASELINES:
        groups.append(Group(name, "baseline", [Member(name, 0, f"baseline {name}", None)]))
    extra = parse_baselines([f"{k}={v}" for k, v in (baselines or {}).items()], [g.name for g in groups])
    for name, path in extra.items():
        groups.append(Group(name, "baseline", [open_baseline(name, path, truth, times)]))

    scored = score_members(config, truth, groups, times, clim, progress=progress, clim_freq=clim_freq)
    boot = plan_bootstrap(config, times)
    results = bootstrap_groups(scored, groups, boot.weights, resample_seeds=seed_key(boot.meta))
    models = mj.model_blocks(groups, results, thresholds, windows, boot.confidence)
    assessment = mj.assess(groups, results, exp, inputs.ref_exp, thresholds, windows, boot,
                           ev["primary_score"])
    comparison = None
    if inputs.ref_exp is not None:
        seeds = {g.name: [m.seed for m in g.members] for g in groups if g.kind == "experiment"}
        comparison = mj.comparison_json(exp, inputs.ref_exp, times, scored, boot, assessment, seeds)
    prov = mj.provenance(config, config_path, data, truth.attrs, inputs.members, reference)
    if extra:
        prov["baselines"] = {k: str(v) for k, v in extra.items()}
    if upstream is not None:
        prov["upstream_data"], prov["upstream_stats"] = upstream.path, upstream.stats_path
    metrics = mj.metrics_json(config, exp, inputs.ref_exp, times, dropped, scored, boot, models, assessment, prov)
    metrics["data_quality"] = mj.data_quality_block(truth, times, groups)
    maps = figure_maps(config, truth, groups, scored, clim)
    if upstream is not None:  # the cases with region 2 beside region 1
        maps.joined = joined_cases(maps, upstream.path)
    if network is not None:
        if not Path(network).is_file():
            raise FileNotFoundError(f"--network {network}: no such file")
        maps.network = str(network)
    metrics["sharpness"] = mj.sharpness_block(maps.spectra)
    metrics.update(upstream_blocks(config, upstream, scored, groups, inputs.ref_exp, boot))
    metrics["gridding_leaveout"] = read_gridding_leaveout(gridding_leaveout)
    report.validate_metrics(metrics)
    write_outputs(out, inputs, exp, metrics, comparison, maps)
    log.info("%s: wrote %s", exp, out)
    return metrics


def read_gridding_leaveout(path: str | Path | None) -> dict | None:
    """The leave-out table of the gridding (python -m pipeline.gridding.leaveout), with its
    path; None without one."""
    if path is None:
        return None
    try:
        block = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise EvaluationError(f"--gridding-leaveout {path}: no such file") from None
    except json.JSONDecodeError as err:
        raise EvaluationError(f"--gridding-leaveout {path}: line {err.lineno}: not JSON ({err.msg})") from None
    if not isinstance(block, dict) or not isinstance(block.get("fields"), list):
        raise EvaluationError(f"--gridding-leaveout {path}: key 'fields': missing (not a leave-out table)")
    return {**block, "path": str(path)}


def upstream_blocks(config: dict, upstream: Upstream | None, scored, groups: list[Group], ref_exp: str | None,
                    boot) -> dict:
    """``lag_diagnostics`` (with the joined-grid store) and ``flow_regimes`` (with it and a
    reference experiment); ``None`` where left out."""
    out = {"lag_diagnostics": None, "flow_regimes": None}
    if upstream is None:
        log.info("no --upstream-data: lag diagnostics and skill by flow regime left out")
        return out
    out["lag_diagnostics"] = lag_diagnostics(upstream)
    if ref_exp is None:
        log.info("no --reference: skill by flow regime left out")
        return out
    exps = [g for g in groups if g.kind == "experiment"]
    ga = next(g for g in exps if g.name == ref_exp)
    gb = next(g for g in exps if g.name != ref_exp)
    out["flow_regimes"] = flow_regimes(config, upstream, scored, ga, gb, boot.meta)
    log.info("%s", out["flow_regimes"]["verdict"])
    return out


def _main(args) -> int:
    config = load_config(args.config)
    extra = parse_baselines(args.baselines, bl.BASELINES)
    if args.upstream_stats is not None and args.upstream_data is None:
        raise EvaluationError(f"--upstream-stats {args.upstream_stats}: needs --upstream-data")
    metrics = evaluate(config, args.exp, args.data, args.runs, args.out, args.reference, args.config,
                       progress=not args.no_progress, baselines=extra, upstream_data=args.upstream_data,
                       upstream_stats=args.upstream_stats, gridding_leaveout=args.gridding_leaveout,
                       network=args.network)
    for line in metrics["verdicts"]:
        log.info("%s", line)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = cli.parser("python -m evaluation.evaluate", __doc__, progress=True)
    cli.add_config(ap, required=True)
    ap.add_argument("--exp", required=True, help="experiment name of --runs (e.g. exp1)")
    ap.add_argument("--data", required=True, help="processed/region1.zarr (truth rain_mm, valid, loss_mask)")
    ap.add_argument("--runs", required=True, nargs="+",
                    help="run folders holding predictions.zarr and train_log.csv (one per seed)")
    ap.add_argument("--reference", default=None,
                    help="evaluate output folder of the experiment to compare with (e.g. results/exp1)")
    ap.add_argument("--baselines", nargs="*", default=[], metavar="NAME=PATH",
                    help="extra precomputed baselines scored like persistence, e.g. "
                         "advection=results/baselines/advection/predictions.zarr")
    ap.add_argument("--upstream-data", default=None,
                    help="processed/concat.zarr, the joined grid: steering wind and region-2 rain for the lag "
                         "diagnostics and (with --reference) the skill by flow regime; without it both are left out")
    ap.add_argument("--network", default=None,
                    help="the observing network map (PNG of python -m evaluation.network), copied into the report")
    ap.add_argument("--upstream-stats", default=None,
                    help="its normalisation statistics (default: <store>_stats.json next to it)")
    ap.add_argument("--gridding-leaveout", default=None,
                    help="leave-out validation of the gridding (python -m pipeline.gridding.leaveout JSON): its "
                         "table goes into metrics.json and the report; without it the section says so")
    ap.add_argument("--out", required=True, help="output folder (replaced atomically)")
    return cli.run(ap, _main, argv)


if __name__ == "__main__":
    sys.exit(main())
