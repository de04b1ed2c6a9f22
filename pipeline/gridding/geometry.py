"""Region grids: cell centres of each region box and of the joined (concat) grid.

Conventions: latitude ascending (row 0 is the southern edge), longitude ascending;
cell centres at ``edge + (i + 0.5) * resolution``. Region 1 alone is the ``region1``
grid; ``concat`` joins region 2 to region 1 on the side where the boxes share an edge
(:func:`region2_side`), so for the default (region 2 west) ``concat`` is region 2's
columns followed by region 1's.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.common import cf
from pipeline.common.errors import ConfigError, GridError


def _axis(lo: float, hi: float, res: float, what: str) -> np.ndarray:
    n = (hi - lo) / res
    if abs(n - round(n)) > 1e-6:
        raise GridError(f"{what}: extent {hi} - {lo} = {hi - lo} deg is not a multiple of the resolution {res} deg")
    n = int(round(n))
    return np.round(lo + (np.arange(n) + 0.5) * res, 6)


@dataclass(frozen=True)
class Grid:
    """A regular lat/lon grid with the region-1 cells marked."""

    name: str
    lat: np.ndarray  # (y,) ascending cell centres, degrees north
    lon: np.ndarray  # (x,) ascending cell centres, degrees east
    region1_mask: np.ndarray  # (y, x) bool: True on region-1 cells

    @property
    def shape(self) -> tuple[int, int]:
        return (self.lat.size, self.lon.size)

    def region1_slices(self) -> tuple[slice, slice]:
        """Row and column slices of region 1 inside this grid."""
        return mask_slices(self.region1_mask)


def mask_slices(mask: np.ndarray) -> tuple[slice, slice]:
    """Row and column slices of the True cells of a rectangular 2-D mask (a GridError when
    the mask has no True cell or its True cells are not a rectangle)."""
    mask = np.asarray(mask, dtype=bool)
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        raise GridError("has no True cell")
    rs, cs = slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)
    if mask.sum() != mask[rs, cs].size:
        raise GridError(f"is not a rectangle ({int(mask.sum())} cells)")
    return rs, cs


def region_axes(box: dict, res: float, name: str = "region") -> tuple[np.ndarray, np.ndarray]:
    lat = _axis(box["lat_min"], box["lat_max"], res, f"regions.{name} latitude")
    lon = _axis(box["lon_min"], box["lon_max"], res, f"regions.{name} longitude")
    return lat, lon


_EDGES = {  # side of region 1 where region 2 lies: (region-2 edge, region-1 edge) that coincide
    "west": ("lon_max", "lon_min"), "east": ("lon_min", "lon_max"),
    "south": ("lat_max", "lat_min"), "north": ("lat_min", "lat_max"),
}


def region2_side(config: dict) -> str:
    """Side of region 1 where region 2 lies, derived from the boxes (the edge they share).

    This is the only place the side is decided. The optional, deprecated key
    ``regions.region2_side`` is checked here against the boxes: a value that disagrees
    with them is an error.
    """
    r1, r2 = config["regions"]["region1"], config["regions"]["region2"]
    sides = [side for side, (e2, e1) in _EDGES.items() if r2[e2] == r1[e1]]
    if len(sides) != 1:
        shared = f"they share the edges of sides {sides}" if sides else "they share no edge"
        raise GridError(f"region2 must adjoin region1 on exactly one side ({shared}): region1 {r1}, region2 {r2}")
    stated = config["regions"].get("region2_side")  # optional key: no default
    if stated is not None and stated != sides[0]:
        raise ConfigError(f"config key 'regions.region2_side': {stated!r}, but the boxes put region 2 "
                          f"{sides[0]} of region 1 (the key is deprecated: the side follows from the boxes)")
    return sides[0]


def make_grid(config: dict, name: str) -> Grid:
    """The ``region1`` or ``concat`` grid of a validated config."""
    regions = config["regions"]
    res = float(config["grid"]["resolution_deg"])
    lat1, lon1 = region_axes(regions["region1"], res, "region1")
    if name == "region1":
        return Grid("region1", lat1, lon1, np.ones((lat1.size, lon1.size), bool))
    if name != "concat":
        raise GridError(f"unknown grid {name!r}; expected 'region1' or 'concat'")
    lat2, lon2 = region_axes(regions["region2"], res, "region2")
    side = region2_side(config)
    r1, r2 = regions["region1"], regions["region2"]
    if side in ("west", "east"):  # joined along longitude: latitudes must agree
        if not np.array_equal(lat1, lat2):
            raise GridError(
                f"regions joined on the {side} side must share latitudes exactly: region1 "
                f"{r1['lat_min']}..{r1['lat_max']} vs region2 {r2['lat_min']}..{r2['lat_max']}"
            )
        lon = np.concatenate([lon2, lon1] if side == "west" else [lon1, lon2])
        mask = np.zeros((lat1.size, lon.size), bool)
        mask[:, np.isin(lon, lon1)] = True
        return Grid("concat", lat1, lon, mask)
    if not np.array_equal(lon1, lon2):  # joined along latitude: longitudes must agree
        raise GridError(
            f"regions joined on the {side} side must share longitudes exactly: region1 "
            f"{r1['lon_min']}..{r1['lon_max']} vs region2 {r2['lon_min']}..{r2['lon_max']}"
        )
    lat = np.concatenate([lat2, lat1] if side == "south" else [lat1, lat2])
    mask = np.zeros((lat.size, lon1.size), bool)
    mask[np.isin(lat, lat1), :] = True
    return Grid("concat", lat, lon1, mask)


def channel_names(config: dict) -> list[str]:
    """The 55 (levels x variables) sounding channel names then 'rain', in tensor order.

    Order: variable-major, e.g. temperature_1000hPa, temperature_925hPa, ..., then rain.
    """
    return cf.upper_air_names(config["variables"], config["levels_hpa"]) + [cf.RAIN_VARIABLE]


def channel_coordinates(config: dict) -> dict[str, tuple]:
    """Coordinates along ``channel`` besides the names: ``variable``, ``pressure`` (hPa, NaN
    for rain) and ``units`` (physical units of the channel), in :func:`channel_names` order.

    Each is ``(dims, values, attrs)`` for ``Dataset.assign_coords``. They are plain
    coordinates (not an index), so they survive netCDF and zarr; select with
    ``x.set_xindex(["variable", "pressure"]).sel(variable="temperature", pressure=850)``,
    or without an index ``x.sel(channel=(x["variable"] == "temperature") & (x["pressure"] == 850))``.
    """
    variables = [v for v in config["variables"] for _ in config["levels_hpa"]] + [cf.RAIN_VARIABLE]
    pressure = [float(p) for _ in config["variables"] for p in config["levels_hpa"]] + [np.nan]
    return {
        "variable": ("channel", np.asarray(variables, dtype=object),
                     {"long_name": "variable of the channel (a sounding variable, or rain)"}),
        "pressure": ("channel", np.asarray(pressure, dtype=np.float64),
                     {**{k: cf.PRESSURE_ATTRS[k] for k in ("units", "standard_name", "positive")},
                      "long_name": "pressure level of the channel (NaN for rain)"}),
        "units": ("channel", np.asarray([cf.channel_units(v) for v in variables], dtype=object),
                  {"long_name": "physical units of the channel"}),
    }


def region_masks(grid: Grid) -> dict[str, np.ndarray]:
    """The regions a grid holds and their cells: ``region1``, and on the joined grid ``region2``."""
    masks = {"region1": np.asarray(grid.region1_mask, bool)}
    if not masks["region1"].all():
        masks["region2"] = ~masks["region1"]
    return masks


COVERAGE_ATTRS = {
    "rain_coverage": {"long_name": "fraction of the region's cells with a rain value (a gauge within "
                                   "gridding.rain_coverage_radius_km) at this frame", "units": "1"},
    "sounding_coverage": {"long_name": "fraction of the region's cells with an upper-air analysis (a value in "
                                       "any sounding channel: enough stations within the analysis radii) at "
                                       "this frame", "units": "1"},
}


def frame_coverage(x: np.ndarray, rain_index: int, masks: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per frame and region, the fraction of the region's cells with a rain value and with an
    upper-air analysis: ``{"rain_coverage": (time, region), "sounding_coverage": (time, region)}``
    float32, regions in the order of ``masks``. ``x`` is (time, channel, lat, lon), NaN = none."""
    finite = np.isfinite(np.asarray(x))
    rain = finite[:, rain_index]
    upper = np.delete(finite, rain_index, axis=1).any(axis=1)
    out = {}
    for name, have in (("rain_coverage", rain), ("sounding_coverage", upper)):
        cols = [have[:, m].mean(axis=1) if m.any() else np.zeros(len(have)) for m in masks.values()]
        out[name] = np.stack(cols, axis=1).astype(np.float32).reshape(len(have), len(masks))
    return out


def coverage_variables(x: np.ndarray, channels: list[str], grid: Grid) -> dict[str, tuple]:
    """``rain_coverage`` and ``sounding_coverage`` (time, region) of a gridded ``x``
    (:func:`frame_coverage`), as data variables (dims, values, attrs)."""
    cov = frame_coverage(x, list(channels).index(cf.RAIN_VARIABLE), region_masks(grid))
    return {name: (("time", "region"), values, COVERAGE_ATTRS[name]) for name, values in cov.items()}


def frames_without(ds, name: str) -> np.ndarray:
    """Frames at which some region of the grid has no cell with a value of ``name``
    (``rain_coverage`` or ``sounding_coverage``): a bool array along ``time``."""
    return np.asarray((ds[name] <= 0).any("region").values, bool)
