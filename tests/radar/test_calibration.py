"""radar.calibration: quantile mapping fitted on one set of nowcasts, applied to another."""
import numpy as np
import pytest

from radar.calibration import apply_quantile_map, fit_quantile_map


def test_monotone_distortion_is_undone():
    """A forecast that is a monotone distortion of the observation (a smoothed, shrunk copy)
    maps back onto the observed values: the map recovers the inverse distortion."""
    rng = np.random.default_rng(0)
    obs = rng.gamma(2.0, 8.0, size=(40, 3, 6, 6))
    fc = 10.0 + 0.3 * np.sqrt(obs)  # intensities squeezed towards a mean, ranking kept
    fq, oq = fit_quantile_map(fc, obs, np.ones((6, 6), bool), n_quantiles=501)
    back = apply_quantile_map(fc, fq, oq)
    assert back.dtype == np.float32
    # within the spacing of the quantile grid (linear interpolation between 501 points)
    inner = (obs > np.quantile(obs, 0.01)) & (obs < np.quantile(obs, 0.99))
    np.testing.assert_allclose(back[inner], obs[inner], rtol=0.05, atol=0.5)
    # the frequency of exceeding 30 dBZ is restored: the squeezed forecast never reaches it
    assert (fc > 30).mean() == 0 and abs((back > 30).mean() - (obs > 30).mean()) < 0.01


def test_worked_example_per_lead_with_mask_and_ties():
    # lead 1: forecasts 0, 0, 1, 2 (a tie at 0) against observed 10, 20, 30, 40
    fc = np.array([0.0, 0.0, 1.0, 2.0]).reshape(4, 1, 1, 1)
    ob = np.array([10.0, 20.0, 30.0, 40.0]).reshape(4, 1, 1, 1)
    fq, oq = fit_quantile_map(fc, ob, np.ones((1, 1), bool), n_quantiles=5)
    np.testing.assert_allclose(fq[0], [0.0, 0.0, 0.5, 1.25, 2.0])
    np.testing.assert_allclose(oq[0], [10.0, 17.5, 25.0, 32.5, 40.0])
    # the tie at 0 maps to the mean of its observed quantiles (13.75); 0.5 -> 25; beyond the ends clamp
    out = apply_quantile_map(np.array([0.0, 0.5, 2.0, 9.0, np.nan]).reshape(5, 1, 1, 1), fq, oq)
    np.testing.assert_allclose(out.ravel()[:4], [13.75, 25.0, 40.0, 40.0])
    assert np.isnan(out.ravel()[4])
    # cells outside the mask and NaN observations are not fitted
    fc2 = np.concatenate([fc, fc + 100], axis=3)
    ob2 = np.concatenate([ob, np.full_like(ob, np.nan)], axis=3)
    fq2, oq2 = fit_quantile_map(fc2, ob2, np.array([[True, True]]), n_quantiles=5)
    np.testing.assert_allclose(fq2, fq) and np.testing.assert_allclose(oq2, oq)
    with pytest.raises(ValueError, match="lead 1"):
        fit_quantile_map(fc, np.full_like(ob, np.nan), np.ones((1, 1), bool))


def test_predict_maps_test_nowcasts_with_the_validation_fit(tmp_path):
    """radar.predict with calibration quantile_map: the test nowcast is the network's own
    nowcast (kept as nowcast_uncalibrated) through the map fitted on its validation nowcasts."""
    import torch
    import xarray as xr

    from radar.dataset import load
    from radar.predict import _nowcasts, _observed, predict
    from radar.train import build_model
    from tests.radar.synthetic import make_cappi
    from tests.radar.test_train import TINY
    from training.checkpoint import plain, save

    store = tmp_path / "cappi.zarr"
    make_cappi(n_times=100, ny=12, nx=12).to_zarr(store)
    cfg = {"radar": {**TINY["radar"], "model": {**TINY["radar"]["model"], "base": "persistence",
                                                "calibration": "quantile_map"}}}
    with xr.open_zarr(store) as ds:
        a = load(ds.load(), cfg, "reflectivity")
    torch.manual_seed(0)
    model = build_model(len(a.channels), cfg, a)
    save(tmp_path / "model.pt", {"model_args": model.args, "model_state": model.state_dict(), "norm": a.norm,
                                 "channels": a.channels, "frames": plain(a.frames), "experiment": "reflectivity",
                                 "seed": 0, "epoch": 1, "val_loss": 0.0})
    p = predict(cfg, store, tmp_path / "model.pt")
    assert p.attrs["calibration"] == "quantile_map" and "validation split" in p.attrs["calibration_fitted_on"]
    val, dv = _nowcasts(model.eval(), a, cfg, "validation", 8)
    fq, oq = fit_quantile_map(val, _observed(a, dv), a.coverage)
    np.testing.assert_allclose(p["nowcast"].values, apply_quantile_map(p["nowcast_uncalibrated"].values, fq, oq))
    assert not np.allclose(p["nowcast"].values, p["nowcast_uncalibrated"].values)
    plain_cfg = {"radar": {**cfg["radar"], "model": {**cfg["radar"]["model"], "calibration": "none"}}}
    q = predict(plain_cfg, store, tmp_path / "model.pt")
    assert q.attrs["calibration"] == "none" and "nowcast_uncalibrated" not in q
    np.testing.assert_array_equal(q["nowcast"].values, p["nowcast_uncalibrated"].values)
    # the validation split itself is never mapped (model selection scores it)
    v = predict(cfg, store, tmp_path / "model.pt", split="validation")
    assert v.attrs["calibration"] == "none"
    # the report scores the mapped nowcasts and, beside them, the network's own
    from radar.report import evaluate, report_md

    p.to_netcdf(tmp_path / "r.nc")
    ecfg = {**cfg, "seed": 0, "radar": {**cfg["radar"], "evaluation": {"bootstrap_samples": 20, "block_length": 2,
                                                                         "fss_scales_km": [1.0]}}}
    m = evaluate(ecfg, {"reflectivity": tmp_path / "r.nc"}, [])
    r = m["models"]["reflectivity"]
    o, u = p["observed"].values, p["nowcast_uncalibrated"].values
    ok = np.isfinite(o) & p["mask"].values[None, None]
    assert r["calibration"] == "quantile_map"
    assert r["uncalibrated_scores"]["rmse"]["all"] == pytest.approx(float(np.sqrt(np.mean((u - o)[ok] ** 2))), rel=1e-5)
    assert r["scores"]["rmse"]["all"] == pytest.approx(
        float(np.sqrt(np.mean((p["nowcast"].values - o)[ok] ** 2))), rel=1e-5)
    assert "quantile-mapped per lead with a map fitted on the validation split" in report_md(m)
