"""Predict rain (mm) for every sample of a split with a trained checkpoint.

    python -m training.predict --checkpoint RUN/checkpoint.pt --data processed/GRID.zarr \\
        --split test --out RUN/predictions.zarr [--threads N] [--no-progress]

Writes ``rain_mm_pred`` float32 (time, lat, lon) in mm on the region-1 cells only
(cropped by ``region1_mask``, whose cells must form a rectangle), ``time`` = target time
of each sample. All samples of the split are predicted, also those with no valid target
(the evaluation masks them). A bins-head model (``model.head: bins``) adds ``bin_prob``
(time, bin, lat, lon; coords ``bin_lower``/``bin_upper`` in mm) and ``prob_exceed`` (time,
threshold, lat, lon) = P(rain >= threshold) at ``evaluation.thresholds_mm``; its
``rain_mm_pred`` is the ``model.quantile`` of the distribution. With ``model.quantile:
auto`` that quantile is fitted per model on its own validation split (:func:`fit_quantile`;
never on the split being predicted unless that is ``val``). attrs: exp, seed,
checkpoint_sha256, config_hash (of the processed data), train_config_hash,
target_transform, head, quantile, quantile_method, and for auto ``quantile_fit`` (JSON:
the validation frequency bias of every candidate), and ``samples_inputs_without_rain`` /
``samples_inputs_without_soundings``: how many predicted samples have an input frame with
no rain value / no upper-air analysis in a region of the grid (README, "Bad data that
parses"; the evaluation reports them). The model is rebuilt from the checkpoint alone; the config is
the one stored in it.
"""
from __future__ import annotations

import logging
import sys
import warnings
from dataclasses import dataclass

import numpy as np
import torch
import xarray as xr
from tqdm import tqdm

from pipeline.common import cli
from pipeline.common.atomic import atomic_path
from pipeline.common.cf import with_json_attrs
from pipeline.common.config import config_hash
from pipeline.common.errors import GridError
from pipeline.dataset import layout
from pipeline.gridding.geometry import mask_slices
from training import checkpoint as ckpt_io
from training.config import FramesConfig, TrainConfig
from pipeline.common.experiments import Experiment
from training.data import (InputSelection, TrainingDataError, WindowDataset, input_selection, make_loader,
                           open_processed, split_samples)
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


#: Candidate quantiles of ``model.quantile: auto``: 0.40, 0.41, ..., 0.95. Steps of 0.01,
#: because the frequency bias at 15 mm moves by 0.3-0.5 per 0.05 of quantile (validation
#: splits of the nature run), so a coarser grid cannot reach a bias near 1.
QUANTILE_CANDIDATES = tuple(round(0.40 + 0.01 * i, 2) for i in range(56))
BIAS_FLOOR = 0.01  # a forecast that never reaches a threshold scores |log 0.01|, not infinity


def fit_quantile(probs: np.ndarray, edges, rain: np.ndarray, valid: np.ndarray, thresholds,
                 candidates=QUANTILE_CANDIDATES) -> tuple[float, dict]:
    """The candidate quantile whose forecast has the frequency bias closest to 1.

    ``probs`` (N, bins, H, W) predicted distributions, ``rain`` (N, H, W) observed mm, ``valid``
    (N, H, W) cells to count. Frequency bias at t = #(forecast >= t) / #(observed >= t) over the
    valid cells; the score of a candidate is the mean over ``thresholds`` of
    ``|log max(bias, BIAS_FLOOR)|``, lowest wins (ties: the lower quantile). Thresholds that no
    valid cell reaches are left out. Returns (quantile, {"thresholds_mm", "candidates":
    [{"quantile", "frequency_bias", "score"}]}).
    """
    from training import bins

    obs = rain[valid]
    used = [float(t) for t in thresholds if (obs >= t).any()]
    if not used:
        raise TrainingDataError(f"quantile auto: no validation cell reaches any of the thresholds {list(thresholds)} mm")
    n_obs = np.array([(obs >= t).sum() for t in used], float)
    table = []
    for q in candidates:
        fc = bins.quantile(probs, edges, q)[valid]
        bias = np.array([(fc >= t).sum() for t in used], float) / n_obs
        score = float(np.mean(np.abs(np.log(np.maximum(bias, BIAS_FLOOR)))))
        table.append({"quantile": float(q), "frequency_bias": [round(float(b), 4) for b in bias],
                      "score": round(score, 6)})
    best = min(table, key=lambda row: row["score"])  # min keeps the first (lowest) of equal scores
    return best["quantile"], {"thresholds_mm": used, "candidates": table}


def validation_quantile(model, ds, data_path, config, fc: FramesConfig, tc: TrainConfig, batch_size: int,
                        device, progress: bool, selection: InputSelection | None = None) -> tuple[float, dict]:
    """:func:`fit_quantile` on the model's validation split, over its valid region-1 cells."""
    samples = split_samples(ds, config, fc, "val", drop_empty=True)
    if len(samples) == 0:
        raise TrainingDataError(f"{data_path}: quantile auto needs validation samples; split 'val' has none")
    dataset = WindowDataset(data_path, ds, samples, fc, tc.target_transform, tc.preload_max_gb, selection)
    probs = predict_array(model, dataset, batch_size, device, tc.target_transform, progress)["bin_prob"]
    rain = ds["rain_mm"].isel(time=samples.target).values.astype(np.float32)
    valid = (ds["valid"].isel(time=samples.target).values.astype(bool)
             & ds["loss_mask"].values.astype(bool) & np.isfinite(rain))
    rs, cs = region1_window(ds["region1_mask"].values.astype(bool), data_path)
    q, fit = fit_quantile(probs[:, :, rs, cs], model.args["bin_edges_mm"], rain[:, rs, cs], valid[:, rs, cs],
                          config["model"]["quantile_fit_mm"])
    best = next(row for row in fit["candidates"] if row["quantile"] == q)
    log.info(f"quantile auto: {q} on {len(samples)} validation samples (frequency bias "
             f"{best['frequency_bias']} at {fit['thresholds_mm']} mm)")
    return q, fit


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


