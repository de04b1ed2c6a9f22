"""End to end: python -m evaluation.evaluate on tiny inputs in the contract layout."""
from __future__ import annotations

import json
import re
import shutil

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
import xarray as xr
import yaml

from evaluation import baselines as bl
from evaluation.evaluate import EvaluationError, evaluate, main
from evaluation.verdicts import baseline_verdict
from evaluation.report import validate_metrics
from pipeline.common.config import load_config
from tests.evaluation.conftest import write_config

FIGURES = ["cases.png", "difference_maps.png", "error_maps.png", "categorical_scores.png",
           "performance_diagram.png", "fss.png", "spectra.png", "loss_curves.png"]


@pytest.fixture(scope="module")
def outputs(world, exp1_results):
    r1, r2 = exp1_results, world["root"] / "results/exp2"
    common = ["--config", str(world["config"]), "--data", str(world["data"])]
    assert main(common + ["--exp", "exp2", "--runs", *map(str, world["runs"]["exp2"]), "--reference", str(r1),
                          "--out", str(r2)]) == 0
    return r1, r2


def test_outputs_exist_and_validate(outputs):
    r1, r2 = outputs
    for d in (r1, r2):
        for name in ["metrics.json", "metrics.csv", "predictions.zarr", "report.md"] + FIGURES:
            assert (d / name).exists(), d / name
        validate_metrics(json.loads((d / "metrics.json").read_text()))
    assert (r2 / "comparison.json").exists() and (r2 / "comparison.csv").exists()
    assert not (r1 / "comparison.json").exists()
    assert not list(r1.parent.glob(".tmp-*")) and not list(r1.parent.glob(".old-*"))


def test_predictions_store(outputs, world):
    r1, _ = outputs
    ds = xr.open_zarr(r1 / "predictions.zarr", consolidated=False)
    assert ds["rain_mm_pred"].dims == ("seed", "time", "lat", "lon")
    assert list(ds.seed.values) == [0, 1]
    assert ds.attrs["exp"] == "exp1"
    run0 = xr.open_zarr(world["runs"]["exp1"][0] / "predictions.zarr", consolidated=False)
    np.testing.assert_array_equal(ds["rain_mm_pred"].sel(seed=0).values,
                                  run0["rain_mm_pred"].sel(time=ds.time).values)


def _scored_mask(truth, times, config):
    obs = truth.rain_mm.sel(time=times).values
    prev = truth.rain_mm.reindex(time=times - pd.Timedelta(hours=12)).values
    return obs, prev, (truth.loss_mask.values == 1) & truth.valid.sel(time=times).values & np.isfinite(obs) \
        & np.isfinite(prev)


def test_baseline_scores_by_hand(outputs, world):
    r1, _ = outputs
    m = json.loads((r1 / "metrics.json").read_text())
    truth, config = world["truth"], load_config(world["config"])
    times = pd.DatetimeIndex(truth.time.values)
    times = times[(times >= m["samples"]["time_start"]) & (times <= m["samples"]["time_end"])]
    assert len(times) == m["samples"]["n_times"] == 49  # 50 test frames; seed1 of exp1 lacks the last
    obs, prev, mask = _scored_mask(truth, times, config)
    assert mask.sum() == m["samples"]["cell_times_scored"]
    e = (prev - obs)[mask]
    pers = m["models"]["persistence"]
    assert pers["continuous"]["rmse"] == pytest.approx(np.sqrt(np.mean(e**2)), rel=1e-6)
    assert pers["continuous"]["mae"] == pytest.approx(np.mean(np.abs(e)), rel=1e-6)
    hits = int(((prev >= 5) & (obs >= 5))[mask].sum())
    assert pers["categorical"]["5"]["hits"] == hits
    zero = m["models"]["zero"]
    assert zero["categorical"]["0.1"]["hits"] == 0 and zero["categorical"]["0.1"]["false_alarms"] == 0
    assert zero["continuous"]["bias"] == pytest.approx(-np.mean(obs[mask]), rel=1e-6)
    # climatology: training-split mean per cell and hour
    train = truth.rain_mm.sel(time=slice("2021-01-01", "2021-02-10T12"))
    clim_by_hand = {h: np.nanmean(train.values[train.time.dt.hour.values == h], axis=0) for h in (0, 12)}
    clim = bl.climatology(truth.rain_mm, config)
    for h in (0, 12):
        np.testing.assert_allclose(clim.sel(hour=h).values, clim_by_hand[h], rtol=1e-5)
    c = np.stack([clim_by_hand[t.hour] for t in times])
    assert m["models"]["climatology"]["continuous"]["rmse"] == pytest.approx(
        np.sqrt(np.mean(((c - obs)[mask]) ** 2)), rel=1e-5)


