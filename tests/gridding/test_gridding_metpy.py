"""The vectorised Barnes/Cressman analysis equals MetPy's per-field result on real observations."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from metpy.interpolate import interpolate_to_points

from pipeline.gridding.analysis import AnalysisParams, analyse, project
from pyproj import Proj

DATA = Path(__file__).resolve().parents[1] / "data" / "gridding"


def upper_air():
    """(lat, lon, values (S, F), names): 500/300 hPa fields of the 1993-03-14 soundings."""
    d = pd.read_csv(DATA / "UPA_obs.csv").dropna(subset=["latitude", "longitude"])
    fields = ["height", "temperature", "dewpoint", "u_wind", "v_wind"]
    d = d.drop_duplicates(subset=["station", "pressure"])
    wide = d.pivot(index="station", columns="pressure", values=fields)
    pos = d.groupby("station")[["latitude", "longitude"]].first().loc[wide.index]
    names = [f"{v}_{int(p)}" for v, p in wide.columns]
    return pos["latitude"].to_numpy(), pos["longitude"].to_numpy(), wide.to_numpy(float), names


def surface():
    d = pd.read_csv(DATA / "station_data.txt", na_values=[-99999])
    lat, lon = d.iloc[:, 2].to_numpy(), d.iloc[:, 3].to_numpy()
    vals = d[['air_temperature[unit="Celsius"]', 'dew_point_temperature[unit="Celsius"]']].to_numpy(float)
    return lat, lon, vals, ["air_temperature", "dewpoint"]


def targets(lat0, lat1, lon0, lon1, res):
    lat, lon = np.arange(lat0, lat1 + 1e-9, res), np.arange(lon0, lon1 + 1e-9, res)
    lon2, lat2 = np.meshgrid(lon, lat)
    return lat2.ravel(), lon2.ravel()


def metpy_reference(xy, values, txy, p: AnalysisParams):
    out = np.full((len(txy), values.shape[1]), np.nan)
    for f in range(values.shape[1]):
        ok = np.isfinite(values[:, f])
        out[:, f] = interpolate_to_points(xy[ok], values[ok, f], txy, interp_type=p.method,
                                          minimum_neighbors=p.min_neighbors, gamma=p.gamma,
                                          kappa_star=p.kappa_star, search_radius=p.search_radius_m)
    return out


CASES = {
    # name: (data, target box + resolution, search radius km, min_neighbors)
    "upper_air": (upper_air, (25.0, 55.0, -125.0, -65.0, 1.0), 800.0, 3),
    "surface_dense": (surface, (25.0, 49.0, -120.0, -70.0, 0.5), 150.0, 2),
}


@pytest.mark.parametrize("method", ["barnes", "cressman"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_equals_metpy(case, method):
    loader, box, radius_km, nmin = CASES[case]
    lat, lon, values, names = loader()
    proj = Proj(proj="aeqd", lat_0=0.5 * (box[0] + box[1]), lon_0=0.5 * (box[2] + box[3]), ellps="WGS84", units="m")
    xy = project(proj, lat, lon)
    tlat, tlon = targets(*box)
    txy = project(proj, tlat, tlon)
    # Coverage radius = search radius: the coverage mask adds nothing, so MetPy is the whole reference.
    p = AnalysisParams(method=method, search_radius_m=radius_km * 1e3, min_neighbors=nmin,
                       coverage_radius_m=radius_km * 1e3, kappa_star=5.052, gamma=0.25)
    ours = analyse(xy, values, txy, p)
    ref = metpy_reference(xy, values, txy, p)
    assert (~np.isfinite(values)).any(), "the data must exercise stations missing a value"
    for f, name in enumerate(names):
        np.testing.assert_array_equal(np.isnan(ours[:, f]), np.isnan(ref[:, f]), err_msg=f"NaN pattern {name}")
        assert np.isfinite(ref[:, f]).sum() > 0.2 * len(txy), name
        scale = np.nanmax(np.abs(values[:, f]))
        np.testing.assert_allclose(ours[:, f], ref[:, f], rtol=1e-4, atol=1e-7 * scale, err_msg=name)


def test_missing_value_equals_absent_station():
    lat, lon, values, names = upper_air()
    proj = Proj(proj="aeqd", lat_0=40, lon_0=-95, ellps="WGS84", units="m")
    xy = project(proj, lat, lon)
    txy = project(proj, *targets(30.0, 50.0, -110.0, -80.0, 2.0))
    p = AnalysisParams("barnes", 800e3, 3, 500e3, kappa_star=5.052, gamma=0.25)
    f = names.index("temperature_500")
    v = values[:, [f]].copy()
    v[::4] = np.nan
    keep = np.isfinite(v[:, 0])
    a = analyse(xy, v, txy, p)
    b = analyse(xy[keep], v[keep], txy, p)
    np.testing.assert_array_equal(a, b)
    assert np.isfinite(a).sum() > 50


def test_coverage_mask_and_min_neighbors():
    xy = np.array([[0.0, 0.0], [10e3, 0.0], [0.0, 10e3]])
    vals = np.array([[1.0], [2.0], [3.0]])
    txy = np.array([[0.0, 5e3], [70e3, 0.0], [200e3, 0.0]])
    p = AnalysisParams("cressman", search_radius_m=100e3, min_neighbors=3, coverage_radius_m=50e3,
                       kappa_star=5.052, gamma=0.25)
    out = analyse(xy, vals, txy, p)[:, 0]
    assert np.isfinite(out[0]) and 1.0 <= out[0] <= 3.0
    assert np.isnan(out[1])  # 3 stations within 100 km but none within the 50 km coverage radius
    assert np.isnan(out[2])  # none within the search radius
    p4 = AnalysisParams("cressman", search_radius_m=100e3, min_neighbors=4, coverage_radius_m=50e3,
                        kappa_star=5.052, gamma=0.25)
    assert np.isnan(analyse(xy, vals, txy, p4)).all()
