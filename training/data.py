"""Samples of the processed zarr as a torch Dataset.

A sample is ``frames.input_steps`` consecutive frames of the inputs (``x`` and
``x_rain``, as one (time, channel, lat, lon) tensor: :mod:`pipeline.dataset.layout`) and
the rain of the frame ``frames.lead_steps`` after the last input (the target). It belongs to split S when every
one of its frames lies in S's date range (:func:`pipeline.common.config.split_of_times`); frames
must be contiguous in time, so a window across a missing frame time is dropped. Because
the frame times are sorted, a window is a contiguous slice of the time axis, which both
loaders below exploit.

The loss mask of a sample is ``loss_mask * valid(t)``: region 2 (``loss_mask`` 0) and
cells without rain data at the target time never reach the loss. Targets where the mask
is 0 are stored as 0 (never NaN) and the loss additionally ignores them by ``where``.

Two loaders: when the needed time range of ``x`` fits in ``train.preload_max_gb``, it is
read into RAM once and a sample is a view (no copy; fork-shared with workers); otherwise
each worker opens the zarr store itself and reads one contiguous time slice per sample.

Bad data (README, "Bad data that parses"): when a dataset is built, its whole time range
of ``x`` is checked once (vectorised) for NaN and infinity, and the target cells marked
``valid`` for a non-finite ``rain_mm``; either stops the run with
:class:`NonFiniteDataError` naming the store, the variable, the channel, the time and the
value. Samples whose input frames include a frame without any rain value or upper-air
analysis in a region of the grid (the store's ``rain_coverage`` / ``sounding_coverage``)
are kept (those inputs are 0, as every missing value) but counted and logged as a warning
(:attr:`SplitSamples.inputs_without_rain`, :attr:`SplitSamples.inputs_without_soundings`).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import xarray as xr

from pipeline.common import cf, cli
from pipeline.common.config import describe_times, split_of_times
from pipeline.common.errors import ConfigError, NonFiniteDataError
from pipeline.common.integrity import verify_store
from pipeline.common import experiments as experiments_mod
from pipeline.dataset import layout
from training.config import FramesConfig

REQUIRED_VARS = {
    layout.UPPER_AIR: layout.UPPER_AIR_DIMS,
    layout.RAIN_INPUT: layout.RAIN_INPUT_DIMS,
    "rain_mm": ("time", "lat", "lon"),
    "valid": ("time", "lat", "lon"),
    "loss_mask": ("lat", "lon"),
    "region1_mask": ("lat", "lon"),
}

log = logging.getLogger("training.data")


class TrainingDataError(ValueError):
    """The processed zarr does not match the contract, or a split has no samples."""


cli.register_error(TrainingDataError)  # command lines print it as one line, exit 2


def open_processed(path) -> xr.Dataset:
    """Open a processed zarr lazily and check its files against the store's checksums
    (:func:`pipeline.common.integrity.verify_store`), its variables, dims and time axis.
    ``attrs["content_sha256"]`` is the store's content checksum ("" for an unsealed store)."""
    digest = verify_store(path, required=False)
    try:
        ds = xr.open_zarr(path, consolidated=None)
    except Exception as err:  # noqa: BLE001 - re-raised with the path
        raise TrainingDataError(f"{path}: cannot open as zarr: {err}") from err
    for name, dims in REQUIRED_VARS.items():
        if name not in ds.variables:
            raise TrainingDataError(f"{path}: variable '{name}' missing (have {sorted(ds.variables)})")
        if tuple(ds[name].dims) != dims:
            raise TrainingDataError(f"{path}: variable '{name}' has dims {ds[name].dims}, expected {dims}")
    times = pd.DatetimeIndex(ds["time"].values)
    if not times.is_monotonic_increasing or not times.is_unique:
        raise TrainingDataError(f"{path}: coordinate 'time' must be strictly increasing")
    ds.attrs["content_sha256"] = digest
    return ds


def normalisation_of(ds: xr.Dataset) -> dict:
    """The store's normalisation statistics (a JSON-text attribute, see :mod:`pipeline.common.cf`)."""
    return cf.json_attribute(ds.attrs, "normalisation", {})


