"""Physics of the synthetic nature run: steering flow, weather systems, column fields.

Everything here is pure and deterministic. Randomness comes from generators seeded by
absolute quantities only (the seed, a stream code and an absolute day number), so the
atmosphere at a time ``t`` never depends on the study period: a month computed alone
equals the same month computed inside a longer run, and extending the period leaves
earlier months unchanged.

The atmosphere (all anomalies are sums over moving weather systems):

- background: sea-level temperature with a seasonal cycle and a meridional gradient,
  a lapse-rate troposphere (6.5 K/km) under a tropopause and a slightly warming
  stratosphere; a seasonal sea-level pressure; dewpoint depression growing with height;
  winds = steering flow times a jet profile.
- steering: a flow from region 2 towards region 1 (default eastward) of about 11 m/s
  whose day-to-day variation is a Gaussian-smoothed sequence of per-day random kicks.
- systems: born each day (Poisson number, more in summer) mostly upstream of region 1,
  living 1-4 days with a sin-shaped intensity envelope, advected by the steering flow.
  Each carries a sea-level pressure low, a lower-tropospheric warm / upper cold anomaly,
  a moist column, a cyclonic circulation and a rain footprint just ahead of its centre.
- heights: integrated hypsometrically from the sea-level pressure with the virtual
  temperature, on a fine log-pressure grid (tests check them with MetPy).

Two streams of systems exist: ``A`` everywhere in the advective world; in the control
world stream ``A`` is shown upstream of the boundary between the regions and an
independent stream ``B`` (same statistics) downstream of it, so region-2 weather carries
no information about region 1's future.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from pipeline.common.times import hours_since

RD = 287.04749  # J kg-1 K-1, dry-air gas constant (MetPy's value)
G0 = 9.80665  # m s-2, standard gravity (MetPy's value)
EPSILON = 0.6219569  # Rd / Rv (MetPy's value)
KAPPA_LAPSE = RD * 0.0065 / G0  # exponent of T(p) for a 6.5 K/km lapse rate
DAY0 = np.datetime64("1900-01-01T00", "ns")  # absolute day numbers count from here (non-negative)
KM_PER_DEG = 111.195  # km per degree of latitude
MAX_LIFETIME_DAYS = 4.0
KERNEL_HALF_DAYS = 6  # steering kicks further than this (days) have no effect

# Fine pressure grid (hPa) heights are integrated on; configured levels are added to it.
FINE_LEVELS = (1060, 1040, 1020, 1000, 975, 950, 925, 900, 875, 850, 800, 750, 700, 650,
               600, 550, 500, 450, 400, 350, 300, 275, 250, 225, 200, 175, 150, 125, 100,
               85, 70, 60, 50, 40, 30, 25, 20, 15, 10)

STREAM_CODES = {"A": 11, "B": 12}  # seed-sequence codes of the two system streams
KIND_BIRTHS, KIND_STEERING = 1, 2


@dataclass(frozen=True)
class Geometry:
    """Where the regions are and which way the weather moves (degrees)."""

    centre1: np.ndarray  # (lon, lat) of region 1's centre
    direction: np.ndarray  # unit (lon, lat) vector from region 2 towards region 1
    perpendicular: np.ndarray  # unit vector 90 deg to the left of direction
    distance: float  # distance between the region centres along direction, deg
    half_width: float  # half extent of the regions across direction, deg
    boundary: float  # along-flow coordinate of the edge shared by the regions
    extent_along: float  # extent of region 1 along direction, deg
    lon_scale: float  # km per degree of longitude at the domain's centre latitude / km per deg lat

    def along(self, lon, lat):
        """Along-flow coordinate (deg) relative to region 1's centre."""
        return (lon - self.centre1[0]) * self.direction[0] + (lat - self.centre1[1]) * self.direction[1]


