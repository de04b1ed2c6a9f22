"""Skill by flow regime (evaluation.regimes) and lag diagnostics (evaluation.lags):
worked examples, and the evaluate command with --upstream-data on the small fixtures."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from evaluation.compare import Scored, bootstrap_groups
from evaluation.evaluate import main
from evaluation.inputs import Group, Member
from evaluation.lags import lag_diagnostics, lag_series
from evaluation.regimes import analysis_wind, regime_block, stratum_scores
from evaluation.report import validate_metrics
from evaluation.scores import Verifier
from evaluation.upstream import Upstream, sector_of, wind_direction
from pipeline.dataset import layout

BOOT = {"samples": 200, "block_frames": 5, "scheme": "circular", "confidence": 0.95, "seed": 0}
DIRECTIONS = {"N": 0.0, "E": 90.0, "S": 180.0, "W": 270.0}


def wind_from(direction_deg, speed):
    """(u, v) of a wind blowing FROM ``direction_deg`` (meteorological convention)."""
    d = np.deg2rad(direction_deg)
    return -speed * np.sin(d), -speed * np.cos(d)


def test_direction_convention():
    u, v = wind_from(np.array([0.0, 90.0, 180.0, 270.0, 44.0, 46.0, 314.0]), 5.0)
    assert np.allclose(wind_direction(u, v), [0, 90, 180, 270, 44, 46, 314])
    assert list(sector_of(u, v)) == ["N", "E", "S", "W", "N", "E", "W"]
    assert u[3] > 0 and abs(v[3]) < 1e-9  # westerly: blowing towards the east
    assert sector_of(np.array([np.nan]), np.array([1.0]))[0] == ""


# --------------------------------------------------------------------------- worked example
def _group(name):
    return Group(name, "experiment", [Member(name, 0, f"{name} (synthetic)", None)])


@pytest.fixture(scope="module")
def westerly_world():
    """120 frames in 10-frame blocks of W, N, E, S flow; exp2 equals exp1 except in the
    westerly frames, where its error is four times smaller; distinct speeds."""
    rng = np.random.default_rng(3)
    n, shape = 120, (6, 6)
    times = pd.date_range("2021-03-01", periods=n, freq="12h")
    labels = np.repeat(np.tile(["W", "N", "E", "S"], n // 40), 10)
    speed = rng.permutation(np.linspace(2.0, 20.0, n))
    u, v = wind_from(np.array([DIRECTIONS[s] for s in labels]), speed)
    u[0] = v[0] = np.nan  # no analysed wind: unclassified
    obs = rng.gamma(1.0, 3.0, (n, *shape))
    exp1 = np.maximum(obs + rng.normal(0, 2.0, obs.shape), 0)
    exp2 = exp1.copy()
    west = labels == "W"
    exp2[west] = np.maximum(obs[west] + rng.normal(0, 0.5, obs[west].shape), 0)
    mask = np.ones(obs.shape, bool)
    ga, gb = _group("exp1"), _group("exp2")
    verifiers = {g.members[0].name: Verifier([1.0], [1], shape).accumulate(f, obs, mask)
                 for g, f in ((ga, exp1), (gb, exp2))}
    scored = Scored(verifiers, times, {}, obs.mean((1, 2)), np.full(n, shape[0] * shape[1]))
    return {"scored": scored, "ga": ga, "gb": gb, "u": u, "v": v, "labels": labels, "obs": obs,
            "exp1": exp1, "exp2": exp2, "speed": speed}


def _block(w, side="west"):
    return regime_block(w["scored"], w["ga"], w["gb"], w["u"], w["v"], side, BOOT, "crps", 700, 12.0)


def test_strata_counts_and_scores(westerly_world):
    w = westerly_world
    block = _block(w)
    counts = {k: s["n_frames"] for k, s in block["sectors"].items()}
    assert counts == {"N": 30, "E": 30, "S": 30, "W": 29}  # frame 0 (westerly) unclassified
    assert block["n_unclassified"] == 1 and block["n_frames"] == 120
    ter = {k: s["n_frames"] for k, s in block["speed_terciles"].items()}
    assert sum(ter.values()) == 119 and set(ter.values()) <= {39, 40}
    e1, e2 = block["speed_tercile_edges_ms"]
    assert np.isclose(e1, np.quantile(w["speed"][1:], 1 / 3)) and np.isclose(e2, np.quantile(w["speed"][1:], 2 / 3))
    frames = np.flatnonzero(w["labels"] == "W")[1:]
    west = block["sectors"]["W"]
    # deterministic forecasts: CRPS is the MAE over the stratum's cell-times
    assert west["a"] == pytest.approx(np.abs(w["exp1"] - w["obs"])[frames].mean())
    assert west["b"] == pytest.approx(np.abs(w["exp2"] - w["obs"])[frames].mean())
    assert west["n_cell_times"] == 29 * 36
    assert west["relative_pct"] < -50 and west["relative_ci_high"] < 0
    assert west["mean_u_ms"] > 0 and west["mean_along_axis_ms"] == pytest.approx(west["mean_u_ms"])
    for sec in ("N", "E", "S"):  # identical forecasts: exactly no difference, in every resample
        s = block["sectors"][sec]
        assert s["relative_pct"] == 0 and s["relative_ci_low"] == 0 and s["relative_ci_high"] == 0


def test_verdict_westerly_gain(westerly_world):
    block = _block(westerly_world)
    assert block["sector_from_region2"] == "W"
    assert block["largest_gain_from_region2"] is True and block["interval_excludes_zero"] is True
    assert block["verdict"].startswith("Gain largest for flow from region 2 towards region 1 (W): yes. exp2 - exp1 CRPS")
    assert "interval excludes 0" in block["verdict"]


def test_verdict_follows_the_side_of_region2(westerly_world):
    block = _block(westerly_world, side="east")  # region 2 east: easterly flow comes from it
    assert block["sector_from_region2"] == "E"
    assert block["largest_gain_from_region2"] is False and block["interval_excludes_zero"] is False
    assert "(E): no (largest in W: " in block["verdict"] and "interval includes 0" in block["verdict"]


def test_stratum_of_every_frame_is_the_overall_score(westerly_world):
    w = westerly_world
    frames = np.arange(120)
    s = stratum_scores(w["scored"], w["ga"], w["gb"], frames, "crps", BOOT)
    overall = bootstrap_groups(w["scored"], [w["ga"], w["gb"]], np.ones((1, 120)))
    assert s["a"] == pytest.approx(float(overall["exp1"].point["crps"]))
    assert s["b"] == pytest.approx(float(overall["exp2"].point["crps"]))
    short = stratum_scores(w["scored"], w["ga"], w["gb"], frames[:3], "crps", BOOT)
    assert short["interval"] is False and short["relative_ci_low"] is None and short["a"] is not None


def _upstream(times, u, v, r1=None, r2=None, side="west"):
    n = len(times)
    nan = np.full(n, np.nan)
    return Upstream("concat.zarr", "concat_stats.json", side, 700, pd.DatetimeIndex(times), np.asarray(u, float),
                    np.asarray(v, float), np.ones(n, bool), nan if r1 is None else r1, nan if r2 is None else r2)


def test_wind_is_taken_at_the_analysis_time_not_the_target():
    times = pd.date_range("2021-03-01", periods=6, freq="12h")
    up = _upstream(times, np.arange(6.0), np.zeros(6))
    up.analysed[3] = False
    u, _ = analysis_wind(up, times, 12.0)
    assert np.isnan(u[0])  # its analysis frame is not in the store
    assert np.isnan(u[4])  # its analysis frame (index 3) has no upper-air analysis
    np.testing.assert_array_equal(u[[1, 2, 3, 5]], [0.0, 1.0, 2.0, 4.0])


# --------------------------------------------------------------------------- lag correlation
def test_lag_correlation_peaks_at_the_planted_24h_lag():
    rng = np.random.default_rng(5)
    n = 400
    times = pd.date_range("2020-01-01", periods=n, freq="12h")
    r2 = rng.gamma(1.0, 2.0, n)
    r1 = np.full(n, np.nan)
    r1[2:] = r2[:-2] + 0.3 * rng.normal(size=n - 2)  # region 1 follows region 2 by 2 frames = 24 h
    lags = lag_series(times, r2, r1)
    corr = np.array(lags["correlation"])
    assert np.argmax(corr) == 2
    assert corr[2] == pytest.approx(np.corrcoef(r2[:-2], r1[2:])[0, 1], abs=1e-12)
    assert lags["n_pairs"][2] == n - 2 and lags["n_pairs"][0] == n - 2
    # pairs are matched by time stamp: drop a frame, the 24 h pairs that need it disappear
    keep = np.arange(n) != 100
    gap = lag_series(times[keep], r2[keep], r1[keep])
    pairs = [(r2[i], r1[i + 2]) for i in range(n - 2) if i != 100 and i + 2 != 100]
    assert gap["n_pairs"][2] == len(pairs) == n - 4
    assert gap["correlation"][2] == pytest.approx(np.corrcoef(np.array(pairs).T)[0, 1], abs=1e-12)
    up = _upstream(times, np.ones(n), np.zeros(n), r1, r2)
    diag = lag_diagnostics(up)
    assert diag["peak_lag_hours"] == 24 and diag["lags_hours"] == [0, 12, 24, 36, 48, 60, 72]
    assert diag["along_axis_wind"]["fraction_from_region2"] == 1.0
    assert diag["flow_from_region2"] == diag["region2_leads_region1"]


# --------------------------------------------------------------------------- the command
def make_concat(root, truth: xr.Dataset):
    """A joined-grid store matching the fixture's truth: region 2 (8 columns) west of it,
    winds at 700 hPa cycling through W, N, W, S in 5-day blocks, and region-2 rain that
    region 1 receives 24 h later."""
    n_r2 = 8
    lon1 = truth.lon.values
    lon = np.concatenate([lon1[0] - 0.25 * np.arange(n_r2, 0, -1), lon1])
    lat, times = truth.lat.values, truth.time.values
    nt = len(times)
    rain1 = truth.rain_mm.values
    rain2 = np.full((nt, lat.size, n_r2), np.nan, np.float32)
    rain2[:-2] = rain1[2:, :, :n_r2]
    sector = np.tile(np.repeat([270.0, 0.0, 270.0, 180.0], 10), nt // 40 + 1)[:nt]
    u, v = wind_from(sector, 8.0 + 4.0 * np.sin(np.arange(nt)))
    mean, std = {"u_700hPa": 5.0, "v_700hPa": 0.0}, {"u_700hPa": 2.0, "v_700hPa": 3.0}
    x = np.zeros((nt, 3, lat.size, lon.size), np.float32)
    x[:, 0] = ((u - 5.0) / 2.0)[:, None, None]
    x[:, 1] = (v / 3.0)[:, None, None]
    r1 = np.zeros((lat.size, lon.size), bool)
    r1[:, n_r2:] = True
    rain = np.concatenate([rain2, rain1], axis=2)
    inputs, input_coords = layout.input_variables(x, ["u", "v"], [700.0])  # u_700hPa, v_700hPa, rain
    ds = xr.Dataset(
        {**inputs, "rain_mm": (("time", "lat", "lon"), rain),
         "valid": (("time", "lat", "lon"), np.isfinite(rain)),
         "loss_mask": (("lat", "lon"), r1.astype(np.uint8)), "region1_mask": (("lat", "lon"), r1)},
        coords={"time": times, **input_coords, "lat": lat, "lon": lon},
        attrs={"config_hash": truth.attrs["config_hash"], "grid": "concat", "region2_side": "west"},
    )
    ds.chunk({"time": 64}).to_zarr(root / "concat.zarr", mode="w", consolidated=False)
    channels = ["u_700hPa", "v_700hPa", "rain"]
    (root / "concat_stats.json").write_text(json.dumps(
        {"channels": channels, "mean": [5.0, 0.0, 0.0], "std": [2.0, 3.0, 1.0],
         "transform": ["zscore", "zscore", "log1p-zscore"]}))
    return root / "concat.zarr"


@pytest.fixture(scope="module")
def upstream_outputs(world, exp1_results):
    root = world["root"] / "upstream"
    root.mkdir()
    concat = make_concat(root, world["truth"])
    r1, r2 = exp1_results, root / "exp2"
    common = ["--config", str(world["config"]), "--data", str(world["data"]), "--no-progress"]
    assert main(common + ["--exp", "exp2", "--runs", *map(str, world["runs"]["exp2"]), "--reference", str(r1),
                          "--upstream-data", str(concat), "--out", str(r2)]) == 0
    return r1, r2, concat


def test_cli_writes_flow_regimes_and_lag_diagnostics(upstream_outputs):
    _, r2, concat = upstream_outputs
    m = json.loads((r2 / "metrics.json").read_text())
    validate_metrics(m)
    fr, lag = m["flow_regimes"], m["lag_diagnostics"]
    assert fr["a"] == "exp1" and fr["b"] == "exp2" and fr["score"] == m["primary_score"]
    assert fr["sector_from_region2"] == "W" and fr["region2_side"] == "west"
    assert sum(s["n_frames"] for s in fr["sectors"].values()) + fr["n_unclassified"] == m["samples"]["n_times"]
    assert fr["sectors"]["E"]["n_frames"] == 0 and fr["sectors"]["W"]["n_frames"] > 0
    assert sum(s["n_frames"] for s in fr["speed_terciles"].values()) == m["samples"]["n_times"]
    assert fr["verdict"].startswith("Gain largest for flow from region 2 towards region 1 (W): ")
    assert lag["peak_lag_hours"] == 24 and lag["n_frames"] == 180
    assert m["provenance"]["upstream_data"] == str(concat)
    assert m["provenance"]["upstream_stats"] == str(concat.with_name("concat_stats.json"))
    for name in ("flow_regimes.png", "lag_correlation.png"):
        assert (r2 / name).stat().st_size > 0
    report = (r2 / "report.md").read_text()
    assert "## Skill by flow regime" in report and fr["verdict"] in report
    assert "## Lag diagnostics" in report and "(flow_regimes.png)" in report


def test_cli_without_upstream_data_leaves_the_sections_out(upstream_outputs):
    r1, _, _ = upstream_outputs
    m = json.loads((r1 / "metrics.json").read_text())
    assert m["flow_regimes"] is None and m["lag_diagnostics"] is None
    assert not (r1 / "flow_regimes.png").exists() and not (r1 / "lag_correlation.png").exists()
    report = (r1 / "report.md").read_text()
    assert "Left out: no --upstream-data" in report


def test_cli_upstream_store_that_is_not_joined_is_one_line_error(world, tmp_path, capsys):
    rc = main(["--config", str(world["config"]), "--data", str(world["data"]), "--exp", "exp1",
               "--runs", *map(str, world["runs"]["exp1"]), "--upstream-data", str(world["data"]),
               "--upstream-stats", str(tmp_path / "none.json"), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err[-1].startswith("error: ") and str(world["data"]) in err[-1]
    assert "not the joined (concat) grid" in err[-1] or "variable 'x' missing" in err[-1]
    assert not (tmp_path / "out").exists()