def sample_windows(times, config: dict, frames: FramesConfig, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(first_input_pos (N,), target_pos (N,)) of the samples of ``split``.

    Inputs are positions ``first .. first + input_steps - 1``; the target is the frame
    ``lead_steps`` after the last input. Every frame must exist (contiguous) and lie in the split.
    """
    times = pd.DatetimeIndex(times)
    step = pd.Timedelta(hours=frames.step_hours)
    labels = split_of_times(times, config)
    n_back = frames.lead_steps + frames.input_steps - 1  # target minus first input, in steps
    # frame times needed by each candidate target, oldest first: (N, input_steps)
    offsets = np.arange(n_back, frames.lead_steps - 1, -1)
    tgt = np.flatnonzero(labels == split)
    if tgt.size == 0:
        return np.zeros(0, int), np.zeros(0, int)
    need = times[tgt].values[:, None] - offsets[None, :] * step.to_timedelta64()
    pos = times.get_indexer(need.ravel()).reshape(need.shape)
    ok = (pos >= 0).all(axis=1)
    ok[ok] = (labels[pos[ok]] == split).all(axis=1)
    return pos[ok, 0].astype(int), tgt[ok].astype(int)


@dataclass
class SplitSamples:
    """Index of one split: where its windows start and which frame each targets."""

    split: str
    first: np.ndarray  # (N,) time position of the first input frame
    target: np.ndarray  # (N,) time position of the target frame
    times: pd.DatetimeIndex  # (N,) target times
    inputs_without_rain: np.ndarray | None = None  # (N,) an input frame has no rain value in some region
    inputs_without_soundings: np.ndarray | None = None  # (N,) ... no upper-air analysis in some region

    def __len__(self) -> int:
        return int(self.first.size)


def incomplete_inputs(ds: xr.Dataset, first: np.ndarray, steps: int, name: str) -> np.ndarray:
    """(N,) bool: whether the input frames ``first .. first + steps - 1`` of each sample include
    a frame where some region has coverage 0 in ``name`` (``rain_coverage`` or
    ``sounding_coverage``); all False for a store written before coverage was recorded."""
    if name not in ds.variables:
        return np.zeros(first.size, bool)
    lacking = (ds[name].values <= 0).any(axis=1)  # (time,)
    csum = np.concatenate(([0], np.cumsum(lacking)))
    return (csum[first + steps] - csum[first]) > 0


def _log_incomplete(smp: "SplitSamples", step_hours: int) -> None:
    for what, flags in (("rain value", smp.inputs_without_rain), ("upper-air analysis", smp.inputs_without_soundings)):
        if flags.any():
            log.warning("%s: %d of %d samples have an input frame with no %s in a region of the grid (those "
                        "inputs are 0, the training mean); their target times: %s", smp.split, int(flags.sum()),
                        len(smp), what, describe_times(smp.times[flags], step_hours))


def split_samples(ds: xr.Dataset, config: dict, frames: FramesConfig, split: str, drop_empty: bool) -> SplitSamples:
    """Samples of ``split``; with ``drop_empty``, those whose loss mask is all 0 are dropped (counted on stderr)."""
    times = pd.DatetimeIndex(ds["time"].values)
    first, target = sample_windows(times, config, frames, split)
    n_all = first.size
    if drop_empty and n_all:
        lm = ds["loss_mask"].values.astype(bool)
        valid = ds["valid"].isel(time=target).values  # (N, H, W)
        keep = (valid & lm).any(axis=(1, 2))
        first, target = first[keep], target[keep]
        if n_all - first.size:
            log.info("%s: dropped %d of %d samples with no valid region-1 target cell", split,
                     n_all - first.size, n_all)
    smp = SplitSamples(split, first, target, times[target],
                       incomplete_inputs(ds, first, frames.input_steps, "rain_coverage"),
                       incomplete_inputs(ds, first, frames.input_steps, "sounding_coverage"))
    _log_incomplete(smp, frames.step_hours)
    return smp


def check_finite_inputs(path, ds: xr.Dataset, lo: int, hi: int, x: np.ndarray | None = None) -> None:
    """Every value of ``x`` at time positions ``lo .. hi - 1`` is finite, or a
    :class:`NonFiniteDataError` names the store, the channel, the time, the cell and the value.

    ``x``: those frames already in memory (one min/max pass, no temporary); else they are
    read from the store in blocks of frames.
    """
    if x is not None:
        with np.errstate(invalid="ignore"):
            if x.size == 0 or (np.isfinite(x.min()) and np.isfinite(x.max())):
                return
        bad_frames = ~np.isfinite(x).all(axis=(1, 2, 3))
    else:
        step = layout.READ_BLOCK_FRAMES
        bad_frames = np.concatenate([~np.isfinite(layout.read_inputs(ds, a, min(a + step, hi))).all(axis=(1, 2, 3))
                                     for a in range(lo, hi, step)] or [np.zeros(0, bool)])
    if not bad_frames.any():
        return
    k = int(np.flatnonzero(bad_frames)[0])
    frame = layout.read_inputs(ds, lo + k, lo + k + 1)[0] if x is None else np.asarray(x[k])
    c, i, j = np.argwhere(~np.isfinite(frame))[0]
    name = layout.channel_names(ds)[c]
    var = layout.RAIN_INPUT if name == "rain" else layout.UPPER_AIR
    raise NonFiniteDataError(
        f"{path}: variable '{var}' channel '{name}' at time "
        f"{pd.Timestamp(ds['time'].values[lo + k]).isoformat()} holds {frame[c, i, j]} (cell lat "
        f"{float(ds['lat'].values[i]):g}, lon {float(ds['lon'].values[j]):g}); NaN or inf in "
        f"{int(bad_frames.sum())} of the {hi - lo} frames checked. The processed x must be finite (missing inputs "
        "are 0): rebuild the store "
        "with python -m pipeline.dataset")


def target_arrays(ds: xr.Dataset, target: np.ndarray, transform: str, path=None):
    """(y (N, 1, H, W) on the target scale, 0 where masked; mask (N, 1, H, W) float32).

    A target cell marked ``valid`` whose ``rain_mm`` is NaN or inf is a
    :class:`NonFiniteDataError` (naming the store, the time, the cell and the value)."""
    from training.losses import to_target

    lm = ds["loss_mask"].values.astype(bool)
    rain = ds["rain_mm"].isel(time=target).values.astype(np.float32)  # (N, H, W)
    marked = ds["valid"].isel(time=target).values.astype(bool) & lm
    if not np.isfinite(np.where(marked, rain, 0.0)).all():
        n, i, j = np.argwhere(marked & ~np.isfinite(rain))[0]
        when = pd.Timestamp(ds["time"].values[target[n]]).isoformat()
        raise NonFiniteDataError(
            f"{path or 'processed store'}: variable 'rain_mm' at time {when} "
            f"holds {rain[n, i, j]} at a cell marked valid (lat {float(ds['lat'].values[i]):g}, lon "
            f"{float(ds['lon'].values[j]):g}); valid must be false where rain is missing")
    valid = marked & np.isfinite(rain)
    rain = np.where(valid, rain, 0.0).astype(np.float32)
    if (rain < 0).any():
        bad = np.argwhere(rain < 0)[0]
        raise TrainingDataError(f"negative rain_mm {rain[tuple(bad)]} at sample {bad[0]}, cell {tuple(bad[1:])}")
    y = to_target(torch.from_numpy(rain), transform).unsqueeze(1)
    return y, torch.from_numpy(valid.astype(np.float32)).unsqueeze(1)


@dataclass
class InputSelection:
    """What an experiment (:mod:`pipeline.common.experiments`) takes of a store's input tensor."""

    channels: np.ndarray  # (C,) int: the store's tensor channels used, in tensor order
    frames: np.ndarray  # (T,) int: the input frames used, oldest first
    region2_zero: np.ndarray  # (C,) bool: used channels held at 0 (the training mean) on region-2 cells
    names: list  # (C,) the used channels' names
    identity: bool  # every channel and frame, nothing held at 0

    def as_dict(self) -> dict:
        return {"channels": list(self.names), "frames": [int(j) for j in self.frames],
                "region2_zero": [n for n, z in zip(self.names, self.region2_zero) if z]}


def _group_channels(var: np.ndarray, pressure: np.ndarray, groups, bands) -> np.ndarray:
    """(C,) bool: channels in ``groups`` (None = all) and, for upper-air ones, in ``bands`` (None = all)."""
    keep = np.ones(var.size, bool)
    if groups is not None:
        keep &= experiments_mod.group_mask(var, groups)
    if bands is not None:
        keep &= experiments_mod.band_mask(pressure, bands) | np.isnan(pressure)
    return keep


def input_selection(ds, exp: "experiments_mod.Experiment", frames: FramesConfig) -> InputSelection:
    """The channels (by :func:`pipeline.dataset.layout.channel_coordinates`) and frames of ``ds``
    that ``exp`` uses, and which of them region 2 holds at 0. A group, band or lag that selects
    nothing in this store is a :class:`~pipeline.common.errors.ConfigError` naming the key."""
    var, pressure = layout.channel_coordinates(ds)
    key = f"config key 'experiments.{exp.name}"
    for field in ("variables", "levels", "region2_variables", "region2_levels"):
        for g in getattr(exp, field) or ():
            mask = experiments_mod.group_mask if "variables" in field else experiments_mod.band_mask
            found = mask(var if "variables" in field else pressure, (g,)).any()
            if not found:
                raise ConfigError(f"{key}.{field}': group {g!r} has no input channel in the store (channels "
                                  f"{layout.channel_names(ds)})")
    used = _group_channels(var, pressure, exp.variables, exp.levels)
    if not used.any():
        raise ConfigError(f"{key}': variables {exp.variables} and levels {exp.levels} select no input channel")
    given = _group_channels(var, pressure, exp.region2_variables, exp.region2_levels)
    channels = np.flatnonzero(used)
    idx = np.asarray(experiments_mod.frame_indices(exp, frames.input_steps, frames.step_hours, frames.lead_steps))
    zero = ~given[channels]
    all_names = layout.channel_names(ds)
    names = [all_names[c] for c in channels]
    identity = bool(used.all() and not zero.any() and idx.size == frames.input_steps)
    return InputSelection(channels, idx, zero, names, identity)


class GroupDropout:
    """Training-time dropout of whole region-2 input groups (``train.region2_group_dropout``).

    Each sample of a batch holds each region-2 variable group that the experiment takes from
    region 2 (:data:`pipeline.common.experiments.VARIABLE_GROUPS`) at its training mean, 0
    after normalisation, on region 2's cells, with probability ``p``, independently per
    group and sample, in every input frame. Region 1 always keeps every channel. The draws
    come from ``generator`` (seeded per epoch by the trainer), so a resumed run draws the
    same masks."""

    def __init__(self, groups: dict, region2: np.ndarray, p: float):
        self.names = list(groups)
        self.channels = torch.from_numpy(np.stack([groups[g] for g in self.names]))  # (G, C) bool
        self.region2 = torch.from_numpy(np.asarray(region2, bool))  # (H, W)
        self.p = float(p)

    @classmethod
    def for_selection(cls, ds, selection: InputSelection | None, p: float) -> "GroupDropout | None":
        """The dropout of the region-2 groups that ``selection`` takes from ``ds``'s region 2;
        None when ``p`` is 0, the grid has no region 2 or region 2 contributes nothing."""
        if p <= 0 or "region1_mask" not in ds:
            return None
        region2 = ~ds["region1_mask"].values.astype(bool)
        if not region2.any():
            return None
        var, _ = layout.channel_coordinates(ds)
        if selection is None:
            used, given = np.arange(var.size), np.ones(var.size, bool)
        else:
            used, given = selection.channels, ~selection.region2_zero
        groups = {g: experiments_mod.group_mask(var[used], (g,)) & given for g in experiments_mod.VARIABLE_GROUPS}
        groups = {g: m for g, m in groups.items() if m.any()}
        return cls(groups, region2, p) if groups else None

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """``x`` (B, T, C, H, W) with the drawn groups held at 0 on region-2 cells."""
        drop = torch.rand((x.shape[0], len(self.names)), generator=generator) < self.p  # (B, G)
        chan = (drop.float() @ self.channels.float()) > 0  # (B, C): any dropped group holds it
        held = chan[:, :, None, None] & self.region2[None, None]  # (B, C, H, W)
        return x.masked_fill(held[:, None].to(x.device), 0.0)


class WindowDataset(torch.utils.data.Dataset):
    """Items: (x (T, C, H, W) float32, y (1, H, W) target scale, mask (1, H, W) float32).

    With a ``selection`` (:func:`input_selection`), x holds only its channels and frames, and
    its ``region2_zero`` channels are 0 on region-2 cells (outside ``region1_mask``)."""

    def __init__(self, path, ds: xr.Dataset, samples: SplitSamples, frames: FramesConfig,
                 transform: str, preload_max_gb: float = 4.0, selection: InputSelection | None = None):
        self.path = str(path)
        self.samples = samples
        self.steps = frames.input_steps
        self.selection = None if selection is None or selection.identity else selection
        self._zero = None  # (C, H, W) bool: held at 0
        if self.selection is not None and self.selection.region2_zero.any():
            region2 = ~ds["region1_mask"].values.astype(bool)
            self._zero = torch.from_numpy(self.selection.region2_zero[:, None, None] & region2[None])
        self.y, self.mask = target_arrays(ds, samples.target, transform, path)
        self._x = None  # in-memory (time, C, H, W) or None (lazy)
        self._lazy = None
        self.offset = 0
        if len(samples):
            lo, hi = int(samples.first.min()), int(samples.first.max()) + self.steps
            nbytes = (hi - lo) * layout.n_channels(ds) * ds.sizes["lat"] * ds.sizes["lon"] * 4
            if nbytes <= preload_max_gb * 1e9:
                x = layout.read_inputs(ds, lo, hi)
                check_finite_inputs(path, ds, lo, hi, x)
                self._x = self._select_channels(torch.from_numpy(x))  # once, not per sample
                self.offset = lo
            else:
                check_finite_inputs(path, ds, lo, hi)

    @property
    def in_memory(self) -> bool:
        return self._x is not None

    def __len__(self) -> int:
        return len(self.samples)

    def _read(self, first: int) -> torch.Tensor:
        if self._x is not None:
            a = first - self.offset
            return self._x[a : a + self.steps]
        if self._lazy is None:  # opened once per worker process
            import zarr

            self._lazy = zarr.open_group(self.path, mode="r")
        return torch.from_numpy(layout.read_inputs(self._lazy, first, first + self.steps))

    def _select_channels(self, x: torch.Tensor) -> torch.Tensor:
        """The selection's channels of (time, C, H, W) frames, region-2 cells held at 0 where asked."""
        if self.selection is None:
            return x
        x = x[:, torch.from_numpy(self.selection.channels)]
        return x if self._zero is None else x.masked_fill(self._zero, 0.0)

    def __getitem__(self, i: int):
        x = self._read(int(self.samples.first[i]))
        if self.selection is not None:
            if self._x is None:  # read lazily: the channels are selected per sample
                x = self._select_channels(x)
            x = x[torch.from_numpy(self.selection.frames)]
        return x, self.y[i], self.mask[i]

    def __getstate__(self):  # a worker re-opens the store itself
        state = dict(self.__dict__)
        state["_lazy"] = None
        return state


def make_loader(dataset: WindowDataset, batch_size: int, shuffle_seed: int | None, num_workers: int,
                pin_memory: bool = False) -> torch.utils.data.DataLoader:
    """DataLoader; shuffling uses a generator seeded from ``shuffle_seed`` (exact resume)."""
    gen = None
    if shuffle_seed is not None:
        gen = torch.Generator().manual_seed(int(shuffle_seed))
    kw = {}
    if num_workers > 0:
        kw = dict(persistent_workers=False, prefetch_factor=4)
    return torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=shuffle_seed is not None, generator=gen,
        num_workers=num_workers, pin_memory=pin_memory, drop_last=False, **kw,
    )