def make_geometry(regions: dict) -> Geometry:
    r1, r2 = regions["region1"], regions["region2"]
    c1 = np.array([(r1["lon_min"] + r1["lon_max"]) / 2, (r1["lat_min"] + r1["lat_max"]) / 2])
    c2 = np.array([(r2["lon_min"] + r2["lon_max"]) / 2, (r2["lat_min"] + r2["lat_max"]) / 2])
    d = c1 - c2
    dist = float(np.hypot(*d))
    direction = d / dist
    perp = np.array([-direction[1], direction[0]])
    zonal = abs(direction[0]) > abs(direction[1])
    across = (r1["lat_max"] - r1["lat_min"]) if zonal else (r1["lon_max"] - r1["lon_min"])
    extent = (r1["lon_max"] - r1["lon_min"]) if zonal else (r1["lat_max"] - r1["lat_min"])
    return Geometry(c1, direction, perp, dist, across / 2, -extent / 2, extent,
                    float(np.cos(np.deg2rad(c1[1]))))


def hours_since_day0(times) -> np.ndarray:
    """Times as float hours since DAY0."""
    return hours_since(times, DAY0)


def season(hours: np.ndarray) -> np.ndarray:
    """Seasonal phase: +1 at the rainy-season peak (mid July), -1 in mid January."""
    doy = (hours / 24.0 - 0.0) % 365.2425  # day of year up to a constant phase
    # DAY0 is a 1 January, so doy is the day of year within 0.25 day per year drift.
    return np.cos(2 * np.pi * (doy - 196.0) / 365.2425)


def rng_for(seed: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, *[int(k) for k in keys]])


# ----------------------------------------------------------------------------- steering

@functools.lru_cache(maxsize=4096)
def _steering_kick(seed: int, day: int) -> tuple[float, float]:
    """The steering flow's random kick of absolute day ``day`` (one generator per day; a
    month job asks for the same days several times)."""
    a, b = rng_for(seed, 0, KIND_STEERING, day).standard_normal(2)
    return float(a), float(b)


