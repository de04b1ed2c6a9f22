"""Nowcasts of the test split (contract 4): ``python -m radar.predict --config C --cappi STORE
--checkpoint DIR/model.pt --out results/radar/nowcasts/EXP_seedS.nc``.

The netCDF holds, with dims ``(sample, lead, y, x)`` (lead 1..10 = 6..60 min):
``nowcast`` (the model, dBZ), ``observed`` (DBZH at the target height, NaN where not
scored), ``inputs`` (sample, step, y, x): the input frames of DBZH at the target height
(NaN filled with the floor; the baselines extrapolate them), ``mask`` (y, x): coverage;
coords ``time`` (sample): the time of the last input frame.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from pipeline.common import cli

log = logging.getLogger("radar.predict")


def predict(config: dict, cappi, checkpoint, batch_size: int = 8, split: str = "test"):
    """Nowcasts of ``split`` (``test``; ``validation`` for model selection, docs/model_selection.md)."""
    import torch
    import xarray as xr

    from radar.dataset import SequenceDataset, load, to_dbz
    from training.checkpoint import load as load_ckpt, model_from_checkpoint

    ck = load_ckpt(checkpoint)
    model = model_from_checkpoint(ck)
    with xr.open_zarr(cappi) as ds:
        ds = ds.load()
    a = load(ds, config, ck["experiment"], norm=ck["norm"])
    if a.channels != ck["channels"]:
        raise ValueError(f"{checkpoint}: trained on channels {ck['channels']}, the store gives {a.channels}")
    d = SequenceDataset(a, split, config)
    if len(d) == 0:
        raise ValueError(f"{cappi}: no {split} sample (radar.splits)")
    fr = a.frames
    preds, obs, inputs = [], [], []
    with torch.no_grad():
        for i in range(0, len(d), batch_size):
            items = [d[j] for j in range(i, min(i + batch_size, len(d)))]
            x = torch.stack([it[0] for it in items])
            preds.append(to_dbz(model(x).numpy(), fr))
    for j in range(len(d)):
        s = int(d.starts[j])
        e = s + d.t_in
        o = to_dbz(a.y[e : e + d.t_out], fr)
        obs.append(np.where(a.valid[e : e + d.t_out], o, np.nan))
        inputs.append(np.where(a.coverage[None], to_dbz(a.y[s:e], fr), np.nan))
    th = fr["target_height_m"]
    th = float(ds["height"].values.min()) if th is None else float(th)
    dims = ("sample", "lead", "y", "x")
    coords = {"sample": np.arange(len(d)), "lead": np.arange(1, d.t_out + 1),
              "time": ("sample", a.times[d.starts + d.t_in - 1]), "y": ds["y"].values, "x": ds["x"].values,
              "lead_minutes": ("lead", 6 * np.arange(1, d.t_out + 1))}
    units = {"units": "dBZ", "height_m": th}
    return xr.Dataset(
        {"nowcast": (dims, np.concatenate(preds).astype(np.float32), dict(units, long_name=f"{ck['experiment']} nowcast")),
         "observed": (dims, np.stack(obs).astype(np.float32), dict(units, long_name="observed reflectivity")),
         "inputs": (("sample", "step", "y", "x"), np.stack(inputs).astype(np.float32),
                    dict(units, long_name="input reflectivity at the target height")),
         "mask": (("y", "x"), a.coverage)},
        coords=coords, attrs={"experiment": ck["experiment"], "seed": int(ck["seed"]), "epoch": int(ck["epoch"])})


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
