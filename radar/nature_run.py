"""The radar nature run: convective cells observed by virtual dual-polarisation radars and gauges.

Seeded and reproducible (the seed is ``radar.nature_run.seed`` or the top-level ``seed``).
Convective cells live on a 1 km grid (``domain_km`` square centred on ``origin``, larger than
the 64 x 64 km analysis grid so cells advect in) at ``step_minutes`` steps: each is born at a
random place and time (Poisson, ``birth_rate_per_hour`` over the domain), is carried by a
uniform steering flow that varies slowly in time, and has a life cycle of ``lifetime_min``
(growth, maturity, decay; the liquid water content W follows sin^2 of the life phase p).

With maturity and fallout (options) a cell's updraft grows over the first half of its
lifetime, holds for a random time, then decays; its precipitation follows ``fallout_min`` later.

Polarimetric variables come from one normalised gamma drop-size distribution (DSD)
``N(D) = Nw f(mu) (D/D0)^mu exp(-(3.67+mu) D/D0)`` per grid point (Bringi & Chandrasekar
2001, eq. 7.62), at **S band** (wavelength 10.7 cm, water permittivity 80.2+9.5j, no
attenuation), Rayleigh scattering by oblate spheroids with the linear axis ratio
``r = 1.03 - 0.062 D`` (Pruppacher & Beard):

- ``Z_h,v = int D^6 |alpha_h,v / alpha_sphere|^2 N(D) dD`` (mm^6 m^-3), ``Z_DR = 10 log10(Z_h/Z_v)``,
  with the spheroid polarisabilities ``alpha = (eps-1)/(1 + L (eps-1))`` (depolarisation
  factors L of the spheroid);
- ``K_DP = (180/pi) 1e3 (pi/lambda) int V(D) Re(alpha_h - alpha_v) N(D) dD`` (deg/km), V the
  drop volume in m^3 (close to B&C's ``K_DP = (180/lambda) 1e-3 C W (1 - r_m)``, C = 3.75);
- ``R = 0.6 pi 1e-3 int v(D) D^3 N(D) dD`` (mm/h) with ``v = 3.78 D^0.67`` m/s (Atlas & Ulbrich),
  ``W = (pi/6) 1e-3 int D^3 N(D) dD`` (g m^-3).

The information in Z_DR and K_DP: a cell's median drop diameter D0 falls through its life
(``D0 = D0c + dD0 cos(pi p)``, D0c drawn per cell), and in the growth phase large drops are
lofted above the melting level (a Z_DR column); so a growing and a decaying cell with the
same Z_H differ in Z_DR (and in K_DP per unit Z_H), and the core aloft leads the low-level
core. Z_H's own hour of history tells the life phase as well, though; what it does not tell
is the pace of the life cycle (the lifetime), which sets how fast a cell will grow or decay.
That pace is the updraft's: a fast-developing cell has a strong updraft, which sorts the
drops, so ``D0 += d0_updraft_mm ln(geometric-mean lifetime / lifetime)`` throughout its
life, and Z_DR carries information about the cell's future that Z_H does not.
``radar/information.py`` measures it on the truth (``benchmarks/radar_information.py``): the
out-of-sample R^2 of the 30-min Z_H change at cell centres rises from about 0.61 (Z_H level
and trend at the CAPPI heights) to 0.67 with Z_DR and K_DP (seeds 0-2); with
``d0_updraft_mm: 0`` and a per-cell D0 spread of 0.25 mm (the first design) the gain was
about 0.

In that design a cell's whole life is set at its birth, and Z_H's hour of history shows most
of it. Real convection is less kind, and the updraft leads the precipitation it makes: a
third design (an option, off by default; see below for why) adds (a) **maturity**: the updraft holds at full strength for a
memoryless (exponential, mean ``mature_min_mean``) time between growth and decay, so nothing
in Z_H's past tells when the decay will start; (b) **fallout**: the precipitation mass, so
Z_H, follows the updraft's life ``fallout_min`` later (less aloft, where the core leads);
(c) **drop sorting by the updraft now**: ``D0 += d0_sorting_mm (sin^2(pi q_updraft) -
sin^2(pi q_mass))`` at constant Z_H (Nw matches Z_H), so Z_DR and K_DP per unit Z_H show the
updraft's state ``fallout_min`` before Z_H does: large drops ahead of a growing core, small
ones in a core whose updraft has ended and whose rain is still falling. Measured on echo
pixels followed along the flow (``lagrangian_records``; seeds 0-2, default config), the
out-of-sample R^2 of their 30-min Z_H change rises by about 0.08 with Z_DR and K_DP (0.03 in
the second design) and by 0.00-0.01 in the control world. With ``mature_min_mean: 30``,
``fallout_min: 18`` and ``d0_sorting_mm: 1`` the radar track's networks still showed no
dual-pol gain on the test split (README, "Radar"), so the default stays the second design,
whose figures the README reports. **Control world** (``control: true``): Z_H is the same field; D0 is a fixed
function of Z_H (the default world's mean Z_H-D0 relation of a mature cell) plus random
noise of the same variance as the default world's D0 departures from that relation, drawn
afresh per cell and step (no memory), Nw then matches Z_H; so Z_DR and K_DP say nothing
about the future beyond Z_H (gain about 0 by the same measure).

Written (``python -m radar.nature_run --config CONFIG --out data/radar/raw --truth data/radar/truth
[--log FILE] [--threads N]``; N processes share the steps, default 2)::

    OUT/<RADAR_ID>/<RADAR_ID>_<YYYYmmdd_HHMMSS>.nc   CfRadial 1.x PPI volume per step
    OUT/gauges/gauges.csv                            station,lat,lon,time,rain_mm (6-min totals)
    TRUTH/truth.nc                                   DBZH, ZDR, KDP, RATE on the analysis grid at
                                                     the model heights, cells' phase, gauge sites

Radar volumes: gates sampled from the 3-D fields at the beam height (4/3 effective earth
radius), noise added, RHOHV, ground clutter near the radar, PHIDP = system phase +
2 x range integral of K_DP + noise; KDP left out of ``kdp_missing_fraction`` of the volumes;
gates without echo are masked (fill value).
"""
from __future__ import annotations

import copy
import hashlib
import json
import logging
import math
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.common import cli
from pipeline.common.atomic import atomic_path
from pipeline.common.errors import ConfigError
from pipeline.common.provenance import package_versions

