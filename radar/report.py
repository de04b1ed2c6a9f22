"""Evaluation and report of the radar track: ``python -m radar.report --config C
--nowcasts results/radar/nowcasts --out results/radar`` writes ``metrics.json``,
``report.md`` and ``skill_by_lead.png``.

For each experiment (first seed's nowcast file ``EXP_seed*.nc``) and the baselines
(persistence, optical flow of :mod:`radar.baselines` on the same inputs), the scores of
:func:`radar.verify.verify_nowcast`; for each experiment with a ``reference``, the paired
block-bootstrap comparison :func:`radar.verify.compare` (reference = a, experiment = b)
and its verdict line. For ``dualpol`` against ``reflectivity`` the headline reads
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


def evaluate(config: dict, nowcast_files: dict, baseline_names=("persistence", "optical_flow")) -> dict:
    """``nowcast_files``: {experiment: path}; ``baseline_names``: which baselines to score.
    Returns the JSON-ready metrics."""
    import xarray as xr

    from radar import baselines, verify
    from radar.dataset import experiments, frames_settings

    ecfg = ((config.get("radar") or {}).get("evaluation")) or {}
    floor = float(frames_settings(config)["dbz_floor"])
    data = {e: xr.load_dataset(p) for e, p in sorted(nowcast_files.items())}
    first = next(iter(data.values()))
    obs, mask = first["observed"], first["mask"].values.astype(bool)
    n_leads = first.sizes["lead"]
    for e, d in data.items():
        if not np.array_equal(d["observed"].values, obs.values, equal_nan=True):
            raise ValueError(f"{nowcast_files[e]}: observed frames differ from {next(iter(nowcast_files.values()))}")
    fcst = {e: d["nowcast"] for e, d in data.items()}
    inputs = first["inputs"].fillna(floor)
    if "persistence" in baseline_names:
        fcst["persistence"] = baselines.persistence(inputs, n_leads)
    if "optical_flow" in baseline_names:
        fcst["optical_flow"] = baselines.optical_flow(inputs, n_leads, floor=floor)
    rows = {k: verify.sample_rows(obs, f, mask, ecfg) for k, f in fcst.items()}
    out = {"n_samples": int(first.sizes["sample"]), "leads_min": [6 * i for i in range(1, n_leads + 1)],
           "models": {k: verify.verify_nowcast(obs, f, mask, ecfg, rows=rows[k]) for k, f in fcst.items()},
           "comparisons": {}}
    exps = experiments(config)
    for e in data:
        ref = exps[e].get("reference")
        if ref and ref in data:
            out["comparisons"][f"{e}_vs_{ref}"] = verify.compare(
                obs, fcst[ref], fcst[e], mask, ecfg, seed=int(config.get("seed", 0)), name_a=ref, name_b=e,
                rows_a=rows[ref], rows_b=rows[e])
    c = out["comparisons"].get("dualpol_vs_reflectivity")
    if c is not None:
        p = c["scores"][c["primary"]]["all"]
        yes = p["ci_low"] is not None and np.isfinite(p["ci_low"]) and p["ci_low"] > 0
        out["headline"] = (f"Z_DR and K_DP improve the 0-1 h nowcast: {'yes' if yes else 'no'}, difference "
                           f"{_fmt(p['difference'], '+.3f')} [{_fmt(p['ci_low'], '+.3f')}, {_fmt(p['ci_high'], '+.3f')}] "
                           f"({c['primary']}, dualpol - reflectivity)")
    return out


def report_md(m: dict) -> str:
    lines = ["# Radar track: 0-1 h reflectivity nowcasts", ""]
    if "headline" in m:
        lines += [m["headline"], ""]
    for name, c in m["comparisons"].items():
        lines += [f"- {c['line']}"]
    lines += ["", f"{m['n_samples']} test samples, leads {m['leads_min'][0]}-{m['leads_min'][-1]} min.", "",
              "| model | " + " | ".join(["rmse", "csi@20dBZ", "csi@30dBZ", "csi@40dBZ"]) + " |",
              "|---|---|---|---|---|"]
    for k, v in m["models"].items():
        s = v["scores"]
        lines.append(f"| {k} | " + " | ".join(_fmt(s[n]["all"]) if n in s else "n/a"
                                               for n in ("rmse", "csi@20dBZ", "csi@30dBZ", "csi@40dBZ")) + " |")
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
    ap.add_argument("--nowcasts", nargs="+", required=True, help="EXP=path.nc ...")
    ap.add_argument("--baselines", default="persistence,optical_flow",
                    help="comma-separated baselines to score (persistence, optical_flow; empty: none)")
    ap.add_argument("--out", required=True)
    return cli.run(ap, _main, argv)


def _main(args) -> None:
    from pipeline.common.atomic import write_bytes_if_changed
    from pipeline.common.config import load_config

    files = dict(a.split("=", 1) for a in args.nowcasts)
    m = evaluate(load_config(args.config), files, [b for b in args.baselines.split(",") if b])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_bytes_if_changed(out / "metrics.json", (json.dumps(m, indent=1, allow_nan=False) + "\n").encode())
    write_bytes_if_changed(out / "report.md", report_md(m).encode())
    plot(m, out / "skill_by_lead.png")
    log.info("%s", m.get("headline", "no dualpol/reflectivity pair"))


if __name__ == "__main__":
    raise SystemExit(main())