@dataclass
class Loaded:
    """A trained model and one split of a processed store, ready to predict."""
    ck: dict
    config: dict
    fc: FramesConfig
    tc: TrainConfig
    device: torch.device
    model: torch.nn.Module
    ds: xr.Dataset
    samples: object  # training.data.SplitSamples
    dataset: WindowDataset
    selection: InputSelection | None = None  # the experiment's channels and frames (None: all)


def checkpoint_selection(ck: dict, ds, fc: FramesConfig, data_path) -> InputSelection | None:
    """The input selection recorded in the checkpoint, applied to ``ds`` (None for a checkpoint
    written before experiments were recorded: every channel and frame)."""
    rec = ck.get("experiment")
    if rec is None:
        return None
    entry = Experiment(**{k: tuple(v) if isinstance(v, list) else v for k, v in rec.items()
                          if k in Experiment.__dataclass_fields__})
    sel = input_selection(ds, entry, fc)
    if sel.as_dict() != {k: rec[k] for k in sel.as_dict()}:
        raise TrainingDataError(f"{data_path}: experiment {entry.name!r} selects {sel.as_dict()} in this store, "
                                f"the checkpoint was trained on {({k: rec[k] for k in sel.as_dict()})}")
    return sel


def load_for_prediction(checkpoint, data_path, split: str) -> Loaded:
    """Load ``checkpoint`` and the ``split`` samples of ``data_path``, checking that the store's
    channels are the checkpoint's (and warning when its config hash differs)."""
    ck = ckpt_io.load(checkpoint)
    config = ck["config"]
    fc = FramesConfig(**ck["frames"])
    tc = TrainConfig(**ck["train"])
    device = pick_device("auto" if tc.device == "auto" else tc.device)
    model = ckpt_io.model_from_checkpoint(ck, device)
    ds = open_processed(data_path)
    channels = layout.channel_names(ds)
    if channels != ck["data"]["channels"]:
        raise TrainingDataError(f"{data_path}: channels {channels} differ from the checkpoint's {ck['data']['channels']}")
    data_hash = str(ds.attrs.get("config_hash", ""))
    if data_hash != ck["data"]["config_hash"]:
        warnings.warn(f"{data_path}: config_hash {data_hash} differs from the training data's "
                      f"{ck['data']['config_hash']}")
    samples = split_samples(ds, config, fc, split, drop_empty=False)
    if len(samples) == 0:
        raise TrainingDataError(f"{data_path}: split '{split}' has no complete samples")
    selection = checkpoint_selection(ck, ds, fc, data_path)
    dataset = WindowDataset(data_path, ds, samples, fc, tc.target_transform, tc.preload_max_gb, selection)
    return Loaded(ck, config, fc, tc, device, model, ds, samples, dataset, selection)


def predict(checkpoint, data_path, split: str, out, batch_size: int = 32, threads: int | None = None,
            progress: bool = True) -> xr.Dataset:
    torch.set_num_threads(threads or default_threads())
    ld = load_for_prediction(checkpoint, data_path, split)
    ck, config, fc, tc, device, model, ds, samples, dataset = (ld.ck, ld.config, ld.fc, ld.tc, ld.device, ld.model,
                                                              ld.ds, ld.samples, ld.dataset)
    data_hash = str(ds.attrs.get("config_hash", ""))
    quantile, fit = ck["model"]["quantile"], None
    if model.head_kind == "bins" and quantile == "auto":
        quantile, fit = validation_quantile(model, ds, data_path, config, fc, tc, batch_size, device, progress,
                                            ld.selection)
    arrays = predict_array(model, dataset, batch_size, device, tc.target_transform, progress, float(quantile)
                           if model.head_kind == "bins" else 0.5)
    rs, cs = region1_window(ds["region1_mask"].values.astype(bool), data_path)
    result = prediction_dataset(arrays, samples.times.values, ds["lat"].values, ds["lon"].values, rs, cs,
                                model.args.get("bin_edges_mm"), config["evaluation"]["thresholds_mm"])
    result.attrs.update({
            "exp": str(ck["exp"]), "seed": int(ck["seed"]),
            "checkpoint_sha256": ckpt_io.sha256_of(checkpoint),
            "config_hash": data_hash, "data_sha256": ds.attrs.get("content_sha256", ""),
            "train_config_hash": config_hash(config),
            "target_transform": tc.target_transform, "split": split, "epoch": int(ck["epoch"]),
            "head": model.head_kind, "quantile": float(quantile) if model.head_kind == "bins" else "",
            "quantile_method": ("" if model.head_kind != "bins" else "validation frequency bias"
                                if fit else "fixed (model.quantile)"),
            "samples_inputs_without_rain": int(samples.inputs_without_rain.sum()),
            "samples_inputs_without_soundings": int(samples.inputs_without_soundings.sum()),
    })
    if fit:
        result.attrs = with_json_attrs(result.attrs, {"quantile_fit": fit})
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