log = logging.getLogger("radar.nature_run")
progress = logging.getLogger("radar.nature_run" + cli.PROGRESS_SUFFIX) if hasattr(cli, "PROGRESS_SUFFIX") else log

WAVELENGTH_M = 0.107            # S band
EPS_WATER = complex(80.2, 9.5)  # liquid water at S band, about 20 C
AXIS_SLOPE = 0.062              # r = 1.03 - 0.062 D (D in mm)
EARTH_RADIUS_M = 6371000.0
MATURE_CAP = 4.0                # maturity is cut at this many times its mean

DEFAULTS: dict = {
    "seed": None,
    "control": False,
    "start": "2024-07-01T00:00:00Z",
    "steps": 480,
    "step_minutes": 6,
    "origin": {"lat": 52.0, "lon": 5.0},
    "domain_km": 112,
    "analysis_km": 64,
    "heights_m": [500, 1000, 2000, 3000, 4000, 6000],
    "melting_level_m": 3500.0,
    "steering": {"u_ms": 8.0, "v_ms": 3.0, "amplitude_ms": 4.0, "period_hours": 18.0},
    "cells": {"birth_rate_per_hour": 12.0, "lifetime_min": [30, 90], "radius_km": [2.5, 5.0],
              "max_water_gm3": [0.5, 3.0], "d0_mm": 1.5, "d0_cell_spread_mm": 0.1,
              "d0_life_swing_mm": 0.35, "d0_updraft_mm": 0.5, "mu": 3.0,
              "mature_min_mean": 0.0, "fallout_min": 0.0, "d0_sorting_mm": 0.0},
    "gauges": {"count": 40, "noise": 0.15, "bucket_mm": 0.2, "missing_fraction": 0.02},
    "radars": [{"id": "RAD1", "lat": 52.0, "lon": 5.0, "altitude_m": 50.0,
                "elevations_deg": [0.5, 1.5, 3.0, 5.0], "gate_spacing_m": 1000.0,
                "max_range_km": 50.0, "n_rays": 360}],
    "noise": {"dbz": 1.0, "zdr_db": 0.2, "kdp_degkm": 0.15, "phidp_deg": 3.0},
    "system_phase_deg": 30.0,
    "kdp_missing_fraction": 0.3,
    "clutter_fraction": 0.04,
    "clutter_range_km": 15.0,
}


# --------------------------------------------------------------------------- DSD physics
def gamma_f(mu: float) -> float:
    """f(mu) of the normalised gamma DSD (B&C eq. 7.62)."""
    return 6.0 / 3.67 ** 4 * (3.67 + mu) ** (mu + 4) / math.gamma(mu + 4)


def axis_ratio(d_mm):
    return np.clip(1.03 - AXIS_SLOPE * np.asarray(d_mm, float), 0.2, 1.0)


def _depolarisation(r):
    """Depolarisation factors (L_horizontal, L_vertical) of an oblate spheroid with axis ratio r."""
    r = np.asarray(r, float)
    f2 = np.maximum(1.0 / r ** 2 - 1.0, 1e-12)
    f = np.sqrt(f2)
    lz = (1 + f2) / f2 * (1 - np.arctan(f) / f)
    lz = np.where(r >= 1.0 - 1e-9, 1.0 / 3.0, lz)
    return (1 - lz) / 2, lz


def _alpha(lfac):
    return (EPS_WATER - 1) / (1 + lfac * (EPS_WATER - 1))


def dsd_integrals(nw, d0_mm, mu=3.0, spheres=False, n=600, dmax=8.0) -> dict:
    """Z_h, Z_v (mm^6 m^-3), Z_DR (dB), K_DP (deg/km), R (mm/h), W (g m^-3) of one gamma DSD
    by direct numerical integration (trapezoid over D in (0, dmax] mm)."""
    d = np.linspace(dmax / n, dmax, n)
    nd = nw * gamma_f(mu) * (d / d0_mm) ** mu * np.exp(-(3.67 + mu) * d / d0_mm)
    if spheres:
        ah = av = np.full(d.shape, _alpha(1 / 3))
    else:
        lh, lv = _depolarisation(axis_ratio(d))
        ah, av = _alpha(lh), _alpha(lv)
    asph = _alpha(1 / 3)
    zh = np.trapezoid(d ** 6 * np.abs(ah / asph) ** 2 * nd, d)
    zv = np.trapezoid(d ** 6 * np.abs(av / asph) ** 2 * nd, d)
    vol = np.pi / 6 * (d * 1e-3) ** 3
    kdp = 180 / np.pi * 1e3 * (np.pi / WAVELENGTH_M) * np.trapezoid(vol * np.real(ah - av) * nd, d)
    rate = 0.6 * np.pi * 1e-3 * np.trapezoid(3.78 * d ** 0.67 * d ** 3 * nd, d)
    w = np.pi / 6 * 1e-3 * np.trapezoid(d ** 3 * nd, d)
    return {"zh": zh, "zv": zv, "zdr": 10 * np.log10(zh / zv), "kdp": kdp, "rate": rate, "w": w}


class DSDTable:
    """Per-unit-Nw integrals as functions of D0 (mu fixed): every variable scales with Nw."""

    def __init__(self, mu: float = 3.0, d0_min=0.5, d0_max=3.5, n=121):
        self.d0 = np.linspace(d0_min, d0_max, n)
        rows = [dsd_integrals(1.0, x, mu) for x in self.d0]
        for key in ("zh", "zdr", "kdp", "rate", "w"):
            setattr(self, key, np.array([r[key] for r in rows]))

    def from_water(self, w, d0):
        """Z_H (dBZ), Z_DR (dB), K_DP (deg/km), R (mm/h) for water content W and D0."""
        d0 = np.clip(d0, self.d0[0], self.d0[-1])
        nw = w / np.interp(d0, self.d0, self.w)
        zh = nw * np.interp(d0, self.d0, self.zh)
        with np.errstate(divide="ignore"):
            dbz = 10 * np.log10(np.maximum(zh, 1e-10))
        return dbz, np.interp(d0, self.d0, self.zdr), nw * np.interp(d0, self.d0, self.kdp), \
            nw * np.interp(d0, self.d0, self.rate)

    def d0_for_ratio(self, z_over_w):
        """D0 whose Z/W (per unit Nw, monotonic in D0) equals z_over_w (mm^6 m^-3 per g m^-3)."""
        ratio = self.zh / self.w
        return np.interp(z_over_w, ratio, self.d0)


