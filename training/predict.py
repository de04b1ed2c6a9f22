"""Predict rain (mm) for every sample of a split with a trained checkpoint.

    python -m training.predict --checkpoint RUN/checkpoint.pt --data processed/GRID.zarr \\
        --split test --out RUN/predictions.zarr [--threads N] [--no-progress]

Writes ``rain_mm_pred`` float32 (time, lat, lon) in mm on the region-1 cells only
(cropped by ``region1_mask``, whose cells must form a rectangle), ``time`` = target time
of each sample. All samples of the split are predicted, also those with no valid target
(the evaluation masks them). A bins-head model (``model.head: bins``) adds ``bin_prob``
(time, bin, lat, lon; coords ``bin_lower``/``bin_upper`` in mm) and ``prob_exceed`` (time,
threshold, lat, lon) = P(rain >= threshold) at ``evaluation.thresholds_mm``; its
``rain_mm_pred`` is the ``model.quantile`` of the distribution. attrs: exp, seed,
checkpoint_sha256, config_hash (of the processed data), train_config_hash,
target_transform, head, quantile. The model is rebuilt from the checkpoint alone; the
config is the one stored in it.
"""
from __future__ import annotations

import logging
import sys
import warnings

import numpy as np
import torch
import xarray as xr
from tqdm import tqdm

from pipeline.common import cli
from pipeline.common.atomic import atomic_path
from pipeline.common.config import config_hash
from pipeline.common.errors import GridError
from pipeline.gridding.geometry import mask_slices
from training import checkpoint as ckpt_io
from training.config import FramesConfig, TrainConfig
from training.data import TrainingDataError, WindowDataset, make_loader, open_processed, split_samples
from training.losses import to_mm
from training.train import default_threads, pick_device

log = logging.getLogger("training.predict")


def region1_window(mask: np.ndarray, path) -> tuple[slice, slice]:
    """Rows and columns of region 1 in a processed store (its ``region1_mask``)."""
    try:
        return mask_slices(mask)
    except GridError as err:
        raise TrainingDataError(f"{path}: region1_mask {err}") from err


def predict_array(model, dataset, batch_size: int, device, transform: str, progress: bool = True,
                  quantile: float = 0.5) -> dict[str, np.ndarray]:
    """Predictions for every item of ``dataset``, in order, as float32 arrays.

    ``rain_mm`` (N, H, W) in mm, always; a bins-head model adds ``bin_prob`` (N, bins, H, W),
    and its ``rain_mm`` is the ``quantile`` of that distribution.
    """
    from training import bins

    loader = make_loader(dataset, batch_size, None, 0)
    rain, probs = [], []
    edges = getattr(model, "args", {}).get("bin_edges_mm")
    with torch.no_grad():
        for x, _, _ in tqdm(loader, desc="predict", leave=False, file=sys.stderr, disable=not progress):
            out = model(x.to(device)).float()  # (B, 1 or n_bins, H, W)
            if model.head_kind == "bins":
                p = torch.softmax(out, dim=1).cpu().numpy()
                probs.append(p.astype(np.float32))
                rain.append(bins.quantile(p, edges, quantile))
            else:
                rain.append(to_mm(out, transform).clamp_min(0)[:, 0].cpu().numpy())
    empty = np.zeros((0,) + dataset.y.shape[2:], np.float32)
    result = {"rain_mm": np.concatenate(rain).astype(np.float32) if rain else empty}
    if probs:
        result["bin_prob"] = np.concatenate(probs)
    return result


