"""Evaluation and report of the radar track: ``python -m radar.report --config C
--nowcasts EXP=FILE ... --out results/radar`` writes ``metrics.json``,
``report.md`` and ``skill_by_lead.png``.

For each experiment (every training seed's nowcast file ``EXP_seedS.nc``, given as
``--nowcasts EXP=FILE`` once per seed) and the baselines (persistence, optical flow of
:mod:`radar.baselines` on the same inputs), the scores of
:func:`radar.verify.verify_nowcast`: an experiment's score is the mean over its seeds of
each seed's score, with the per-seed scores and their spread beside it. For each
experiment with a ``reference``, the comparison :func:`radar.verify.compare` (reference =
a, experiment = b; a paired block bootstrap over samples that also draws each model's
seeds) and its verdict line. For ``dualpol`` against ``reflectivity`` the headline reads
"Z_DR and K_DP improve the 0-1 h nowcast: yes/no, difference X [lo, hi]" (CSI at the
primary threshold over all leads; yes only when the whole interval is above 0).
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from pipeline.common import cli

log = logging.getLogger("radar.report")


def _fmt(x, spec=".3f"):
    return "n/a" if x is None or not np.isfinite(float(x)) else format(float(x), spec)


def _seed_id(ds, i: int) -> int:
    return int(ds.attrs.get("seed", i))


def _model_entry(per_seed: list[dict], seeds: list[int]) -> dict:
    """One experiment's scores from its seeds' :func:`radar.verify.verify_nowcast` outputs:
    ``scores`` = the mean over seeds of each seed's score (all leads and per lead),
    ``by_seed`` = {seed: {score: {all, by_lead}}}, ``seed_spread`` = {score: {sd, min, max}}
    of the all-lead scores over seeds (sd with ddof 1; null with one seed)."""
    from radar.qpe import _clean
    from radar.verify import seed_mean

    out = {k: v for k, v in per_seed[0].items() if k != "scores"}
    out["seeds"] = list(seeds)
    names = list(per_seed[0]["scores"])

    def arr(name, scope):
        return np.array([[np.nan if x is None else x for x in np.atleast_1d(p["scores"][name][scope])]
                         for p in per_seed], dtype=np.float64)
    out["scores"] = {k: {"all": seed_mean(arr(k, "all"))[0], "by_lead": seed_mean(arr(k, "by_lead"))} for k in names}
    out["by_seed"] = {str(sd): p["scores"] for sd, p in zip(seeds, per_seed)}
    spread = {}
    for k in names:
        v = arr(k, "all")[:, 0]
        v = v[np.isfinite(v)]
        spread[k] = {"sd": float(np.std(v, ddof=1)) if v.size > 1 else None,
                     "min": float(v.min()) if v.size else None, "max": float(v.max()) if v.size else None}
    out["seed_spread"] = spread
    return _clean(out)


def evaluate(config: dict, nowcast_files: dict, baseline_names=("persistence", "optical_flow")) -> dict:
    """``nowcast_files``: {experiment: path or [path per training seed]}; ``baseline_names``:
    which baselines to score. Returns the JSON-ready metrics."""
    import xarray as xr

    from radar import baselines, verify
    from radar.dataset import experiments, frames_settings

    ecfg = ((config.get("radar") or {}).get("evaluation")) or {}
    floor = float(frames_settings(config)["dbz_floor"])
    files = {e: [p] if isinstance(p, (str, Path)) else list(p) for e, p in sorted(nowcast_files.items())}
    data = {e: [xr.load_dataset(p) for p in ps] for e, ps in files.items()}
    first_file = next(iter(files.values()))[0]
    first = next(iter(data.values()))[0]
    obs, mask = first["observed"], first["mask"].values.astype(bool)
    n_leads = first.sizes["lead"]
    for e, ds in data.items():
        for p, d in zip(files[e], ds):
            if not np.array_equal(d["observed"].values, obs.values, equal_nan=True):
                raise ValueError(f"{p}: observed frames differ from {first_file}")
    seeds = {e: [_seed_id(d, i) for i, d in enumerate(ds)] for e, ds in data.items()}
    for e, sd in seeds.items():
        if len(set(sd)) != len(sd):
            raise ValueError(f"{e}: training seed given twice in {files[e]}")
    inputs = first["inputs"].fillna(floor)
    base = {}
    if "persistence" in baseline_names:
        base["persistence"] = baselines.persistence(inputs, n_leads)
    if "optical_flow" in baseline_names:
        base["optical_flow"] = baselines.optical_flow(inputs, n_leads, floor=floor)
    rows = {e: [verify.sample_rows(obs, d["nowcast"], mask, ecfg) for d in ds] for e, ds in data.items()}
    rows.update({k: [verify.sample_rows(obs, f, mask, ecfg)] for k, f in base.items()})
    models = {e: _model_entry([verify.verify_nowcast(obs, None, mask, ecfg, rows=r) for r in rows[e]], seeds[e])
              for e in data}
    for e, ds in data.items():  # the nowcasts' post-processing (radar.model.calibration)
        models[e]["calibration"] = str(ds[0].attrs.get("calibration", "none"))
        if all("nowcast_uncalibrated" in d for d in ds):
            models[e]["uncalibrated_scores"] = _model_entry(
                [verify.verify_nowcast(obs, d["nowcast_uncalibrated"], mask, ecfg) for d in ds], seeds[e])["scores"]
    models.update({k: verify.verify_nowcast(obs, None, mask, ecfg, rows=rows[k][0]) for k in base})
    out = {"n_samples": int(first.sizes["sample"]), "leads_min": [6 * i for i in range(1, n_leads + 1)],
           "seeds": seeds, "models": models, "comparisons": {}}
    exps = experiments(config)
    for e in data:
        ref = exps[e].get("reference")
        if ref and ref in data:
            out["comparisons"][f"{e}_vs_{ref}"] = verify.compare(
                obs, None, None, mask, ecfg, seed=int(config.get("seed", 0)), name_a=ref, name_b=e,
                rows_a=rows[ref], rows_b=rows[e])
    c = out["comparisons"].get("dualpol_vs_reflectivity")
    if c is not None:
        p = c["scores"][c["primary"]]["all"]
        yes = p["ci_low"] is not None and np.isfinite(p["ci_low"]) and p["ci_low"] > 0
        n = f"{c['seeds_b']} and {c['seeds_a']}" if c["seeds_a"] != c["seeds_b"] else f"{c['seeds_a']}"
        out["headline"] = (f"Z_DR and K_DP improve the 0-1 h nowcast: {'yes' if yes else 'no'}, difference "
                           f"{_fmt(p['difference'], '+.3f')} [{_fmt(p['ci_low'], '+.3f')}, {_fmt(p['ci_high'], '+.3f')}] "
                           f"({c['primary']}, dualpol - reflectivity, mean over {n} training "
                           f"seed{'s' if n != '1' else ''}; {c['confidence']:.0%} {c['interval']})")
        if c["caveat"]:
            out["headline"] += f"; {c['caveat']}"
    return out


def report_md(m: dict) -> str:
    lines = ["# Radar track: 0-1 h reflectivity nowcasts", ""]
    if "headline" in m:
        lines += [m["headline"], ""]
    for name, c in m["comparisons"].items():
        lines += [f"- {c['line']}"]
    mapped = [k for k, v in m["models"].items() if v.get("calibration") == "quantile_map"]
    if mapped:
        lines += ["", f"The nowcasts of {', '.join(mapped)} are quantile-mapped per lead with a map fitted on the "
                  "validation split (radar.model.calibration); the network's own nowcasts score "
                  + "; ".join(f"{k}: CSI at 30 dBZ {_fmt(m['models'][k]['uncalibrated_scores']['csi@30dBZ']['all'])}, "
                              f"RMSE {_fmt(m['models'][k]['uncalibrated_scores']['rmse']['all'])}"
                              for k in mapped if "uncalibrated_scores" in m["models"][k]) + "."]
    cols = ("rmse", "csi@20dBZ", "csi@30dBZ", "csi@40dBZ")
    lines += ["", f"{m['n_samples']} test samples, leads {m['leads_min'][0]}-{m['leads_min'][-1]} min. "
              "Experiments: the mean over training seeds of each seed's score.", "",
              "| model | seeds | " + " | ".join(cols) + " |",
              "|---|---|" + "---|" * len(cols)]
    for k, v in m["models"].items():
        s = v["scores"]
        lines.append(f"| {k} | {len(v.get('seeds', [])) or '-'} | "
                     + " | ".join(_fmt(s[n]["all"]) if n in s else "n/a" for n in cols) + " |")
    exps = {k: v for k, v in m["models"].items() if "by_seed" in v}
    if exps:
        score = "csi@30dBZ"
        lines += ["", f"Per training seed (CSI at 30 dBZ over leads {m['leads_min'][0]}-{m['leads_min'][-1]} min; "
                  "sd = sample standard deviation over seeds):",
                  "", "| model | per seed | mean | sd |", "|---|---|---|---|"]
        for k, v in exps.items():
            per = ", ".join(f"{sd}: {_fmt(v['by_seed'][str(sd)][score]['all'])}" for sd in v["seeds"])
            lines.append(f"| {k} | {per} | {_fmt(v['scores'][score]['all'])} | "
                         f"{_fmt(v['seed_spread'][score]['sd'])} |")
    return "\n".join(lines) + "\n"


def plot(m: dict, path: Path, score: str = "csi@30dBZ") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pipeline.common.atomic import atomic_path

    fig, ax = plt.subplots(figsize=(6, 4))
    for k, v in m["models"].items():
        if score in v["scores"]:
            ax.plot(m["leads_min"], [np.nan if x is None else x for x in v["scores"][score]["by_lead"]], "o-", label=k)
    ax.set_xlabel("lead time (min)")
    ax.set_ylabel(score.upper())
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def main(argv=None) -> int:
    ap = cli.parser("python -m radar.report", __doc__)
    cli.add_config(ap)
    ap.add_argument("--nowcasts", nargs="+", required=True,
                    help="EXP=path.nc ..., one per experiment and training seed (EXP repeated for each seed)")
    ap.add_argument("--baselines", default="persistence,optical_flow",
                    help="comma-separated baselines to score (persistence, optical_flow; empty: none)")
    ap.add_argument("--out", required=True)
    return cli.run(ap, _main, argv)


def _main(args) -> None:
    from pipeline.common.atomic import write_bytes_if_changed
    from pipeline.common.config import load_config

    files: dict = {}
    for a in args.nowcasts:  # EXP=path, repeated once per training seed
        e, p = a.split("=", 1)
        files.setdefault(e, []).append(p)
    m = evaluate(load_config(args.config), files, [b for b in args.baselines.split(",") if b])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_bytes_if_changed(out / "metrics.json", (json.dumps(m, indent=1, allow_nan=False) + "\n").encode())
    write_bytes_if_changed(out / "report.md", report_md(m).encode())
    plot(m, out / "skill_by_lead.png")
    log.info("%s", m.get("headline", "no dualpol/reflectivity pair"))


if __name__ == "__main__":
    raise SystemExit(main())
