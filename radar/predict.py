"""Nowcasts of the test split (contract 4): ``python -m radar.predict --config C --cappi STORE
--checkpoint DIR/model.pt --out results/radar/nowcasts/EXP_seedS.nc``.

The netCDF holds, with dims ``(sample, lead, y, x)`` (lead 1..10 = 6..60 min):
``nowcast`` (the model, dBZ), ``observed`` (DBZH at the target height, NaN where not
scored), ``inputs`` (sample, step, y, x): the input frames of DBZH at the target height
(NaN filled with the floor; the baselines extrapolate them), ``mask`` (y, x): coverage;
coords ``time`` (sample): the time of the last input frame. With ``radar.model.calibration:
quantile_map``, ``nowcast`` is quantile-mapped (a map fitted on the validation split,
:mod:`radar.calibration`) and ``nowcast_uncalibrated`` holds the network's own values.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from pipeline.common import cli
from pipeline.common.errors import ConfigError

log = logging.getLogger("radar.predict")


def _nowcasts(model, a, config: dict, split: str, batch_size: int):
    """The model's nowcasts (sample, lead, y, x) in dBZ of one split, and its dataset."""
    import torch

    from radar.dataset import SequenceDataset, to_dbz

    d = SequenceDataset(a, split, config)
    preds = []
    with torch.no_grad():
        for i in range(0, len(d), batch_size):
            items = [d[j] for j in range(i, min(i + batch_size, len(d)))]
            x = torch.stack([it[0] for it in items])
            preds.append(to_dbz(model(x).numpy(), a.frames))
    return (np.concatenate(preds) if preds else np.empty((0,))), d


def _observed(a, d):
    """Observed DBZH of every sample's output frames (NaN where not scored)."""
    from radar.dataset import to_dbz

    obs = []
    for j in range(len(d)):
        e = int(d.starts[j]) + d.t_in
        obs.append(np.where(a.valid[e : e + d.t_out], to_dbz(a.y[e : e + d.t_out], a.frames), np.nan))
    return np.stack(obs)


def predict(config: dict, cappi, checkpoint, batch_size: int = 8, split: str = "test"):
    """Nowcasts of ``split`` (``test``; ``validation`` for model selection, docs/model_selection.md).

    With ``radar.model.calibration: quantile_map`` the test nowcasts are quantile-mapped with
    a map fitted on the same model's validation nowcasts (:mod:`radar.calibration`); the
    network's own values stay in ``nowcast_uncalibrated``. Validation nowcasts are never mapped.
    """
    import xarray as xr

    from radar import calibration
    from radar.dataset import load, to_dbz
    from radar.train import model_settings
    from training.checkpoint import load as load_ckpt, model_from_checkpoint

    ck = load_ckpt(checkpoint)
    model = model_from_checkpoint(ck)
    with xr.open_zarr(cappi) as ds:
        ds = ds.load()
    a = load(ds, config, ck["experiment"], norm=ck["norm"])
    if a.channels != ck["channels"]:
        raise ValueError(f"{checkpoint}: trained on channels {ck['channels']}, the store gives {a.channels}")
    method = model_settings(config).get("calibration", "none")
    if method not in calibration.METHODS:
        raise ConfigError(f"config key 'radar.model.calibration': one of {list(calibration.METHODS)}, got {method!r}")
    nowcast, d = _nowcasts(model, a, config, split, batch_size)
    if len(d) == 0:
        raise ValueError(f"{cappi}: no {split} sample (radar.splits)")
    fr = a.frames
    obs = _observed(a, d)
    inputs = [np.where(a.coverage[None], to_dbz(a.y[int(s) : int(s) + d.t_in], fr), np.nan) for s in d.starts]
    th = a.target_height_m
    dims = ("sample", "lead", "y", "x")
    coords = {"sample": np.arange(len(d)), "lead": np.arange(1, d.t_out + 1),
              "time": ("sample", a.times[d.starts + d.t_in - 1]), "y": ds["y"].values, "x": ds["x"].values,
              "lead_minutes": ("lead", 6 * np.arange(1, d.t_out + 1))}
    units = {"units": "dBZ", "height_m": th}
    attrs = {"experiment": ck["experiment"], "seed": int(ck["seed"]), "epoch": int(ck["epoch"]),
             "calibration": "none"}
    extra = {}
    if method == "quantile_map" and split != "validation":
        val, dv = _nowcasts(model, a, config, "validation", batch_size)
        if len(dv) == 0:
            raise ValueError(f"{cappi}: radar.model.calibration quantile_map needs validation samples (radar.splits)")
        fq, oq = calibration.fit_quantile_map(val, _observed(a, dv), a.coverage)
        extra["nowcast_uncalibrated"] = (dims, nowcast.astype(np.float32),
                                         dict(units, long_name=f"{ck['experiment']} nowcast before quantile mapping"))
        nowcast = calibration.apply_quantile_map(nowcast, fq, oq)
        attrs.update(calibration="quantile_map", calibration_fitted_on=f"validation split, {len(dv)} samples",
                     calibration_quantiles=int(fq.shape[1]))
    return xr.Dataset(
        {"nowcast": (dims, nowcast.astype(np.float32), dict(units, long_name=f"{ck['experiment']} nowcast")),
         **extra,
         "observed": (dims, obs.astype(np.float32), dict(units, long_name="observed reflectivity")),
         "inputs": (("sample", "step", "y", "x"), np.stack(inputs).astype(np.float32),
                    dict(units, long_name="input reflectivity at the target height")),
         "mask": (("y", "x"), a.coverage)},
        coords=coords, attrs=attrs)


def main(argv=None) -> int:
    ap = cli.parser("python -m radar.predict", __doc__)
    cli.add_config(ap)
    ap.add_argument("--cappi", required=True)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--out", required=True)
    return cli.run(ap, _main, argv)


def _main(args) -> None:
    from pipeline.common.atomic import atomic_path
    from pipeline.common.config import load_config

    out = predict(load_config(args.config), args.cappi, args.checkpoint)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(Path(args.out)) as tmp:
        out.to_netcdf(tmp)
    log.info("%s: %d test samples x %d leads", args.out, out.sizes["sample"], out.sizes["lead"])


if __name__ == "__main__":
    raise SystemExit(main())