def steering(seed: int, hours: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Steering speed along the flow and across it (m/s) at ``hours`` (since DAY0).

    Mean 11 m/s (13 in winter, 9 in summer), plus a smooth random part (std about
    3 m/s along, 1.5 m/s across) built from per-day kicks with a 1.5-day Gaussian kernel,
    so it varies from day to day and depends only on days within 6 days of ``t``.
    """
    days = hours / 24.0
    d_lo = int(np.floor(days.min())) - KERNEL_HALF_DAYS
    d_hi = int(np.ceil(days.max())) + KERNEL_HALF_DAYS
    kicks = np.array([_steering_kick(seed, d) for d in range(d_lo, d_hi + 1)])  # (D, 2)
    centres = np.arange(d_lo, d_hi + 1) + 0.5
    kernel = np.exp(-((days[:, None] - centres[None, :]) / 1.5) ** 2)  # (T, D)
    kernel[np.abs(days[:, None] - centres[None, :]) > KERNEL_HALF_DAYS] = 0.0
    noise = kernel @ kicks / np.sqrt(1.5 * np.sqrt(np.pi))  # unit variance
    s = season(hours)
    along = np.maximum(11.0 - 2.0 * s + 3.0 * noise[:, 0], 3.5)
    across = 1.5 * noise[:, 1]
    return along, across


# ----------------------------------------------------------------------------- systems

@dataclass
class Systems:
    """Weather systems of one stream, one row per system."""

    t0: np.ndarray  # birth time, hours since DAY0
    life: np.ndarray  # lifetime, hours
    a0: np.ndarray  # birth position along flow, deg from region-1 centre
    b0: np.ndarray  # birth position across flow, deg
    sigma: np.ndarray  # radius (Gaussian sigma), deg
    speed: np.ndarray  # factor on the steering speed
    p_drop: np.ndarray  # central sea-level pressure drop, hPa
    t_amp: np.ndarray  # lower-tropospheric temperature anomaly, K
    moist: np.ndarray  # column moistening (0-1)
    wind: np.ndarray  # peak cyclonic wind, m/s
    rain: np.ndarray  # peak rain rate, mm/h

    def __len__(self) -> int:
        return self.t0.size


@functools.lru_cache(maxsize=4096)
def _birth_draws(seed: int, stream: str, day: int) -> tuple[float, np.ndarray]:
    """Season phase and the random draws (n, 12) of the systems born on ``day`` (one
    generator per stream and day; a month job asks for the same days several times)."""
    rng = rng_for(seed, STREAM_CODES[stream], KIND_BIRTHS, day)
    s = float(season(np.array([(day + 0.5) * 24.0]))[0])
    rate = 1.55 + 0.75 * s  # systems per day: 0.8 in winter, 2.3 in summer
    n = int(rng.poisson(rate))
    u = rng.random((n, 12))
    u.flags.writeable = False
    return s, u


def births(seed: int, stream: str, day: int, geo: Geometry) -> Systems:
    """Systems born on absolute day ``day`` (a fixed sequence of draws per day)."""
    s, u = _birth_draws(seed, stream, day)
    upstream = u[:, 0] < 0.85
    # Upstream births: from 2.2 region distances upstream of region 1 to region 1's
    # upstream edge; the rest anywhere from region 2's middle to past region 1.
    a_up = -geo.distance * 2.2 + u[:, 1] * (geo.distance * 2.2 - geo.extent_along / 2)
    a_any = -geo.distance * 0.5 + u[:, 1] * (geo.distance * 0.5 + geo.extent_along / 2 + 2)
    a0 = np.where(upstream, a_up, a_any)
    b0 = (u[:, 2] * 2 - 1) * (geo.half_width + 2.5)
    life = 24.0 * (1.0 + 3.0 * u[:, 3] ** 0.8)
    z = np.sqrt(-2 * np.log(np.maximum(u[:, 4], 1e-12))) * np.cos(2 * np.pi * u[:, 5])  # N(0,1)
    summer = 0.5 * (1 + s)
    rain = np.exp(np.log(0.9 + 0.8 * summer) + 0.45 * z)
    return Systems(
        t0=(day + u[:, 6]) * 24.0,
        life=life,
        a0=a0,
        b0=b0,
        sigma=1.3 + 0.9 * u[:, 7],
        speed=0.85 + 0.3 * u[:, 8],
        p_drop=4.0 + 8.0 * u[:, 9],
        t_amp=1.0 + 2.5 * u[:, 10],
        moist=0.65 + 0.3 * u[:, 11],
        wind=4.0 + 8.0 * u[:, 9],
        rain=rain,
    )


def systems_alive(seed: int, stream: str, t_lo: float, t_hi: float, geo: Geometry) -> Systems:
    """All systems of a stream that may be alive in [t_lo, t_hi] hours since DAY0."""
    d_lo = int(np.floor(t_lo / 24.0 - MAX_LIFETIME_DAYS)) - 1
    d_hi = int(np.floor(t_hi / 24.0))
    parts = [births(seed, stream, d, geo) for d in range(d_lo, d_hi + 1)]
    fields = Systems.__dataclass_fields__
    out = Systems(**{k: np.concatenate([getattr(p, k) for p in parts]) for k in fields})
    keep = (out.t0 <= t_hi) & (out.t0 + out.life >= t_lo)
    return Systems(**{k: getattr(out, k)[keep] for k in fields})


@dataclass
class Tracks:
    """Positions and intensity envelope of systems at given times."""

    lon: np.ndarray  # (T, N)
    lat: np.ndarray  # (T, N)
    envelope: np.ndarray  # (T, N), 0 outside the lifetime


def tracks(seed: int, systems: Systems, hours: np.ndarray, geo: Geometry) -> Tracks:
    """Advect each system by the steering flow from its birth to each time in ``hours``."""
    lo = min(float(systems.t0.min()) if len(systems) else hours.min(), hours.min()) - 1.0
    hi = hours.max() + 1.0
    grid = np.arange(np.floor(lo), np.ceil(hi) + 1.0)
    along, across = steering(seed, grid)
    # Positions are in axis degrees (longitude degrees along a zonal flow); m/s -> deg/h.
    k_deg = 3.6 / KM_PER_DEG
    zonal = abs(geo.direction[0]) > 0.5
    k_a = k_deg / (geo.lon_scale if zonal else 1.0)
    k_b = k_deg / (1.0 if zonal else geo.lon_scale)
    cum_a = np.concatenate([[0.0], np.cumsum(0.5 * (along[1:] + along[:-1]))]) * k_a
    cum_b = np.concatenate([[0.0], np.cumsum(0.5 * (across[1:] + across[:-1]))]) * k_b
    da = (np.interp(hours, grid, cum_a)[:, None] - np.interp(systems.t0, grid, cum_a)[None, :]) * systems.speed
    db = (np.interp(hours, grid, cum_b)[:, None] - np.interp(systems.t0, grid, cum_b)[None, :]) * 0.6
    a = systems.a0[None, :] + da
    b = systems.b0[None, :] + db
    lon = geo.centre1[0] + a * geo.direction[0] + b * geo.perpendicular[0]
    lat = geo.centre1[1] + a * geo.direction[1] + b * geo.perpendicular[1]
    age = (hours[:, None] - systems.t0[None, :]) / systems.life[None, :]
    env = np.where((age > 0) & (age < 1), np.sin(np.pi * np.clip(age, 0, 1)), 0.0)
    return Tracks(lon, lat, env)


# ----------------------------------------------------------------------------- column scalars

COLUMN_KEYS = ("p_drop", "t_anom", "moist", "u_anom", "v_anom", "rain")


def system_columns(systems: Systems, tr: Tracks, lon: np.ndarray, lat: np.ndarray,
                   geo: Geometry, keys=COLUMN_KEYS) -> dict[str, np.ndarray]:
    """Sum of system contributions at points (P,) for each time of ``tr``: dict of (T, P).

    rain: mm/h; p_drop: hPa (positive = lower pressure); t_anom: K; moist: 0-0.97;
    u_anom, v_anom: m/s of the cyclonic circulation.
    """
    T, N = tr.lon.shape
    P = lon.size
    out = {k: np.zeros((T, P)) for k in keys}
    if N == 0:
        return out
    cosphi = np.cos(np.deg2rad(lat))[None, None, :]
    # shifted centre (rain and moisture ahead of the low, along the flow), axis degrees
    shift_lon = geo.direction[0] * 0.35 * systems.sigma * (1 / geo.lon_scale if abs(geo.direction[0]) > 0.5 else 1)
    shift_lat = geo.direction[1] * 0.35 * systems.sigma
    for t_lo in range(0, T, 24):
        sl = slice(t_lo, min(T, t_lo + 24))
        env = tr.envelope[sl]  # (t, N)
        active = env.max(axis=0) > 0
        if not active.any():
            continue
        env = env[:, active]
        sig = systems.sigma[active][None, :, None]
        dx = (lon[None, None, :] - tr.lon[sl][:, active, None]) * cosphi
        dy = lat[None, None, :] - tr.lat[sl][:, active, None]
        e = env[:, :, None]
        if "p_drop" in keys or "u_anom" in keys:
            g = np.exp(-(dx ** 2 + dy ** 2) / (2 * sig ** 2))  # (t, n, P)
        if "p_drop" in keys:
            out["p_drop"][sl] = np.einsum("tnp,tn->tp", g, env * systems.p_drop[active])
        if "u_anom" in keys:
            w = e * systems.wind[active][None, :, None] * g / sig * 1.65
            out["u_anom"][sl] = -(w * dy).sum(axis=1)
            out["v_anom"][sl] = (w * dx).sum(axis=1)
        if "moist" in keys or "rain" in keys or "t_anom" in keys:
            dxs = dx - shift_lon[active][None, :, None] * cosphi
            dys = dy - shift_lat[active][None, :, None]
            gs = np.exp(-(dxs ** 2 + dys ** 2) / (2 * sig ** 2))
            if "t_anom" in keys:
                out["t_anom"][sl] = np.einsum("tnp,tn->tp", gs, env * systems.t_amp[active])
            if "moist" in keys:
                out["moist"][sl] = np.minimum(np.einsum("tnp,tn->tp", gs, env * systems.moist[active]), 0.97)
            if "rain" in keys:
                g0 = 0.35
                foot = np.maximum(gs - g0, 0.0) / (1 - g0)
                out["rain"][sl] = np.einsum("tnp,tn->tp", foot, env * systems.rain[active])
    return out


def blend_weight(lon: np.ndarray, lat: np.ndarray, geo: Geometry) -> np.ndarray:
    """Control world: weight of stream B (downstream of the shared edge), 0..1, (P,)."""
    a = (lon - geo.centre1[0]) * geo.direction[0] + (lat - geo.centre1[1]) * geo.direction[1]
    return 1.0 / (1.0 + np.exp(-(a - geo.boundary) / 0.05))


def world_columns(seed: int, world: str, hours: np.ndarray, lon: np.ndarray, lat: np.ndarray,
                  geo: Geometry, keys=COLUMN_KEYS, cache: dict | None = None) -> dict[str, np.ndarray]:
    """System columns of the chosen world at points and times: dict of (T, P)."""
    streams = ["A"] if world == "advective" else ["A", "B"]
    parts = {}
    for s in streams:
        key = (s, float(hours.min()), float(hours.max()), hours.size)
        if cache is not None and key in cache:
            sysm, tr = cache[key]
        else:
            sysm = systems_alive(seed, s, hours.min(), hours.max(), geo)
            tr = tracks(seed, sysm, hours, geo)
            if cache is not None:
                cache[key] = (sysm, tr)
        parts[s] = system_columns(sysm, tr, lon, lat, geo, keys)
    if world == "advective":
        return parts["A"]
    w = blend_weight(lon, lat, geo)[None, :]
    return {k: (1 - w) * parts["A"][k] + w * parts["B"][k] for k in keys}


def rain_seasonal_factor(hours: np.ndarray) -> np.ndarray:
    """Multiplier on rain rates: 0.6 in winter to 1.4 in summer."""
    return 1.0 + 0.4 * season(hours)


# ----------------------------------------------------------------------------- vertical structure

def saturation_vapor_pressure_hpa(t_c):
    """Bolton (1980) saturation vapour pressure (hPa, T in degC); within 0.5 % of MetPy's
    above -20 degC and 2.5 % down to -60 degC (tested)."""
    return 6.112 * np.exp(17.67 * t_c / (t_c + 243.5))


def virtual_temperature_k(t_c, td_c, p_hpa):
    """Virtual temperature (K) from T, dewpoint (degC), pressure (hPa), MetPy's formula."""
    e = saturation_vapor_pressure_hpa(td_c)
    w = EPSILON * e / (p_hpa - e)
    t = t_c + 273.15
    return t * (w + EPSILON) / (EPSILON * (1 + w))


@dataclass
class Columns:
    """Per-column scalars (any common shape) defining full profiles."""

    t_sl: np.ndarray  # sea-level temperature, K
    p_msl: np.ndarray  # sea-level pressure, hPa
    t_anom: np.ndarray  # K, low-level warm anomaly amplitude
    moist: np.ndarray  # 0..0.97 moistening
    dpd0: np.ndarray  # background surface dewpoint depression, K
    t_trop: np.ndarray  # tropopause temperature, K
    jet: np.ndarray  # jet strength factor
    u_bg: np.ndarray  # background wind at steering level, m/s (lon comp.)
    v_bg: np.ndarray
    u_anom: np.ndarray
    v_anom: np.ndarray


def make_columns(hours_tp: np.ndarray, lat_tp: np.ndarray, syscols: dict, steer_along: np.ndarray,
                 steer_across: np.ndarray, geo: Geometry) -> Columns:
    """Column scalars from time (T,P) hours, latitudes and the system sums (T,P)."""
    s = season(hours_tp)
    t_sl = 273.15 + 16.5 + 12.5 * s - 0.7 * (lat_tp - geo.centre1[1])
    p_msl = 1012.0 - 8.0 * s - syscols["p_drop"]
    d = geo.direction
    pp = geo.perpendicular
    u_bg = steer_along * d[0] + steer_across * pp[0]
    v_bg = steer_along * d[1] + steer_across * pp[1]
    return Columns(
        t_sl=t_sl,
        p_msl=p_msl,
        t_anom=syscols["t_anom"],
        moist=syscols["moist"],
        dpd0=5.0 - 2.0 * s,
        t_trop=199.5 - 3.5 * s,
        jet=1.0 - 0.45 * s,
        u_bg=u_bg, v_bg=v_bg,
        u_anom=syscols["u_anom"], v_anom=syscols["v_anom"],
    )


def _softplus(x, scale):
    return scale * np.logaddexp(0.0, x / scale)


def profile(c: Columns, p: np.ndarray, winds: bool = True) -> dict[str, np.ndarray]:
    """Temperature, dewpoint (degC), u, v (m/s) at pressures ``p`` (hPa).

    ``p`` broadcasts against the column scalars with one extra trailing axis, i.e. the
    column scalars get ``[..., None]``. Without ``winds`` only temperature and dewpoint
    (the winds are pointwise in ``p``: :func:`wind_profile` gives them where needed).
    """
    def col(x):
        return np.asarray(x)[..., None]

    lnp = np.log(p)
    t_tropo = col(c.t_sl) * (p / col(c.p_msl)) ** KAPPA_LAPSE
    t_tr = col(c.t_trop)
    strat = 6.0 * np.maximum(0.0, np.log(100.0 / p))
    t_k = t_tr + _softplus(t_tropo - t_tr, 3.0) + strat
    shape_t = np.exp(-((lnp - np.log(800.0)) / 0.45) ** 2) - 0.6 * np.exp(-((lnp - np.log(300.0)) / 0.35) ** 2)
    t_k = t_k + col(c.t_anom) * shape_t
    t_c = t_k - 273.15
    dpd_bg = col(c.dpd0) + 16.0 * np.clip(1.0 - p / 1000.0, 0.0, 1.0) ** 1.4
    wq = np.clip((p - 150.0) / 350.0, 0.0, 1.0)  # moistening fades above 500 hPa
    dpd = np.maximum(dpd_bg * (1.0 - col(c.moist) * wq), 0.2)
    # very cold air is dry (as observed): depression grows below -40 degC
    dpd = dpd + np.maximum(-40.0 - t_c, 0.0) * 0.3
    out = {"temperature": t_c, "dewpoint": t_c - dpd}
    if winds:
        out.update(wind_profile(c, p, lnp))
    return out


def wind_profile(c: Columns, p: np.ndarray, lnp: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """u, v (m/s) at pressures ``p`` (hPa), broadcast as in :func:`profile`."""
    def col(x):
        return np.asarray(x)[..., None]

    lnp = np.log(p) if lnp is None else lnp
    jet = 0.9 + 1.8 * col(c.jet) * np.exp(-((lnp - np.log(220.0)) / 0.6) ** 2)
    circ = np.where(p > 300.0, 1.0, np.clip((p - 100.0) / 200.0, 0.2, 1.0))
    u = col(c.u_bg) * jet + col(c.u_anom) * circ
    v = col(c.v_bg) * jet + col(c.v_anom) * circ
    return {"u": u, "v": v}


def fine_levels(extra=()) -> np.ndarray:
    return np.array(sorted(set(FINE_LEVELS) | {float(x) for x in extra}, reverse=True), float)


def heights(c: Columns, levels: np.ndarray, with_profile: bool = False, winds: bool = True):
    """Geopotential height (m) at ``levels`` (hPa, decreasing, must start above p_msl).

    Hypsometric equation with the virtual temperature, trapezoidal in ln p, from z = 0
    at the sea-level pressure. With ``with_profile`` also returns :func:`profile` at
    ``levels`` (its winds only with ``winds``; the heights never need them).
    """
    prof = profile(c, levels, winds=with_profile and winds)
    tv = virtual_temperature_k(prof["temperature"], prof["dewpoint"], levels)
    lnp = np.log(levels)
    seg = 0.5 * (tv[..., 1:] + tv[..., :-1]) * (lnp[:-1] - lnp[1:])
    integral = np.concatenate([np.zeros(tv.shape[:-1] + (1,)), np.cumsum(seg, axis=-1)], axis=-1)
    # integral at p_msl: linear in ln p between fine levels
    lnmsl = np.log(np.asarray(c.p_msl))
    k = np.clip(np.searchsorted(-lnp, -lnmsl) - 1, 0, lnp.size - 2)
    frac = (lnp[k] - lnmsl) / (lnp[k] - lnp[k + 1])
    i_msl = np.take_along_axis(integral, k[..., None], -1)[..., 0] * (1 - frac) + \
        np.take_along_axis(integral, (k + 1)[..., None], -1)[..., 0] * frac
    z = RD / G0 * (integral - i_msl[..., None])
    return (z, prof) if with_profile else z


def interp_lnp(levels: np.ndarray, values: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Linear-in-ln(p) interpolation of column values (..., L) on ``levels`` to p (..., K)."""
    lnl = np.log(levels)
    lnp = np.log(p)
    k = np.clip(np.searchsorted(-lnl, -lnp, side="right") - 1, 0, lnl.size - 2)
    frac = (lnl[k] - lnp) / (lnl[k] - lnl[k + 1])
    lo = np.take_along_axis(values, k, -1)
    hi = np.take_along_axis(values, k + 1, -1)
    return lo + (hi - lo) * frac


def pressure_at_height(levels: np.ndarray, z: np.ndarray, elev: np.ndarray) -> np.ndarray:
    """Pressure (hPa) where the column's height equals ``elev`` (m), ln p linear in z."""
    idx = np.clip((z < elev[..., None]).sum(axis=-1) - 1, 0, levels.size - 2)
    z0 = np.take_along_axis(z, idx[..., None], -1)[..., 0]
    z1 = np.take_along_axis(z, (idx + 1)[..., None], -1)[..., 0]
    lnl = np.log(levels)
    frac = (elev - z0) / (z1 - z0)
    return np.exp(lnl[idx] + (lnl[idx + 1] - lnl[idx]) * frac)


def terrain(lon: np.ndarray, lat: np.ndarray, geo: Geometry) -> np.ndarray:
    """Smooth terrain height (m): a plain downstream rising to hills and a basin upstream."""
    a = (lon - geo.centre1[0]) * geo.direction[0] + (lat - geo.centre1[1]) * geo.direction[1]
    b = (lon - geo.centre1[0]) * geo.perpendicular[0] + (lat - geo.centre1[1]) * geo.perpendicular[1]
    up = 1.0 / (1.0 + np.exp((a + geo.distance * 0.9) / 1.0))  # upstream highland
    hills = np.exp(-((a + geo.distance * 0.45) ** 2 + (b - 0.5) ** 2) / 2.5)
    return 25.0 + 650.0 * up * (0.7 + 0.3 * np.cos(b)) + 450.0 * hills
