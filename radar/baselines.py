"""Nowcast baselines on the input hour: persistence and optical-flow extrapolation.

Inputs: the observed input frames ``(sample, time, y, x)`` in dBZ (the last one is the
analysis time); outputs ``(sample, lead, y, x)`` like the models' (contract 4).

- persistence: the last observed frame for every lead;
- optical flow (pysteps): Lucas-Kanade motion field (``pysteps.motion.get_method("LK")``)
  from the last ``n_motion_frames`` input frames (LK needs OpenCV; without it, or with
  ``radar.evaluation.motion_method: proesmans``, pysteps' Proesmans optical flow on the
  last two frames), then semi-Lagrangian extrapolation
  (``pysteps.extrapolation.get_method("semilagrangian")``) of the last frame over the leads.
  NaN cells (outside coverage, QC) are set to ``floor`` before the motion estimate; what the
  extrapolation advects in from outside the grid is ``floor``; cells that are NaN in the
  last frame are NaN again in every lead (the coverage does not move).
"""
from __future__ import annotations

import logging

import numpy as np

log = logging.getLogger(__name__)


def _values(a) -> np.ndarray:
    return np.asarray(getattr(a, "values", a), dtype=np.float64)


def _wrap(arr: np.ndarray, like, n_leads: int):
    """A DataArray (sample, lead, y, x) with the input's sample/y/x coords when given one."""
    try:
        import xarray as xr
    except ImportError:  # pragma: no cover
        return arr
    if not isinstance(like, xr.DataArray):
        return arr
    dims = ("sample", "lead", like.dims[-2], like.dims[-1])
    coords = {k: v for k, v in like.coords.items() if set(v.dims) <= {dims[0], dims[2], dims[3]}}
    coords["lead"] = np.arange(1, n_leads + 1)
    return xr.DataArray(arr, dims=dims, coords=coords, attrs={"units": "dBZ", "long_name": "reflectivity nowcast"})


def persistence(inputs, n_leads: int = 10):
    """The last input frame repeated for ``n_leads`` leads."""
    x = _values(inputs)
    out = np.repeat(x[:, -1:, :, :], n_leads, axis=1).astype(np.float32)
    return _wrap(out, inputs, n_leads)


def motion_method(name: str = "auto") -> str:
    """``LK`` (pysteps' Lucas-Kanade, which needs OpenCV), ``proesmans`` (pysteps' variational
    optical flow, Proesmans et al. 1994, compiled with pysteps, no OpenCV); ``auto``: LK
    when OpenCV can be imported, else proesmans (logged)."""
    if name not in ("auto", "LK", "proesmans"):
        raise ValueError(f"radar.evaluation.motion_method = {name!r} not in auto, LK, proesmans")
    if name != "auto":
        return name
    try:
        import cv2  # noqa: F401
        return "LK"
    except ImportError:
        log.warning("OpenCV is not installed: the optical-flow baseline uses Proesmans instead of Lucas-Kanade")
        return "proesmans"


def optical_flow(inputs, n_leads: int = 10, floor: float = 0.0, n_motion_frames: int = 3,
                 method: str = "auto", motion_kwargs: dict | None = None):
    """Motion field (Lucas-Kanade from the last ``n_motion_frames`` frames, or Proesmans
    from the last two) + semi-Lagrangian extrapolation of the last frame of each sample.
    The result's ``attrs["motion_method"]`` names the method used (a DataArray input)."""
    from pysteps import extrapolation, motion

    method = motion_method(method)
    lk = motion.get_method(method)
    extrap = extrapolation.get_method("semilagrangian")
    x = _values(inputs)
    S, T, H, W = x.shape
    k = max(2, min(int(n_motion_frames), T)) if method == "LK" else 2
    out = np.empty((S, n_leads, H, W), dtype=np.float32)
    for i in range(S):
        frames = x[i, -k:]
        filled = np.where(np.isfinite(frames), frames, floor)
        velocity = lk(filled, verbose=False, **(motion_kwargs or {}))
        fc = extrap(filled[-1], velocity, n_leads, outval=floor)
        fc = np.where(np.isfinite(fc), fc, floor)
        out[i] = np.where(np.isfinite(frames[-1])[None], fc, np.nan)
        if (i + 1) % 50 == 0 or i + 1 == S:
            log.info("optical flow: %d/%d samples", i + 1, S)
    out = _wrap(out, inputs, n_leads)
    if hasattr(out, "attrs"):
        out.attrs["motion_method"] = method
    return out


BASELINES = {"persistence": persistence, "optical_flow": optical_flow}
