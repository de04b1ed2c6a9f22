"""Small configs and random gridded fragments in the layout of docs/contracts.md section 3."""
from __future__ import annotations

import numpy as np
import xarray as xr
import yaml

from pipeline.common.config import deep_update, load_config, month_frame_times
from pipeline.gridding.cli import write_fragment
from pipeline.gridding.geometry import channel_coordinates, channel_names, make_grid

BOXES = {  # region 2 adjoining a 2x3 degree region 1 on each side
    "west": {"lat_min": 30.0, "lat_max": 32.0, "lon_min": 111.0, "lon_max": 114.0},
    "east": {"lat_min": 30.0, "lat_max": 32.0, "lon_min": 117.0, "lon_max": 120.0},
    "north": {"lat_min": 32.0, "lat_max": 34.0, "lon_min": 114.0, "lon_max": 117.0},
    "south": {"lat_min": 28.0, "lat_max": 30.0, "lon_min": 114.0, "lon_max": 117.0},
}
REGION1 = {"lat_min": 30.0, "lat_max": 32.0, "lon_min": 114.0, "lon_max": 117.0}


def dataset_config(tmp_path, side: str = "west", overrides: dict | None = None, name: str = "config.yaml"):
    cfg = {
        "period": {"start": "2020-01", "end": "2020-04"},
        "splits": {"train": {"start": "2020-01-01", "end": "2020-02-29"},
                   "val": {"start": "2020-03-05", "end": "2020-03-31"},
                   "test": {"start": "2020-04-05", "end": "2020-04-30"}},
        "regions": {"region1": dict(REGION1), "region2": dict(BOXES[side])},  # the side follows from the boxes
        "grid": {"resolution_deg": 0.5, "loss_mask_min_valid_fraction": 0.5, "min_norm_samples": 10},
        "compute": {"zarr_time_chunk": 16},
        "evaluation": {"fss_windows": [1, 3]},  # FSS windows must fit the 4 x 6 region-1 grid
    }
    cfg = deep_update(cfg, overrides or {})
    path = tmp_path / name
    path.write_text(yaml.safe_dump(cfg))
    return path, load_config(path)


def random_fragment(config: dict, month: str, seed: int) -> xr.Dataset:
    """A gridded fragment with physically plausible random values and NaN holes.

    Rain is NaN at random 10 % of the cell-frames and always on the first region-1
    column (lon = region-1 west edge + half a cell: no gauge coverage); sounding
    channels NaN at random 5 %.
    """
    rng = np.random.default_rng(seed)
    grid = make_grid(config, "concat")
    channels = channel_names(config)
    times = month_frame_times(month)
    x = rng.normal(0.0, 1.0, (times.size, len(channels), *grid.shape))
    x = (x * np.linspace(1.0, 30.0, len(channels))[None, :, None, None]
         + np.linspace(-50.0, 16000.0, len(channels))[None, :, None, None])
    x[rng.random(x.shape) < 0.05] = np.nan
    rain = rng.gamma(0.4, 5.0, (times.size, *grid.shape))
    rain[rng.random(rain.shape) < 0.1] = np.nan
    rain[:, :, np.argmin(np.abs(grid.lon - (config["regions"]["region1"]["lon_min"] + 0.25)))] = np.nan
    x[:, -1] = rain
    return xr.Dataset({"x": (("time", "channel", "lat", "lon"), x.astype(np.float32))},
                      coords={"time": times.values, "channel": np.asarray(channels, dtype=object),
                              **channel_coordinates(config), "lat": grid.lat, "lon": grid.lon})


def write_fragments(config: dict, folder, months, seed0: int = 0):
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, m in enumerate(months):
        p = folder / f"{m}.nc"
        if not p.exists():
            write_fragment(random_fragment(config, m, seed0 + int(m.replace("-", ""))), p)
        paths.append(str(p))
    return paths
