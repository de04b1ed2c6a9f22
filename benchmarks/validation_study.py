"""Model selection on the VALIDATION split: losses, heads and normalisations, side by side.

Trains each candidate setting on processed stores that a workflow run already built
(``--data-dir``, holding ``region1.zarr`` and ``concat.zarr``), predicts the validation
split with the best checkpoint, and scores it on region 1's loss-mask cells. The test
split is never opened: this script is how the defaults were chosen (docs/model_selection.md).

    python benchmarks/validation_study.py --data-dir data/processed --out benchmarks/results/validation_study.json \
        [--config config.yaml [OVERLAY ...]] [--only NAME ...] [--exp exp1 exp2] [--seed 0 1 2] [--epochs N]

Each candidate is a set of config overrides on top of config.yaml. Results are appended per
candidate (a rerun skips candidates already in the output file, so the study can be run in
pieces). Scores: RMSE and MAE (mm), Heidke-free Hanssen-Kuipers (HK) at 0.1 mm, frequency
bias and CSI at 5, 15 and 30 mm, and the validation loss; CRPS where the model gives a
distribution (MAE otherwise).
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import xarray as xr
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.common.config import deep_update, load_config  # noqa: E402

QUANTILES = (0.5, 0.6, 0.65, 0.7, 0.75, 0.8)

# name -> overrides (section -> {key: value})
CANDIDATES: dict[str, dict] = {
    "weighted_mse": {"model": {"head": "regression"}, "train": {"loss": "weighted_mse"}},
    "balanced": {"model": {"head": "regression"}, "train": {"loss": "balanced"}},
    "bins_ce": {"model": {"head": "bins"}, "train": {"loss": "cross_entropy"}},
    "bins_ce_norm_none": {"model": {"head": "bins", "norm": "none"}, "train": {"loss": "cross_entropy"}},
    "bins_ce_norm_batch": {"model": {"head": "bins", "norm": "batch"}, "train": {"loss": "cross_entropy"}},
    "bins_ce_norm_layer": {"model": {"head": "bins", "norm": "layer"}, "train": {"loss": "cross_entropy"}},
    "bins_ce_bs4": {"model": {"head": "bins"}, "train": {"loss": "cross_entropy", "batch_size": 4, "lr": 0.001}},
    "bins_ce_bs4_norm_batch": {"model": {"head": "bins", "norm": "batch"},
                               "train": {"loss": "cross_entropy", "batch_size": 4, "lr": 0.001}},
    "bins_ce_bs4_norm_none": {"model": {"head": "bins", "norm": "none"},
                              "train": {"loss": "cross_entropy", "batch_size": 4, "lr": 0.001}},
    "bins_ce_bs4_norm_layer": {"model": {"head": "bins", "norm": "layer"},
                               "train": {"loss": "cross_entropy", "batch_size": 4, "lr": 0.001}},
    "bins_ce_warmup_dropout": {"model": {"head": "bins", "dropout": 0.1},
                               "train": {"loss": "cross_entropy", "warmup_fraction": 0.1}},
    # the defaults as they stand, and the region-2 group dropout on top of them (joined grid)
    "defaults": {},
    "region2_group_dropout_0.25": {"train": {"region2_group_dropout": 0.25}},
    "region2_group_dropout_0.5": {"train": {"region2_group_dropout": 0.5}},
    # a static input channel that tells region 1's cells from region 2's
    "region_channel": {"model": {"region_channel": True}},
}


def merged(config: dict, overrides: dict, epochs: int | None) -> dict:
    c = copy.deepcopy(config)
    for section, kv in overrides.items():
        c[section].update(kv)
    if epochs:
        c["train"]["epochs"] = epochs
    return c


def crps_binned(probs: np.ndarray, lo: np.ndarray, hi: np.ndarray, obs: np.ndarray, n: int = 64) -> np.ndarray:
    """CRPS per cell of a binned (uniform within bin) distribution; probs (N, K, ...), obs (N, ...)."""
    # integrate (F(x) - 1{x >= y})^2 on a fine grid within each bin
    total = np.zeros(obs.shape)
    cdf_before = np.zeros(obs.shape)
    for k in range(probs.shape[1]):
        pk = probs[:, k]
        xs = lo[k] + (hi[k] - lo[k]) * (np.arange(n) + 0.5) / n
        for x in xs:
            f = cdf_before + pk * (x - lo[k]) / (hi[k] - lo[k])
            total += (f - (x >= obs)) ** 2 * (hi[k] - lo[k]) / n
        cdf_before = cdf_before + pk
    return total + np.maximum(obs - hi[-1], 0)  # mass beyond the closed top bin


def scores(pred: xr.Dataset, truth: xr.Dataset, mask: np.ndarray) -> dict:
    t = truth["rain_mm"].sel(time=pred["time"]).values
    v = truth["valid"].sel(time=pred["time"]).values.astype(bool) if "valid" in truth else np.isfinite(t)
    rs = truth["region1_mask"].values.astype(bool)
    rows, cols = np.flatnonzero(rs.any(1)), np.flatnonzero(rs.any(0))
    t = t[:, rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    v = v[:, rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1] & mask[None] & np.isfinite(t)
    f = pred["rain_mm_pred"].values
    e = (f - t)[v]
    out = {"n": int(v.sum()), "rmse": float(np.sqrt(np.mean(e**2))), "mae": float(np.mean(np.abs(e)))}
    for thr in (0.1, 5.0, 15.0, 30.0):
        fo, ob = f[v] >= thr, t[v] >= thr
        a, b, c, d = (fo & ob).sum(), (fo & ~ob).sum(), (~fo & ob).sum(), (~fo & ~ob).sum()
        out[f"csi_{thr:g}"] = float(a / max(a + b + c, 1))
        out[f"fbias_{thr:g}"] = float((a + b) / max(a + c, 1))
        out[f"hk_{thr:g}"] = float(a / max(a + c, 1) - b / max(b + d, 1))
    if "bin_prob" in pred:
        p = np.moveaxis(pred["bin_prob"].values, 1, 1)
        crps = crps_binned(p, pred["bin_lower"].values, pred["bin_upper"].values, np.nan_to_num(t))
        out["crps"] = float(crps[v].mean())
    else:
        out["crps"] = out["mae"]
    return out


def run_one(name: str, config: dict, exp: str, data_dir: Path, threads: int, seed: int) -> dict:
    from training.predict import predict
    from training.train import train

    from pipeline.common.experiments import experiment

    data = data_dir / f"{experiment(config, exp).grid}.zarr"
    truth = xr.open_zarr(data_dir / "region1.zarr")
    mask = truth["loss_mask"].values.astype(bool)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        summary = train(config, data, exp, seed, tmp, threads=threads, progress=False)
        cfg_path = Path(tmp) / "config.yaml"
        pred = predict(Path(tmp) / "checkpoint.pt", data, "val", Path(tmp) / "val.zarr", threads=threads,
                       progress=False)
        pred = pred.load()
        res = scores(pred, truth, mask)
        if "bin_prob" in pred:  # the deterministic forecast at other quantiles of the same model
            from training import bins

            edges = [float(v) for v in pred["bin_lower"].values[1:]]
            for q in QUANTILES:
                alt = pred.copy()
                alt["rain_mm_pred"] = (("time", "lat", "lon"), bins.quantile(pred["bin_prob"].values, edges, q))
                res[f"q{q:g}"] = {k: v for k, v in scores(alt.drop_vars("bin_prob"), truth, mask).items()}
        del cfg_path
        log = (Path(tmp) / "train_log.csv").read_text()
    res.update(best_val_loss=summary["best_val"], epochs=summary["epochs"], seconds=round(time.perf_counter() - t0, 1),
               train_log=log)
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", required=True, type=Path)
    ap.add_argument("--config", nargs="+", default=[str(ROOT / "config.yaml")],
                    help="config files, later ones override earlier ones (e.g. a relearn overlay that "
                         "declares exp2_without_GROUP)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "validation_study.json"))
    ap.add_argument("--only", nargs="*", default=None)
    ap.add_argument("--exp", nargs="+", default=["exp1"])
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--seed", type=int, nargs="+", default=[0])
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    overrides: dict = {}
    for extra in args.config[1:]:
        overrides = deep_update(overrides, yaml.safe_load(Path(extra).read_text()) or {})
    config = load_config(args.config[0], overrides or None)
    out = Path(args.out)
    results = json.loads(out.read_text()) if out.is_file() else {}
    for name, over in CANDIDATES.items():
        if args.only and name not in args.only:
            continue
        for exp, seed in ((e, s) for s in args.seed for e in args.exp):
            key = f"{name}/{exp}/seed{seed}/epochs{args.epochs or config['train']['epochs']}"
            if key in results:
                continue
            res = run_one(name, merged(config, over, args.epochs), exp, args.data_dir, args.threads, seed)
            res["overrides"] = over
            results[key] = res
            print(key, {k: (round(v, 3) if isinstance(v, float) else v) for k, v in res.items()
                        if k not in ("train_log", "overrides")}, flush=True)
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = out.with_suffix(".tmp")
            tmp.write_text(json.dumps(results, indent=1))
            tmp.replace(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