# --------------------------------------------------------------------------- settings
def settings(config: dict) -> dict:
    """``radar.nature_run`` merged over :data:`DEFAULTS` (nested mappings merged), checked."""
    s = copy.deepcopy(DEFAULTS)
    given = ((config or {}).get("radar") or {}).get("nature_run") or {}
    for k, v in given.items():
        if isinstance(v, dict) and isinstance(s.get(k), dict):
            s[k].update(v)
        else:
            s[k] = copy.deepcopy(v)
    if s["seed"] is None:
        s["seed"] = int((config or {}).get("seed", 0))
    if s["analysis_km"] > s["domain_km"]:
        raise ConfigError(f"config key 'radar.nature_run.analysis_km': {s['analysis_km']} is larger than "
                          f"radar.nature_run.domain_km ({s['domain_km']})")
    for key in ("lifetime_min", "radius_km", "max_water_gm3"):
        lo, hi = s["cells"][key]
        if not 0 < lo <= hi:
            raise ConfigError(f"config key 'radar.nature_run.cells.{key}': {[lo, hi]} is not an increasing positive range")
    if sorted(s["heights_m"]) != list(s["heights_m"]) or len(set(s["heights_m"])) != len(s["heights_m"]):
        raise ConfigError(f"config key 'radar.nature_run.heights_m': {s['heights_m']} is not strictly increasing")
    ids = [r["id"] for r in s["radars"]]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"config key 'radar.nature_run.radars': duplicate radar id in {ids}")
    try:
        pd.Timestamp(s["start"])
    except ValueError:
        raise ConfigError(f"config key 'radar.nature_run.start': {s['start']!r} is not a date-time") from None
    return s