def prediction_dataset(arrays: dict, times, lat, lon, rs: slice, cs: slice, edges, thresholds) -> xr.Dataset:
    """The prediction store's variables on the region-1 window (see the module docstring)."""
    from training import bins

    data = {"rain_mm_pred": (("time", "lat", "lon"), arrays["rain_mm"][:, rs, cs],
                             {"units": "mm", "long_name": "predicted rain in the 12 h ending at time"})}
    coords = {"time": times, "lat": lat[rs], "lon": lon[cs]}
    if "bin_prob" in arrays:
        p = arrays["bin_prob"][:, :, rs, cs]
        lo, hi = bins.bounds(edges)
        data["bin_prob"] = (("time", "bin", "lat", "lon"), p,
                            {"units": "1", "long_name": "probability of rain in each bin (12 h ending at time)"})
        data["prob_exceed"] = (("time", "threshold", "lat", "lon"), bins.exceedance(p, edges, thresholds),
                               {"units": "1", "long_name": "probability of rain >= threshold in the 12 h ending at time"})
        coords.update(bin=np.arange(p.shape[1]),
                      bin_lower=("bin", lo, {"units": "mm"}), bin_upper=("bin", hi, {"units": "mm"}),
                      threshold=("threshold", np.asarray(thresholds, float), {"units": "mm"}))
    return xr.Dataset(data, coords=coords)


def predict(checkpoint, data_path, split: str, out, batch_size: int = 32, threads: int | None = None,
            progress: bool = True) -> xr.Dataset:
    torch.set_num_threads(threads or default_threads())
    ck = ckpt_io.load(checkpoint)
    config = ck["config"]
    fc = FramesConfig(**ck["frames"])
    tc = TrainConfig(**ck["train"])
    device = pick_device("auto" if tc.device == "auto" else tc.device)
    model = ckpt_io.model_from_checkpoint(ck, device)
    ds = open_processed(data_path)
    channels = [str(c) for c in ds["channel"].values]
    if channels != ck["data"]["channels"]:
        raise TrainingDataError(f"{data_path}: channels {channels} differ from the checkpoint's {ck['data']['channels']}")
    data_hash = str(ds.attrs.get("config_hash", ""))
    if data_hash != ck["data"]["config_hash"]:
        warnings.warn(f"{data_path}: config_hash {data_hash} differs from the training data's "
                      f"{ck['data']['config_hash']}")
    samples = split_samples(ds, config, fc, split, drop_empty=False)
    if len(samples) == 0:
        raise TrainingDataError(f"{data_path}: split '{split}' has no complete samples")
    dataset = WindowDataset(data_path, ds, samples, fc, tc.target_transform, tc.preload_max_gb)
    quantile = float(ck.get("model", {}).get("quantile", 0.5))
    arrays = predict_array(model, dataset, batch_size, device, tc.target_transform, progress, quantile)
    rs, cs = region1_window(ds["region1_mask"].values.astype(bool), data_path)
    result = prediction_dataset(arrays, samples.times.values, ds["lat"].values, ds["lon"].values, rs, cs,
                                model.args.get("bin_edges_mm"), config["evaluation"]["thresholds_mm"])
    result.attrs.update({
            "exp": str(ck["exp"]), "seed": int(ck["seed"]),
            "checkpoint_sha256": ckpt_io.sha256_of(checkpoint),
            "config_hash": data_hash, "train_config_hash": config_hash(config),
            "target_transform": tc.target_transform, "split": split, "epoch": int(ck["epoch"]),
            "head": model.head_kind, "quantile": quantile if model.head_kind == "bins" else "",
    })
    with atomic_path(out) as tmp:
        result.to_zarr(tmp, mode="w", consolidated=False)
    log.info(f"{len(samples)} {split} samples -> {out} ({result.sizes['lat']}x{result.sizes['lon']} region-1 cells)")
    return result


def main(argv=None) -> int:
    ap = cli.parser("python -m training.predict", __doc__, progress=True,
                    threads="torch CPU threads (default: the usable cores; the rule's threads in the workflow)")
    ap.add_argument("--checkpoint", required=True, help="checkpoint.pt of a training run (holds the model and config)")
    ap.add_argument("--data", required=True, help="processed zarr the model was trained on")
    ap.add_argument("--split", default="test", choices=["train", "val", "test"], help="split to predict (default test)")
    ap.add_argument("--out", required=True, help="output zarr")
    ap.add_argument("--batch-size", type=int, default=32, help="samples per forward pass (default 32)")

    def body(args) -> int:
        predict(args.checkpoint, args.data, args.split, args.out, args.batch_size, args.threads, not args.no_progress)
        return 0

    return cli.run(ap, body, argv)


if __name__ == "__main__":
    sys.exit(main())