def test_seed_mean_and_spread(outputs):
    r1, _ = outputs
    m = json.loads((r1 / "metrics.json").read_text())
    s0, s1 = m["models"]["exp1/seed0"], m["models"]["exp1/seed1"]
    e = m["models"]["exp1"]
    assert e["seeds"] == [0, 1]
    assert e["continuous"]["rmse"] == pytest.approx((s0["continuous"]["rmse"] + s1["continuous"]["rmse"]) / 2)
    assert e["spread"]["continuous"]["rmse"]["min"] == pytest.approx(min(s0["continuous"]["rmse"],
                                                                        s1["continuous"]["rmse"]))
    lo, hi = e["intervals"]["continuous"]["rmse"]
    assert lo <= e["continuous"]["rmse"] <= hi
    table = pd.read_csv(r1 / "metrics.csv")
    row = table[(table.model == "exp1") & (table.score == "csi") & (table.threshold_mm == 5.0)]
    assert row.value.iloc[0] == pytest.approx(e["categorical"]["5"]["csi"])


def test_comparison_and_verdict(outputs):
    r1, r2 = outputs
    m1 = json.loads((r1 / "metrics.json").read_text())
    comp = json.loads((r2 / "comparison.json").read_text())
    # same samples as exp1's own scoring (exp2 has every exp1 time)
    assert comp["samples"]["times_sha256"] == m1["samples"]["times_sha256"]
    assert comp["a"] == "exp1" and comp["b"] == "exp2"
    rmse = next(r for r in comp["scores"] if r["score"] == "rmse")
    assert rmse["a"] == pytest.approx(m1["models"]["exp1"]["continuous"]["rmse"])
    assert rmse["better"] == "b" and rmse["ci_high"] < 0  # exp2 was planted to be better
    fss_rows = [r for r in comp["scores"] if r["score"] == "fss"]
    assert len(fss_rows) == 4 * 4
    report = (r2 / "report.md").read_text()
    # the primary score (CRPS: the MAE of these deterministic forecasts) decides; RMSE is secondary
    assert re.search(r"exp2 lowers CRPS by \d+\.\d% \[\d+\.\d, \d+\.\d\] \(95% paired block bootstrap", report)
    assert re.search(r"RMSE: exp2 \d+\.\d+ vs exp1 \d+\.\d+, difference -\d+\.\d+ \[.*\]; Holm-adjusted p", report)
    crps = next(r for r in comp["scores"] if r["score"] == "crps")
    mae = next(r for r in comp["scores"] if r["score"] == "mae")
    assert crps["role"] == "primary" and crps["a"] == pytest.approx(mae["a"]) and crps["b"] == pytest.approx(mae["b"])
    assert "VERDICT: exp2 beats exp1" in report
    assert "exp1 beats persistence" in report and "exp2 beats climatology" in report
    for fig in FIGURES:
        assert f"]({fig})" in report


@pytest.mark.parametrize("name", FIGURES)
def test_figures_are_non_empty_images(outputs, name):
    for d in outputs:
        img = mpimg.imread(d / name)
        assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100
        assert img[..., :3].std() > 0.05, f"{d / name} looks blank"


def test_loud_warning_when_persistence_wins():
    rows = [{"score": "rmse", "threshold_mm": None, "window": None, "a": 2.0, "b": 3.0, "difference": 1.0,
             "ci_low": 0.5, "ci_high": 1.5, "better": "a"}]
    rows += [{"score": "csi", "threshold_mm": t, "window": None, "better": "a"} for t in (1.0, 5.0)]
    line, beats = baseline_verdict("exp1", "persistence", rows, [1.0, 5.0], "95%")
    assert not beats
    assert line.startswith("**WARNING: exp1 does NOT beat persistence**")


def test_bad_inputs_are_named(world, tmp_path):
    config = load_config(world["config"])
    truth = world["truth"]
    # grid mismatch
    bad = tmp_path / "seed0"
    bad.mkdir()
    xr.Dataset({"rain_mm_pred": (("time", "lat", "lon"), np.zeros((2, 3, 3), np.float32))},
               coords={"time": truth.time.values[-2:], "lat": [0.0, 1, 2], "lon": [0.0, 1, 2]},
               attrs={"exp": "exp1", "seed": 0}).to_zarr(bad / "predictions.zarr", consolidated=False)
    with pytest.raises(EvaluationError, match=r"seed0/predictions.zarr: lat coordinates"):
        evaluate(config, "exp1", world["data"], [bad], tmp_path / "out")
    # experiment name mismatch
    with pytest.raises(EvaluationError, match=r"attribute exp='exp2' but --exp 'exp1'"):
        evaluate(config, "exp1", world["data"], [world["runs"]["exp2"][0]], tmp_path / "out")
    # NaN prediction on a scored cell
    nan_run = tmp_path / "nan/seed3"
    shutil.copytree(world["runs"]["exp1"][0], nan_run)
    ds = xr.open_zarr(nan_run / "predictions.zarr", consolidated=False).load()
    ds["rain_mm_pred"][:] = np.nan
    ds.attrs["seed"] = 3
    ds.to_zarr(nan_run / "predictions.zarr", mode="w", consolidated=False)
    with pytest.raises(EvaluationError, match="no finite prediction"):
        evaluate(config, "exp1", world["data"], [nan_run], tmp_path / "out")
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------- the command line

