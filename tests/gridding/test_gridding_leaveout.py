"""Leave-out validation of the gridding: scores against a direct computation with
``analyse``, withheld stations excluded, seeded draws, the table in the report, CLI."""
from __future__ import annotations

import json

import jsonschema
import numpy as np
import pytest

from evaluation import report
from pipeline.gridding import leaveout as lo
from pipeline.gridding.analysis import analyse, params_from_config, project, projection_for
from pipeline.gridding.geometry import make_grid

from gridding_helpers import make_interim, write_config

MONTH = "2020-01"


def _linear_rain(gau, frames_scale=None):
    """Rain a smooth linear function of position (mm), one value per gauge, scaled per frame."""
    lat, lon = gau["lat"].values, gau["lon"].values
    field = 5.0 + 0.8 * (lat - 32.0) + 0.5 * (lon - 114.0)
    scale = np.linspace(1.0, 2.0, gau.sizes["time"]) if frames_scale is None else frames_scale
    out = gau.copy(deep=True)
    out["rain_mm"].values[:] = (scale[:, None] * field[None, :]).astype(np.float32)
    return out


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    _, config = write_config(tmp_path_factory.mktemp("leaveout"))
    snd, gau = make_interim(config, MONTH, seed=3, n_stations=60, n_gauges=400, p_missing=0.0)
    snd = snd.isel(profile=slice(0, 60 * 6))  # the first six frames keep the test fast
    return config, snd, _linear_rain(gau)


def test_rain_leaveout_matches_a_direct_analysis_of_the_withheld_gauges(case):
    config, snd, gau = case
    res = lo.leaveout(config, [(MONTH, snd, gau)])
    rain = res["fields"][0]
    assert rain["field"] == "rain" and len(rain["per_repeat"]) == 3
    # Draw 0 recomputed by hand: region by region, kept gauges -> withheld gauges, every frame.
    used = lo.used_station_ids(config, gau)
    assert 150 < len(used) < 300  # gauges outside both region boxes (about half) are never drawn
    held = lo.draw_withheld(used, 0.1, config["seed"], 0, "gauges")
    assert len(held) == round(0.1 * len(used)) and held <= used
    proj = projection_for(make_grid(config, "concat"))
    xy = project(proj, gau["lat"].values, gau["lon"].values)
    lat, lon = gau["lat"].values, gau["lon"].values
    vals = gau["rain_mm"].values.astype(float)  # (time, station)
    is_held = np.isin(gau["station"].values.astype(str), list(held))
    errs = []
    for name in ("region1", "region2"):
        b = config["regions"][name]
        inside = (lat >= b["lat_min"]) & (lat <= b["lat_max"]) & (lon >= b["lon_min"]) & (lon <= b["lon_max"])
        if name == "region2":  # region 1 wins on the shared edge
            r1 = config["regions"]["region1"]
            inside &= ~((lat >= r1["lat_min"]) & (lat <= r1["lat_max"]) & (lon >= r1["lon_min"]) & (lon <= r1["lon_max"]))
        keep, target = inside & ~is_held, inside & is_held
        ana = analyse(xy[keep], vals[:, keep].T, xy[target], params_from_config(config, "rain"))
        errs.append((ana - vals[:, target].T).ravel())
    e = np.concatenate(errs)
    e = e[np.isfinite(e)]
    first = rain["per_repeat"][0]
    assert first["n"] == e.size > 1000
    assert first["rmse"] == pytest.approx(np.sqrt(np.mean(e**2)), rel=1e-12)
    assert first["bias"] == pytest.approx(e.mean(), rel=1e-9, abs=1e-12)
    # A linear field of range ~5 mm is recovered to a few tenths at the withheld gauges.
    assert 0.0 < first["rmse"] < 0.3 and first["correlation"] > 0.98
    assert rain["rmse"]["mean"] == pytest.approx(np.mean([r["rmse"] for r in rain["per_repeat"]]))
    assert rain["rmse"]["std"] == pytest.approx(np.std([r["rmse"] for r in rain["per_repeat"]], ddof=1))


def test_sounding_leaveout_scores_each_variable_by_level_band(case):
    config, snd, gau = case
    res = lo.leaveout(config, [(MONTH, snd, gau)])
    names = [f["field"] for f in res["fields"]]
    assert len(names) == 1 + 5 * 3 and "temperature lower" in names and "geopotential_height upper" in names
    # The smooth analytic field (range 6) is recovered at the withheld stations.
    for f in res["fields"][1:]:
        assert f["rmse"]["mean"] < 0.6 and f["correlation"]["mean"] > 0.9, f["field"]
    # Channel 0 (temperature 1000 hPa), draw 0, recomputed by hand for the first frame.
    used = lo.used_station_ids(config, snd)
    held = lo.draw_withheld(used, 0.1, config["seed"], 0, "soundings")
    assert len(held) == round(0.1 * len(used)) >= 3 and held <= used
    # every draw withholds stations the analysis uses: every field is scored in every draw
    for f in res["fields"]:
        assert all(r["n"] > 0 for r in f["per_repeat"]), f["field"]
    ana, obs = lo.sounding_pairs(snd, config, MONTH, held)
    first = snd.isel(profile=slice(0, 60))
    proj = projection_for(make_grid(config, "concat"))
    is_held = np.isin(first["station"].values.astype(str), list(held))
    lat, lon = first["lat"].values, first["lon"].values
    xy = project(proj, lat, lon)
    region = np.zeros(lat.size, int)
    for r, name in ((2, "region2"), (1, "region1")):
        b = config["regions"][name]
        region[(lat >= b["lat_min"]) & (lat <= b["lat_max"]) & (lon >= b["lon_min"]) & (lon <= b["lon_max"])] = r
    v0 = first["temperature"].values[:, 0].astype(float)
    direct_a, direct_o = [], []
    for r in (1, 2):
        keep, target = (region == r) & ~is_held, (region == r) & is_held
        if target.any():
            direct_a.append(analyse(xy[keep], v0[keep], xy[target], params_from_config(config))[:, 0])
            direct_o.append(v0[target])
    direct_a, direct_o = np.concatenate(direct_a), np.concatenate(direct_o)
    np.testing.assert_allclose(ana[:direct_a.size, 0], direct_a, rtol=1e-12)
    np.testing.assert_allclose(obs[:direct_o.size, 0], direct_o)


