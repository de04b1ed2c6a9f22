"""Model selection of the radar track on the validation split (docs/model_selection.md,
section "Radar"): ``python -m radar.model_selection --config C --cappi STORE --out DIR
--variant NAME='{"model": {...}, "train": {...}}' ... [--experiment reflectivity] [--seed 0]``.

Each variant overrides ``radar.model`` / ``radar.train`` of the config, trains one
experiment and seed (:func:`radar.train.train`), predicts the *validation* split
(:func:`radar.predict.predict` with ``split="validation"``) and scores it
(:func:`radar.verify.verify_nowcast`): CSI and frequency bias at 30 dBZ, RMSE, the best
validation loss, epochs run and seconds per epoch. Persistence on the same validation
samples is scored for reference. The quantile map of ``radar.model.calibration`` is judged
on validation alone: fitted on its first half (in time), scored on its second half. The test split is never read. Writes ``DIR/selection.json``
(one row per variant, appended as each finishes) and prints a table.
"""
from __future__ import annotations

import copy
import csv
import json
import logging
import time
from pathlib import Path

import numpy as np

from pipeline.common import cli

log = logging.getLogger("radar.model_selection")


def _scores(obs, fcst, mask, ecfg) -> dict:
    from radar import verify

    s = verify.verify_nowcast(obs, fcst, mask, ecfg)["scores"]
    return {"csi@30dBZ": s["csi@30dBZ"]["all"], "csi@20dBZ": s["csi@20dBZ"]["all"],
            "frequency_bias@30dBZ": s["frequency_bias@30dBZ"]["all"], "rmse": s["rmse"]["all"]}


def _split_half_quantile_map(p, per, mask, ecfg) -> dict:
    """The quantile map of ``radar.model.calibration`` judged on validation alone: fitted on
    the first half of the validation samples (in time), scored on the second half, with the
    raw nowcast and persistence scored on the same second half."""
    from radar.calibration import apply_quantile_map, fit_quantile_map

    n = p.sizes["sample"]
    h = n // 2
    if h == 0 or h == n:
        return {}
    fc = p["nowcast"].values
    fq, oq = fit_quantile_map(fc[:h], p["observed"].values[:h], mask)
    second = slice(h, n)
    mapped = p["nowcast"][second].copy(data=apply_quantile_map(fc[second], fq, oq))
    return {"second_half": {"n": n - h, "raw": _scores(p["observed"][second], p["nowcast"][second], mask, ecfg),
                            "quantile_map": _scores(p["observed"][second], mapped, mask, ecfg),
                            "persistence": _scores(p["observed"][second], per[second], mask, ecfg)}}


def run_variant(config: dict, cappi, experiment: str, seed: int, out_dir: Path) -> dict:
    from radar import baselines
    from radar.dataset import frames_settings
    from radar.predict import predict
    from radar.train import train

    t0 = time.monotonic()
    summary = train(config, cappi, experiment, seed, out_dir, show_progress=False)
    train_s = time.monotonic() - t0
    p = predict(config, cappi, out_dir / "model.pt", split="validation")
    ecfg = ((config.get("radar") or {}).get("evaluation")) or {}
    mask = p["mask"].values.astype(bool)
    rows = list(csv.DictReader(open(out_dir / "log.csv")))
    out = {"experiment": experiment, "seed": seed, "best_epoch": summary["best_epoch"],
           "epochs_run": summary["epochs_run"], "best_val_loss": summary["best_val_loss"],
           "val_loss_by_epoch": [round(float(r["val_loss"]), 4) for r in rows],
           "s_per_epoch": round(float(np.mean([float(r["seconds"]) for r in rows])), 1), "train_s": round(train_s, 1),
           "validation": _scores(p["observed"], p["nowcast"], mask, ecfg)}
    floor = float(frames_settings(config)["dbz_floor"])
    per = baselines.persistence(p["inputs"].fillna(floor), p.sizes["lead"])
    out["persistence"] = _scores(p["observed"], per, mask, ecfg)
    out.update(_split_half_quantile_map(p, per, mask, ecfg))
    out["n_validation"] = int(p.sizes["sample"])
    return out


def main(argv=None) -> int:
    ap = cli.parser("python -m radar.model_selection", __doc__)
    cli.add_config(ap)
    ap.add_argument("--cappi", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--variant", nargs="+", required=True, help="NAME=JSON overrides of radar.model / radar.train")
    ap.add_argument("--experiment", nargs="+", default=["reflectivity"])
    ap.add_argument("--seed", type=int, nargs="+", default=[0])
    return cli.run(ap, _main, argv)


def _main(args) -> None:
    from pipeline.common.config import load_config

    base = load_config(args.config)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "selection.json"
    results = json.loads(path.read_text()) if path.exists() else []
    for spec in args.variant:
        name, js = spec.split("=", 1)
        over = json.loads(js)
        for e in args.experiment:
            for seed in args.seed:
                cfg = copy.deepcopy(base)
                for sec in ("model", "train"):
                    cfg["radar"].setdefault(sec, {}).update(over.get(sec, {}))
                r = run_variant(cfg, args.cappi, e, seed, out / name / f"{e}_seed{seed}")
                r["variant"], r["overrides"] = name, over
                results.append(r)
                path.write_text(json.dumps(results, indent=1) + "\n")
                v = r["validation"]
                log.info("%s %s seed %d: validation CSI@30 %.3f (persistence %.3f), bias@30 %.2f, RMSE %.2f, "
                         "best val loss %.4f at epoch %d/%d, %.1f s/epoch, %.0f s", name, e, seed, v["csi@30dBZ"],
                         r["persistence"]["csi@30dBZ"], v["frequency_bias@30dBZ"], v["rmse"], r["best_val_loss"],
                         r["best_epoch"], r["epochs_run"], r["s_per_epoch"], r["train_s"])
                if "second_half" in r:
                    h = r["second_half"]
                    log.info("%s %s seed %d: second half of validation, CSI@30 raw %.3f, quantile-mapped %.3f "
                             "(bias %.2f), persistence %.3f", name, e, seed, h["raw"]["csi@30dBZ"],
                             h["quantile_map"]["csi@30dBZ"], h["quantile_map"]["frequency_bias@30dBZ"],
                             h["persistence"]["csi@30dBZ"])


if __name__ == "__main__":
    raise SystemExit(main())