def test_command_line_convention(world, tmp_path, capsys):
    """--version, and a bad input is one line ``error: ...`` naming the file, exit status 2."""
    from pipeline import __version__

    with pytest.raises(SystemExit) as ex:
        main(["--version"])
    assert ex.value.code == 0
    assert capsys.readouterr().out.strip() == f"python -m evaluation.evaluate {__version__}"
    missing = tmp_path / "runs" / "seed0"
    missing.mkdir(parents=True)
    rc = main(["--config", str(world["config"]), "--exp", "exp1", "--data", str(world["data"]),
               "--runs", str(missing), "--out", str(tmp_path / "out"), "--log-level", "WARNING", "--no-progress"])
    assert rc == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]
    assert err == [f"error: {missing / 'predictions.zarr'}: predictions missing (run training.predict first)"]
    assert not (tmp_path / "out").exists()


def test_config_without_training_frames_is_a_config_error(world, tmp_path, capsys):
    cfg = write_config(tmp_path / "c.yaml")
    c = yaml.safe_load(cfg.read_text())
    c["splits"]["train"] = {"start": "2019-01-01", "end": "2019-02-01"}
    cfg.write_text(yaml.safe_dump(c))
    rc = main(["--config", str(cfg), "--exp", "exp1", "--data", str(world["data"]),
               "--runs", str(world["runs"]["exp1"][0]), "--out", str(tmp_path / "out"), "--no-progress"])
    assert rc == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]
    assert len(err) == 1 and "config key 'splits.train'" in err[0] and "no frame of the data" in err[0]


def _baseline_store(path, truth, times, scale=0.8):
    """A precomputed baseline: the truth 12 h earlier, scaled (finite wherever persistence is)."""
    prev = truth.rain_mm.reindex(time=times - pd.Timedelta(hours=12)).values * scale
    xr.Dataset({"rain_mm_pred": (("time", "lat", "lon"), prev.astype(np.float32))},
               coords={"time": times, "lat": truth.lat.values, "lon": truth.lon.values}).to_zarr(
        path, mode="w", consolidated=False)
    return path


def test_precomputed_baseline_is_scored(world, tmp_path):
    truth = world["truth"]
    times = pd.DatetimeIndex(truth.time.values)
    times = times[times >= "2021-03-04"]
    store = _baseline_store(tmp_path / "advection.zarr", truth, times)
    out = tmp_path / "exp1"
    assert main(["--config", str(world["config"]), "--data", str(world["data"]), "--exp", "exp1",
                 "--runs", *map(str, world["runs"]["exp1"]), "--baselines", f"advection={store}",
                 "--out", str(out), "--no-progress"]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["models"]["advection"]["kind"] == "baseline"
    assert m["provenance"]["baselines"] == {"advection": str(store)}
    scored = pd.DatetimeIndex(pd.date_range(m["samples"]["time_start"], m["samples"]["time_end"], freq="12h"))
    obs, prev, mask = _scored_mask(truth, scored, load_config(world["config"]))
    e = (0.8 * prev - obs)[mask]
    assert m["models"]["advection"]["continuous"]["rmse"] == pytest.approx(np.sqrt(np.mean(e**2)), rel=1e-5)
    assert m["models"]["advection"]["continuous"]["crps"] == pytest.approx(np.mean(np.abs(e)), rel=1e-5)
    assert any(v.startswith("exp1 beats advection") or "exp1 does NOT beat advection" in v for v in m["verdicts"])
    assert "| advection |" in (out / "report.md").read_text()


def test_precomputed_baseline_errors(world, tmp_path, capsys):
    truth = world["truth"]
    times = pd.DatetimeIndex(truth.time.values)
    short = _baseline_store(tmp_path / "short.zarr", truth, times[times >= "2021-03-20"])
    common = ["--config", str(world["config"]), "--data", str(world["data"]), "--exp", "exp1",
              "--runs", *map(str, world["runs"]["exp1"]), "--out", str(tmp_path / "o"), "--no-progress"]
    cases = [([f"advection={short}"], r"baseline 'advection' lacks \d+ of the \d+ scored target times"),
             ([f"persistence={short}"], "name 'persistence' is already used"),
             (["advection"], "'advection' is not NAME=PATH"),
             ([f"advection={tmp_path / 'nothing.zarr'}"], "no such store")]
    for args, message in cases:
        assert main(common + ["--baselines", *args]) == 2
        err = capsys.readouterr().err
        errors = [line for line in err.splitlines() if line.startswith("error: ")]
        assert "Traceback" not in err and len(errors) == 1 and re.search(message, errors[0]), err