def config_digest(s: dict) -> str:
    return hashlib.sha256(json.dumps(s, sort_keys=True, default=str).encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- geometry
def aeqd_xy(lat, lon, lat0, lon0):
    """Azimuthal-equidistant x, y (m) of lat/lon about (lat0, lon0) on a sphere."""
    lat, lon, lat0, lon0 = map(np.radians, (np.asarray(lat, float), np.asarray(lon, float), lat0, lon0))
    cosc = np.sin(lat0) * np.sin(lat) + np.cos(lat0) * np.cos(lat) * np.cos(lon - lon0)
    c = np.arccos(np.clip(cosc, -1, 1))
    k = np.where(c > 1e-12, c / np.maximum(np.sin(c), 1e-300), 1.0)
    x = EARTH_RADIUS_M * k * np.cos(lat) * np.sin(lon - lon0)
    y = EARTH_RADIUS_M * k * (np.cos(lat0) * np.sin(lat) - np.sin(lat0) * np.cos(lat) * np.cos(lon - lon0))
    return x, y


def aeqd_latlon(x, y, lat0, lon0):
    """Inverse of :func:`aeqd_xy`."""
    lat0, lon0 = np.radians(lat0), np.radians(lon0)
    x, y = np.asarray(x, float), np.asarray(y, float)
    rho = np.hypot(x, y)
    c = rho / EARTH_RADIUS_M
    with np.errstate(invalid="ignore", divide="ignore"):
        lat = np.arcsin(np.cos(c) * np.sin(lat0) + np.where(rho > 0, y * np.sin(c) * np.cos(lat0) / np.where(rho > 0, rho, 1), 0))
        lon = lon0 + np.arctan2(x * np.sin(c), rho * np.cos(lat0) * np.cos(c) - y * np.sin(lat0) * np.sin(c))
    return np.degrees(lat), np.degrees(lon)


def beam_height(range_m, elev_deg, altitude_m=0.0):
    """Beam centre height (m above MSL) and ground distance (m), 4/3 effective earth radius."""
    re = 4.0 / 3.0 * EARTH_RADIUS_M
    el = np.radians(elev_deg)
    h = np.sqrt(range_m ** 2 + re ** 2 + 2 * range_m * re * np.sin(el)) - re
    s = re * np.arcsin(range_m * np.cos(el) / (re + h))
    return h + altitude_m, s


# --------------------------------------------------------------------------- the world
class World:
    """Cells, steering flow and the gridded 3-D fields of one configuration."""

    def __init__(self, s: dict):
        self.s = s
        self.dt_h = s["step_minutes"] / 60.0
        self.times = pd.date_range(pd.Timestamp(s["start"]).tz_localize(None) if pd.Timestamp(s["start"]).tzinfo is None
                                   else pd.Timestamp(s["start"]).tz_convert("UTC").tz_localize(None),
                                   periods=s["steps"], freq=f"{s['step_minutes']}min")
        half = s["domain_km"] / 2
        self.x = (np.arange(s["domain_km"]) - half + 0.5) * 1000.0
        self.heights = np.asarray(s["heights_m"], float)
        self.table = DSDTable(s["cells"]["mu"])
        rng = np.random.default_rng([s["seed"], 17, 0])
        c = s["cells"]
        st = s["steering"]
        # steering flow (uniform in space, slowly varying), and the displacement since t=0
        t_h = np.arange(s["steps"] + 1) * self.dt_h
        phase = rng.uniform(0, 2 * np.pi, 2)
        self.u = st["u_ms"] + st["amplitude_ms"] * np.sin(2 * np.pi * t_h / st["period_hours"] + phase[0])
        self.v = st["v_ms"] + st["amplitude_ms"] * np.sin(2 * np.pi * t_h / st["period_hours"] + phase[1])
        self.disp_x = np.concatenate([[0], np.cumsum(self.u[:-1] * self.dt_h * 3600)])
        self.disp_y = np.concatenate([[0], np.cumsum(self.v[:-1] * self.dt_h * 3600)])
        # cells: born from before the start (spin-up of one max lifetime) to the end
        mature_cap = MATURE_CAP * c["mature_min_mean"]
        spin = int(math.ceil((c["lifetime_min"][1] + mature_cap + c["fallout_min"]) / s["step_minutes"]))
        nb = rng.poisson(c["birth_rate_per_hour"] * self.dt_h, s["steps"] + spin)
        n = int(nb.sum())
        self.birth = np.repeat(np.arange(-spin, s["steps"]), nb).astype(float) + rng.uniform(0, 1, n)
        self.life = rng.uniform(*c["lifetime_min"], n) / s["step_minutes"]  # in steps
        # birth position: uniform over the domain in the frame moving with the flow
        self.x0 = rng.uniform(-half * 1000, half * 1000, n)
        self.y0 = rng.uniform(-half * 1000, half * 1000, n)
        self.radius = rng.uniform(*c["radius_km"], n) * 1000.0
        self.wmax = np.exp(rng.uniform(*np.log(c["max_water_gm3"]), n))
        self.d0c = c["d0_mm"] + c["d0_cell_spread_mm"] * rng.standard_normal(n)
        self.n_cells = n
        # maturity: the updraft holds at full strength for a memoryless (exponential) time, from
        # its own random stream, so that without maturity the world is the first design's
        self.mature = np.zeros(n)
        if c["mature_min_mean"] > 0:
            draw = np.random.default_rng([s["seed"], 17, 2]).exponential(c["mature_min_mean"], n)
            self.mature = np.minimum(draw, mature_cap) / s["step_minutes"]
        # the precipitation mass follows the updraft that makes it fallout_min later
        self.fallout = c["fallout_min"] / s["step_minutes"]
        self.span = self.life + self.mature + self.fallout  # steps with updraft or precipitation
        self.control = bool(s["control"])
        self._ctl_rng_seed = [s["seed"], 17, 1]
        # drop sorting by the updraft: a cell that develops fast has a strong updraft, so a
        # D0 excess of d0_updraft_mm ln(life_geo / life) throughout its life
        self.life_geo = math.sqrt(c["lifetime_min"][0] * c["lifetime_min"][1]) / s["step_minutes"]
        # the control world's D0 noise: the variance of the default world's D0 departures
        # (cell spread, life-cycle swing over a life, updraft term over these cells)
        # (cos^2 of the life phase averages 1/2 over growth and decay, 0 at maturity, 1 after)
        swing_var = float(np.mean((self.life / 2 + self.fallout) / self.span))
        self.d0_sd = math.sqrt(c["d0_cell_spread_mm"] ** 2 + c["d0_life_swing_mm"] ** 2 * swing_var
                               + c["d0_updraft_mm"] ** 2 * float(np.var(np.log(self.life))))

    def cell_positions(self, k: int):
        """Active cells at step k: index, p in [0,1] (age over the span of updraft and
        precipitation; the life phase without maturity and fallout), x, y (m)."""
        p = (k - self.birth) / self.span
        idx = np.nonzero((p > 0) & (p < 1))[0]
        kk = min(k, len(self.disp_x) - 1)
        # position: born at (x0, y0) at its birth step, carried by the flow since then
        kb = np.clip(np.floor(self.birth[idx]).astype(int), 0, None)
        x = self.x0[idx] + self.disp_x[kk] - self.disp_x[kb]
        y = self.y0[idx] + self.disp_y[kk] - self.disp_y[kb]
        # cells leaving the domain downstream re-enter upstream (periodic domain)
        L = self.s["domain_km"] * 1000.0
        x = (x + L / 2) % L - L / 2
        y = (y + L / 2) % L - L / 2
        return idx, p[idx], x, y

    def fields(self, k: int) -> dict:
        """The 3-D fields (height, y, x) at step k: DBZH, ZDR, KDP, RATE, plus W and D0."""
        s, c = self.s, self.s["cells"]
        nz, nx = len(self.heights), len(self.x)
        wsum = np.zeros((nz, nx, nx))
        d0w = np.zeros((nz, nx, nx))
        col = np.zeros((nz, nx, nx))  # Z_DR column above the melting level (dB)
        sorting = c["d0_sorting_mm"]
        d0x = np.zeros((nz, nx, nx)) if sorting else None  # W x the updraft's D0 change at constant Z_H
        idx, p, cx, cy = self.cell_positions(k)
        hm = s["melting_level_m"]
        swing = c["d0_life_swing_mm"]
        updraft = c["d0_updraft_mm"]
        L = s["domain_km"] * 1000.0
        for i, xi, yi in zip(idx, cx, cy):
            age = k - self.birth[i]
            pi_ = min(max(self.updraft_phase(i, age), 0.0), 1.0)  # the updraft's life phase now
            lagged = bool(self.mature[i] or self.fallout)
            r = self.radius[i]
            for ox in (-L, 0.0, L):  # periodic images near the edges
                for oy in (-L, 0.0, L):
                    xs, ys = xi + ox, yi + oy
                    if abs(xs) > L / 2 + 3 * r or abs(ys) > L / 2 + 3 * r:
                        continue
                    jx = np.nonzero(np.abs(self.x - xs) < 3 * r)[0]
                    jy = np.nonzero(np.abs(self.x - ys) < 3 * r)[0]
                    if not len(jx) or not len(jy):
                        continue
                    shape = np.exp(-((self.x[jy, None] - ys) ** 2 + (self.x[None, jx] - xs) ** 2) / (2 * r * r))
                    for iz, h in enumerate(self.heights):
                        lead = 0.12 * min(h, hm) / 3000.0  # the core aloft leads the low-level core
                        if lagged:  # the mass: the updraft's phase fallout_min earlier
                            ph = np.clip(self.updraft_phase(i, age - self.fallout + lead * self.life[i]), 0, 1)
                        else:  # the first design (the same arithmetic)
                            ph = np.clip(pi_ + lead, 0, 1)
                        wz = self.wmax[i] * np.sin(np.pi * ph) ** 2
                        if h > hm:
                            wz *= math.exp(-(h - hm) / 2500.0)
                        qz = ph if lagged else pi_  # Z_H's D0 follows the mass's phase
                        d0 = (self.d0c[i] + swing * math.cos(np.pi * qz) + 0.3 * max(0.0, 0.5 - qz) * min(h, hm) / 3000.0
                              + updraft * math.log(self.life_geo / self.life[i]))
                        w2 = wz * shape
                        wsum[iz][np.ix_(jy, jx)] += w2
                        d0w[iz][np.ix_(jy, jx)] += w2 * d0 * (0.85 + 0.15 * shape)
                        if d0x is not None:  # drops sorted by the updraft now, ahead of the mass
                            d0x[iz][np.ix_(jy, jx)] += w2 * sorting * (math.sin(math.pi * pi_) ** 2
                                                                       - math.sin(math.pi * ph) ** 2)
                        if h > hm and pi_ < 0.4:
                            amp = 2.0 * (0.4 - pi_) / 0.4 * math.exp(-(h - hm) / 2000.0)
                            col[iz][np.ix_(jy, jx)] = np.maximum(col[iz][np.ix_(jy, jx)], amp * shape ** 4)
        with np.errstate(invalid="ignore", divide="ignore"):
            d0 = np.where(wsum > 0, d0w / np.maximum(wsum, 1e-30), c["d0_mm"])
        dbz, zdr, kdp, rate = self.table.from_water(wsum, d0)
        if d0x is not None and not self.control:
            # the sorting changes D0 but not Z_H, which follows the mass: Nw matches Z_H at the
            # sorted D0 (so Z_DR and K_DP per unit Z_H show the updraft now)
            with np.errstate(invalid="ignore", divide="ignore"):
                d0s = np.where(wsum > 0, d0 + d0x / np.maximum(wsum, 1e-30), d0)
            zdr, kdp, rate = self._dualpol_at_z(10 ** (dbz / 10), d0s)
        if self.control:
            # Z_H kept; D0 = fixed function of Z_H (the mature-cell relation) + memoryless noise
            z_lin = 10 ** (dbz / 10)
            d0_ref = self._d0_of_z(z_lin)
            rng = np.random.default_rng(self._ctl_rng_seed + [k])
            noise = np.zeros_like(d0_ref)
            for i, xi, yi in zip(idx, cx, cy):  # one draw per cell, smooth within it
                r = self.radius[i]
                shape = np.exp(-((self.x[:, None] - yi) ** 2 + (self.x[None, :] - xi) ** 2) / (2 * r * r))
                noise += self.d0_sd * rng.standard_normal() * shape[None]
            zdr, kdp, rate = self._dualpol_at_z(z_lin, d0_ref + noise)
            col = np.zeros_like(col)
        ice = self.heights > hm
        # above the melting level: dry snow/graupel (|K|^2 ~ 0.18 of water's: -7 dB), Z_DR small
        dbz[ice] -= 7.0
        zdr[ice] = 0.2 + col[ice]
        kdp[ice] *= 0.05
        rate[ice] = 0.0
        echo = dbz >= 0.0
        return {"DBZH": np.where(echo, dbz, 0.0), "ZDR": np.where(echo, zdr, 0.0),
                "KDP": np.where(echo, kdp, 0.0), "RATE": np.where(echo, rate, 0.0),
                "echo": echo, "cells": (idx, p, cx, cy)}

    def _dualpol_at_z(self, z_lin, d0):
        """Z_DR, K_DP and R of the DSD with median diameter ``d0`` (clipped to the table) whose
        Nw gives the linear reflectivity ``z_lin``."""
        d0c = np.clip(d0, self.table.d0[0], self.table.d0[-1])
        nw = z_lin / np.interp(d0c, self.table.d0, self.table.zh)
        return (np.interp(d0c, self.table.d0, self.table.zdr), nw * np.interp(d0c, self.table.d0, self.table.kdp),
                nw * np.interp(d0c, self.table.d0, self.table.rate))

    def updraft_phase(self, i: int, age: float) -> float:
        """Life phase of cell i's updraft ``age`` steps after its birth: growth over the first
        half of its ``life`` (0 to 0.5), 0.5 while mature, decay over the second half (0.5 to
        1); below 0 before its birth, above 1 once its updraft has ended."""
        life, m = self.life[i], self.mature[i]
        if age <= life / 2:
            return age / life
        if age <= life / 2 + m:
            return 0.5
        return (age - m) / life

    def _d0_of_z(self, z_lin):
        """Control world's fixed Z_H -> D0 relation: a mature cell (p = 0.5, D0 = d0_mm) has
        W ~ Z / (Z/W at d0_mm); D0 grows weakly with Z (B&C-like D0 ~ Z^0.1 around d0_mm)."""
        d0m = self.s["cells"]["d0_mm"]
        z_ref = 10 ** 3.5  # 35 dBZ
        return d0m * (np.maximum(z_lin, 1.0) / z_ref) ** 0.05


# --------------------------------------------------------------------------- writers
def _interp_index(world: World, gx, gy, gz):
    """Flat indices and weights of trilinear interpolation of (height, y, x) fields at points."""
    x = world.x
    dx = x[1] - x[0]
    fx = np.clip((gx - x[0]) / dx, 0, len(x) - 1.000001)
    fy = np.clip((gy - x[0]) / dx, 0, len(x) - 1.000001)
    h = world.heights
    fz = np.clip(np.interp(gz, h, np.arange(len(h))), 0, max(len(h) - 1.000001, 0))
    ix, iy, iz = fx.astype(int), fy.astype(int), fz.astype(int)
    ax, ay, az = fx - ix, fy - iy, fz - iz
    nx = len(x)
    inside = (np.abs(gx) <= x[-1]) & (np.abs(gy) <= x[-1])
    idx, wts = [], []
    for cz in (0, 1):
        for cy in (0, 1):
            for cx in (0, 1):
                izz = np.minimum(iz + cz, len(h) - 1)
                idx.append((izz * nx + np.minimum(iy + cy, nx - 1)) * nx + np.minimum(ix + cx, nx - 1))
                wts.append((az if cz else 1 - az) * (ay if cy else 1 - ay) * (ax if cx else 1 - ax))
    return np.stack(idx), np.stack(wts), inside


class VirtualRadar:
    """Gate geometry of one radar and its per-step volume."""

    def __init__(self, world: World, spec: dict, origin: dict):
        self.spec = spec
        ng = int(round(spec["max_range_km"] * 1000 / spec["gate_spacing_m"]))
        self.rng_m = (np.arange(ng) + 0.5) * spec["gate_spacing_m"]
        self.az = (np.arange(spec["n_rays"]) + 0.5) * 360.0 / spec["n_rays"]
        self.elev = np.asarray(spec["elevations_deg"], float)
        rx, ry = aeqd_xy(spec["lat"], spec["lon"], origin["lat"], origin["lon"])
        el = np.repeat(self.elev, len(self.az))
        az = np.tile(self.az, len(self.elev))
        self.ray_el, self.ray_az = el, az
        h, sgr = beam_height(self.rng_m[None, :], el[:, None], spec["altitude_m"])
        gx = rx + sgr * np.sin(np.radians(az))[:, None]
        gy = ry + sgr * np.cos(np.radians(az))[:, None]
        self.gz = h
        self.index, self.weights, self.inside = _interp_index(world, gx, gy, h)
        seed = int.from_bytes(hashlib.sha256(spec["id"].encode()).digest()[:4], "little")
        crng = np.random.default_rng([world.s["seed"], 17, 2, seed])
        near = self.rng_m[None, :] < world.s["clutter_range_km"] * 1000
        low = (el[:, None] <= self.elev.min() + 1e-6)
        self.clutter = near & low & (crng.uniform(size=h.shape) < world.s["clutter_fraction"] * 4)
        self.clutter_dbz = crng.uniform(25, 50, h.shape)
        self.rid = seed

    def sample(self, f3: dict) -> dict:
        out = {}
        for name in ("DBZH", "ZDR", "KDP"):
            flat = f3[name].ravel()
            out[name] = (flat[self.index] * self.weights).sum(axis=0)
        echo = (f3["echo"].ravel().astype(float)[self.index] * self.weights).sum(axis=0) > 0.5
        out["echo"] = echo & self.inside
        return out


FIELD_META = {
    "DBZH": ("equivalent_reflectivity_factor", "dBZ", "Equivalent reflectivity factor H", 0.1),
    "ZDR": ("log_differential_reflectivity_hv", "dB", "Log differential reflectivity H/V", 0.01),
    "PHIDP": ("differential_phase_hv", "degrees", "Differential phase H/V", 0.1),
    "KDP": ("specific_differential_phase_hv", "degrees/km", "Specific differential phase H/V", 0.01),
    "RHOHV": ("cross_correlation_ratio_hv", "1", "Cross correlation ratio H/V", 0.001),
}


def _chars(text: str, n: int = 32) -> np.ndarray:
    return np.array(list(text.ljust(n, "\0")[:n]), "S1")


def write_cfradial(path, vr: VirtualRadar, when: pd.Timestamp, fields: dict, include_kdp: bool) -> None:
    """One CfRadial 1.3 PPI volume (the layout Py-ART's writer produces), written with netCDF4
    directly (Py-ART's writer takes ~1 s a volume): int16 fields with scale_factor, zlib,
    masked gates as _FillValue -32768."""
    import netCDF4

    spec = vr.spec
    nray_s, nsw = len(vr.az), len(vr.elev)
    with netCDF4.Dataset(path, "w", format="NETCDF4") as nc:
        nc.setncatts({"Conventions": "CF/Radial instrument_parameters", "version": "1.3",
                      "title": f"radar nature run volume {spec['id']}", "institution": "upstream-rain",
                      "source": "radar.nature_run (synthetic nature run)", "instrument_name": spec["id"],
                      "platform_type": "fixed", "instrument_type": "radar", "primary_axis": "axis_z",
                      "field_names": ", ".join(k for k in fields if include_kdp or k != "KDP"),
                      "history": f"radar.nature_run {cli.version()}"})
        nc.createDimension("time", nray_s * nsw)
        nc.createDimension("range", len(vr.rng_m))
        nc.createDimension("sweep", nsw)
        nc.createDimension("string_length", 32)
        start = when.strftime("%Y-%m-%dT%H:%M:%SZ")
        end = (when + pd.Timedelta(seconds=300)).strftime("%Y-%m-%dT%H:%M:%SZ")

        def var(name, dtype, dims, data, **attrs):
            v = nc.createVariable(name, dtype, dims)
            v.setncatts(attrs)
            v[...] = data
            return v

        var("volume_number", "i4", (), 0, long_name="Volume number", units="unitless")
        var("time_coverage_start", "S1", ("string_length",), _chars(start),
            long_name="UTC time of first ray in the file", units="unitless")
        var("time_coverage_end", "S1", ("string_length",), _chars(end),
            long_name="UTC time of last ray in the file", units="unitless")
        var("latitude", "f8", (), spec["lat"], long_name="Latitude", units="degrees_north", standard_name="latitude")
        var("longitude", "f8", (), spec["lon"], long_name="Longitude", units="degrees_east", standard_name="longitude")
        var("altitude", "f8", (), spec["altitude_m"], long_name="Altitude", units="meters",
            standard_name="altitude", positive="up")
        var("sweep_number", "i4", ("sweep",), np.arange(nsw), long_name="Sweep number", units="count",
            standard_name="sweep_number")
        var("sweep_mode", "S1", ("sweep", "string_length"),
            np.stack([_chars("azimuth_surveillance")] * nsw), long_name="Sweep mode", units="unitless",
            standard_name="sweep_mode")
        var("fixed_angle", "f4", ("sweep",), vr.elev, long_name="Target angle for sweep", units="degrees",
            standard_name="target_fixed_angle")
        var("sweep_start_ray_index", "i4", ("sweep",), np.arange(nsw) * nray_s,
            long_name="Index of first ray in sweep, 0-based", units="count")
        var("sweep_end_ray_index", "i4", ("sweep",), np.arange(nsw) * nray_s + nray_s - 1,
            long_name="Index of last ray in sweep, 0-based", units="count")
        var("time", "f8", ("time",), np.linspace(0, 300, nray_s * nsw, endpoint=False),
            long_name="time_in_seconds_since_volume_start", units=f"seconds since {start}",
            standard_name="time", calendar="gregorian")
        var("range", "f4", ("range",), vr.rng_m, long_name="range_to_measurement_volume", units="meters",
            standard_name="projection_range_coordinate", axis="radial_range_coordinate",
            spacing_is_constant="true", meters_to_center_of_first_gate=float(vr.rng_m[0]),
            meters_between_gates=float(vr.rng_m[1] - vr.rng_m[0]))
        var("azimuth", "f4", ("time",), vr.ray_az, long_name="azimuth_angle_from_true_north", units="degrees",
            standard_name="beam_azimuth_angle", axis="radial_azimuth_coordinate")
        var("elevation", "f4", ("time",), vr.ray_el, long_name="elevation_angle_from_horizontal_plane",
            units="degrees", standard_name="beam_elevation_angle", axis="radial_elevation_coordinate")
        for name, data in fields.items():
            if name == "KDP" and not include_kdp:
                continue
            std, units, long, scale = FIELD_META[name]
            v = nc.createVariable(name, "i2", ("time", "range"), zlib=True, complevel=1, shuffle=True,
                                  fill_value=np.int16(-32768), chunksizes=(nray_s, len(vr.rng_m)))
            v.setncatts({"standard_name": std, "units": units, "long_name": long,
                         "scale_factor": np.float32(scale), "add_offset": np.float32(0.0),
                         "coordinates": "elevation azimuth range"})
            v.set_auto_maskandscale(True)
            lim = 32767 * scale
            v[...] = np.ma.clip(data, -lim, lim)


def _radar_fields(vr: VirtualRadar, g: dict, rng, s: dict) -> dict:
    nz = s["noise"]
    echo = g["echo"]
    shape = echo.shape
    dbz = g["DBZH"] + nz["dbz"] * rng.standard_normal(shape)
    zdr = g["ZDR"] + nz["zdr_db"] * rng.standard_normal(shape)
    kdp_true = np.where(echo, g["KDP"], 0.0)
    kdp = kdp_true + nz["kdp_degkm"] * rng.standard_normal(shape)
    dr_km = vr.spec["gate_spacing_m"] / 1000.0
    phidp = s["system_phase_deg"] + 2 * np.cumsum(kdp_true, axis=1) * dr_km + nz["phidp_deg"] * rng.standard_normal(shape)
    rhohv = np.clip(0.99 - 0.01 * np.abs(rng.standard_normal(shape)), 0, 1)
    clut = vr.clutter
    dbz = np.where(clut, np.maximum(dbz, vr.clutter_dbz + 2 * rng.standard_normal(shape)), dbz)
    zdr = np.where(clut, 3 * rng.standard_normal(shape), zdr)
    rhohv = np.where(clut, rng.uniform(0.5, 0.85, shape), rhohv)
    phidp = np.where(clut, phidp + 30 * rng.standard_normal(shape), phidp)
    kdp = np.where(clut, kdp + 2 * rng.standard_normal(shape), kdp)
    valid = echo | clut
    out = {}
    for name, arr in (("DBZH", dbz), ("ZDR", zdr), ("PHIDP", phidp), ("KDP", kdp), ("RHOHV", rhohv)):
        out[name] = np.ma.masked_array(arr.astype("float32"), mask=~valid)
    return out


def write_volume(path: Path, vr: VirtualRadar, when, fields, include_kdp: bool) -> None:
    with atomic_path(path) as tmp:
        write_cfradial(tmp, vr, when, fields, include_kdp)


def _gauge_sites(world: World, n: int):
    rng = np.random.default_rng([world.s["seed"], 17, 3])
    half = world.s["analysis_km"] / 2 * 1000
    return rng.uniform(-half, half, n), rng.uniform(-half, half, n)


def gauge_table(world: World, rate_low: np.ndarray) -> pd.DataFrame:
    """6-minute gauge totals from the lowest-height rain rate (times = end of the period).

    rate_low: (time, y, x) mm/h on the nature grid. Totals are the trapezoid of the rate
    between the two steps, times multiplicative lognormal noise, counted in whole tips of
    ``bucket_mm`` (the remainder stays in the bucket); ``missing_fraction`` of records dropped.
    """
    s, g = world.s, world.s["gauges"]
    gx, gy = _gauge_sites(world, g["count"])
    x = world.x
    fx = np.interp(gx, x, np.arange(len(x)))
    fy = np.interp(gy, x, np.arange(len(x)))
    ix, iy = np.floor(fx).astype(int), np.floor(fy).astype(int)
    ax, ay = fx - ix, fy - iy
    ix1, iy1 = np.minimum(ix + 1, len(x) - 1), np.minimum(iy + 1, len(x) - 1)
    r = (rate_low[:, iy, ix] * (1 - ax) * (1 - ay) + rate_low[:, iy, ix1] * ax * (1 - ay)
         + rate_low[:, iy1, ix] * (1 - ax) * ay + rate_low[:, iy1, ix1] * ax * ay)
    true_mm = 0.5 * (r[:-1] + r[1:]) * world.dt_h  # period ending at steps 1..T-1
    rng = np.random.default_rng([s["seed"], 17, 4])
    noisy = true_mm * np.exp(g["noise"] * rng.standard_normal(true_mm.shape) - g["noise"] ** 2 / 2)
    cum = np.cumsum(noisy, axis=0)
    tips = np.floor(cum / g["bucket_mm"] + 1e-9)
    rec = np.diff(np.vstack([np.zeros((1, tips.shape[1])), tips]), axis=0) * g["bucket_mm"]
    lat, lon = aeqd_latlon(gx, gy, s["origin"]["lat"], s["origin"]["lon"])
    times = world.times[1:]
    df = pd.DataFrame({
        "station": np.tile([f"RG{i:03d}" for i in range(g["count"])], len(times)),
        "lat": np.tile(np.round(lat, 5), len(times)),
        "lon": np.tile(np.round(lon, 5), len(times)),
        "time": np.repeat(times.strftime("%Y-%m-%dT%H:%M:%SZ"), g["count"]),
        "rain_mm": np.round(rec.ravel(), 1),
        "_true": true_mm.ravel(),
    })
    keep = rng.uniform(size=len(df)) >= g["missing_fraction"]
    return df[keep].reset_index(drop=True)


# --------------------------------------------------------------------------- driver
def _run_steps(s: dict, out: Path, k0: int, k1: int, include: np.ndarray, show_progress: bool) -> tuple:
    """Steps k0..k1-1: write their volumes; return their truth, low-level rain rate, cell rows."""
    t0 = time.time()
    world = World(s)
    radars = [VirtualRadar(world, spec, s["origin"]) for spec in s["radars"]]
    na = s["analysis_km"]
    off = (s["domain_km"] - na) // 2
    nz = len(world.heights)
    tr = {key: np.zeros((k1 - k0, nz, na, na), "float32") for key in ("DBZH", "ZDR", "KDP", "RATE")}
    rate_low = np.zeros((k1 - k0, len(world.x), len(world.x)), "float32")
    rows = []
    for k in range(k0, k1):
        f3 = world.fields(k)
        for key in tr:
            tr[key][k - k0] = f3[key][:, off:off + na, off:off + na]
        rate_low[k - k0] = f3["RATE"][0]
        idx, p, cx, cy = f3["cells"]
        rows.extend((k, int(i), float(pi_), float(xi), float(yi)) for i, pi_, xi, yi in zip(idx, p, cx, cy))
        when = world.times[k]
        for j, vr in enumerate(radars):
            rng = np.random.default_rng([s["seed"], 17, 6, vr.rid, k])
            fields = _radar_fields(vr, vr.sample(f3), rng, s)
            rid = vr.spec["id"]
            write_volume(out / rid / f"{rid}_{when.strftime('%Y%m%d_%H%M%S')}.nc", vr, when, fields, bool(include[k, j]))
        n = k1 - k0
        if show_progress and (k - k0 + 1) % max(1, n // 5) == 0:
            progress.info("steps %d-%d: %d/%d done (%.1f s)", k0, k1 - 1, k - k0 + 1, n, time.time() - t0)
    return tr, rate_low, rows


def generate(config: dict, out: str | Path, truth: str | Path, show_progress: bool = True,
             threads: int = 1) -> dict:
    """Run the nature run; write volumes, gauges and truth. Returns a summary dict.

    ``threads`` processes share the steps (contiguous chunks); the files do not depend on it
    (every random draw of a step is keyed by the seed and the step)."""
    t0 = time.time()
    s = settings(config)
    out, truth = Path(out), Path(truth)
    world = World(s)
    nt = s["steps"]
    kdp_rng = np.random.default_rng([s["seed"], 17, 5])
    include = kdp_rng.uniform(size=(nt, len(s["radars"]))) >= s["kdp_missing_fraction"]
    threads = max(1, min(int(threads), nt))
    edges = np.linspace(0, nt, threads + 1).astype(int)
    chunks = [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:]) if b > a]
    if threads == 1:
        parts = [_run_steps(s, out, a, b, include, show_progress) for a, b in chunks]
    else:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(threads) as pool:
            futs = [pool.submit(_run_steps, s, out, a, b, include, show_progress) for a, b in chunks]
            parts = [f.result() for f in futs]
    tr = {key: np.concatenate([p_[0][key] for p_ in parts]) for key in parts[0][0]}
    rate_low = np.concatenate([p_[1] for p_ in parts])
    phase_rows = [r for p_ in parts for r in p_[2]]
    off = (s["domain_km"] - s["analysis_km"]) // 2
    gauges = gauge_table(world, rate_low)
    with atomic_path(out / "gauges" / "gauges.csv") as tmp:
        gauges.drop(columns="_true").to_csv(tmp, index=False)
    _write_truth(world, tr, phase_rows, gauges, truth / "truth.nc", off)
    summary = {"steps": nt, "cells": world.n_cells, "volumes": nt * len(s["radars"]),
               "volumes_without_kdp": int((~include).sum()), "gauge_records": len(gauges),
               "processes": len(chunks), "seconds": round(time.time() - t0, 1)}
    log.info("radar nature run: %s", summary)
    return summary