def test_withheld_gauges_are_excluded_from_the_analysis(case):
    """An outlier planted at a withheld gauge changes only that gauge's observation: the
    analysis at every withheld site is unchanged. Planted at a kept gauge, it does change."""
    config, _, gau = case
    held = lo.draw_withheld(lo.used_station_ids(config, gau), 0.1, config["seed"], 0, "gauges")
    ids = gau["station"].values.astype(str)
    a0, o0 = lo.gauge_pairs(gau, config, MONTH, held)
    bad = gau.copy(deep=True)
    victim = np.flatnonzero(np.isin(ids, list(held)))[0]
    bad["rain_mm"].values[:, victim] = 1e4
    a1, o1 = lo.gauge_pairs(bad, config, MONTH, held)
    np.testing.assert_array_equal(a1, a0)
    assert (o1 != o0).sum() == gau.sizes["time"]  # exactly that gauge's frames
    # the same outlier at a kept gauge near a withheld one is seen by the analysis
    xy = np.column_stack([gau["lat"].values, gau["lon"].values])
    kept = np.flatnonzero(~np.isin(ids, list(held)))
    near = kept[np.argmin(np.hypot(*(xy[kept] - xy[victim]).T))]
    bad = gau.copy(deep=True)
    bad["rain_mm"].values[:, near] = 1e4
    a2, _ = lo.gauge_pairs(bad, config, MONTH, held)
    assert np.nanmax(np.abs(a2 - a0)) > 100


def test_draws_are_seeded(case):
    config, snd, gau = case
    a = lo.leaveout(config, [(MONTH, snd, gau)])
    b = lo.leaveout(config, [(MONTH, snd, gau)])
    assert [f["per_repeat"] for f in a["fields"]] == [f["per_repeat"] for f in b["fields"]]
    ids = gau["station"].values
    draws = [lo.draw_withheld(ids, 0.1, 0, r, "gauges") for r in range(3)]
    assert draws[0] != draws[1] != draws[2]
    assert lo.draw_withheld(ids, 0.1, 1, 0, "gauges") != draws[0]
    other = {**config, "seed": 7}
    c = lo.leaveout(other, [(MONTH, snd, gau)])
    assert c["fields"][0]["per_repeat"] != a["fields"][0]["per_repeat"]


def test_months_spread_over_the_period():
    months = [f"2020-{m:02d}" for m in range(1, 13)]
    assert lo.leaveout_months({"leaveout": {"months": 1}}, months) == ["2020-01"]
    assert lo.leaveout_months({"leaveout": {"months": 3}}, months) == ["2020-01", "2020-07", "2020-12"]
    assert lo.leaveout_months({"leaveout": {"months": None}}, months) == months
    assert lo.leaveout_months({"leaveout": {"months": 20}}, months) == months


def test_cli_writes_json_and_csv_and_the_report_renders_the_table(case, tmp_path):
    config, snd, gau = case
    cfg_path, _ = write_config(tmp_path, {"leaveout": {"repeats": 2}})
    s, g = tmp_path / "s.nc", tmp_path / "g.nc"
    snd.to_netcdf(s)
    gau.to_netcdf(g)
    out = tmp_path / "lo" / "leaveout.json"
    assert lo.main(["--config", str(cfg_path), "--month", MONTH, "--soundings", str(s), "--gauges", str(g),
                    "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["repeats"] == 2 and res["months"] == [MONTH]
    jsonschema.validate(res, report.METRICS_SCHEMA["properties"]["gridding_leaveout"]["oneOf"][1])
    table = out.with_suffix(".csv").read_text().splitlines()
    assert table[0].startswith("field,variable,band,units,rmse_mean,rmse_std") and len(table) == 17
    text = "\n".join(report._gridding_leaveout({"gridding_leaveout": res}))
    rain = res["fields"][0]
    row = f"| rain | mm | {rain['rmse']['mean']:.3f} ± {rain['rmse']['std']:.3f} | {rain['bias']['mean']:+.3f} ± "
    assert row in text
    n_used = len(lo.used_station_ids(config, gau))
    assert f"10% of the gauges ({round(0.1 * n_used)} of {n_used})" in text and "| temperature lower | degC |" in text
    assert "Left out" in "\n".join(report._gridding_leaveout({"gridding_leaveout": None}))


def test_cli_missing_input_is_one_line_error(case, tmp_path, capsys):
    cfg_path, _ = write_config(tmp_path)
    rc = lo.main(["--config", str(cfg_path), "--month", MONTH, "--soundings", str(tmp_path / "none.nc"),
                  "--gauges", str(tmp_path / "none2.nc"), "--out", str(tmp_path / "o.json")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("error: ") and "none.nc" in err[0]