def _write_truth(world: World, tr, phase_rows, gauges, path: Path, off: int) -> None:
    import xarray as xr

    s = world.s
    na = s["analysis_km"]
    xa = world.x[off:off + na]
    lat, lon = aeqd_latlon(xa[None, :], xa[:, None], s["origin"]["lat"], s["origin"]["lon"])
    meta = {"DBZH": ("equivalent_reflectivity_factor", "dBZ", "true reflectivity factor H"),
            "ZDR": ("log_differential_reflectivity_hv", "dB", "true differential reflectivity"),
            "KDP": ("specific_differential_phase_hv", "deg km-1", "true specific differential phase"),
            "RATE": ("rainfall_rate", "mm h-1", "true rain rate")}
    data = {k: (("time", "height", "y", "x"), v, {"standard_name": meta[k][0], "units": meta[k][1],
                                                    "long_name": meta[k][2]}) for k, v in tr.items()}
    ph = np.array(phase_rows, float).reshape(-1, 5)
    ds = xr.Dataset(
        data,
        coords={"time": world.times.values, "height": ("height", world.heights, {"units": "m", "positive": "up"}),
                "y": ("y", xa, {"standard_name": "projection_y_coordinate", "units": "m"}),
                "x": ("x", xa, {"standard_name": "projection_x_coordinate", "units": "m"}),
                "lat": (("y", "x"), lat, {"standard_name": "latitude", "units": "degrees_north"}),
                "lon": (("y", "x"), lon, {"standard_name": "longitude", "units": "degrees_east"})})
    ds["cell_step"] = ("cell_record", ph[:, 0].astype("int32"))
    ds["cell_id"] = ("cell_record", ph[:, 1].astype("int32"))
    ds["cell_phase"] = ("cell_record", ph[:, 2].astype("float32"),
                        {"long_name": "life phase of the cell (0 birth, 0.5 peak water, 1 death)"})
    ds["cell_x"] = ("cell_record", ph[:, 3].astype("float32"), {"units": "m"})
    ds["cell_y"] = ("cell_record", ph[:, 4].astype("float32"), {"units": "m"})
    ds.attrs.update({"title": "radar nature run truth (tests and diagnostics only)",
                     "Conventions": "CF-1.8", "grid_mapping_name": "azimuthal_equidistant",
                     "origin_lat": s["origin"]["lat"], "origin_lon": s["origin"]["lon"],
                     "control": int(bool(s["control"])), "seed": int(s["seed"]),
                     "config_hash": config_digest(s), "settings": json.dumps(s, default=str),
                     "versions": json.dumps(package_versions(["numpy", "xarray", "arm_pyart", "netCDF4"]))})
    enc = {k: {"zlib": True, "complevel": 4} for k in tr}
    with atomic_path(path) as tmp:
        ds.to_netcdf(tmp, encoding=enc)


def build_parser():
    ap = cli.parser("python -m radar.nature_run", __doc__, progress=True,
                    threads="processes sharing the steps (default 2; the files do not depend on it)")
    cli.add_config(ap)
    ap.add_argument("--out", default="data/radar/raw", help="raw output folder (default data/radar/raw)")
    ap.add_argument("--truth", default="data/radar/truth", help="truth folder (default data/radar/truth)")
    ap.add_argument("--log", default=None, help="also write the log to this file")
    return ap


def _main(args) -> int:
    from pipeline.common.config import load_config

    if args.log:
        Path(args.log).parent.mkdir(parents=True, exist_ok=True)
        h = logging.FileHandler(args.log)
        h.setFormatter(logging.Formatter(cli.LOG_FORMAT))
        logging.getLogger().addHandler(h)
    config = load_config(args.config)
    generate(config, args.out, args.truth, show_progress=not args.no_progress,
             threads=args.threads if args.threads else 2)
    return 0


def main(argv=None) -> int:
    os.environ.setdefault("PYART_QUIET", "1")
    return cli.run(build_parser(), _main, argv)


if __name__ == "__main__":
    sys.exit(main())
