"""radar.verify against worked examples, pysteps.verification, scores and pysteps' rapsd."""
import numpy as np
import pytest
import xarray as xr

from radar import verify

CFG = {"thresholds_dbz": [20.0, 30.0, 40.0], "thresholds_mmh": [1.0, 5.0, 10.0],
       "fss_scales_km": [1.0, 3.0, 5.0], "block_length": 3, "bootstrap_samples": 300}


def _fields(seed=0, S=6, L=3, H=24, W=20, noise=6.0):
    rng = np.random.default_rng(seed)
    obs = rng.gamma(2.0, 10.0, size=(S, L, H, W))
    fcst = obs + rng.normal(0, noise, size=obs.shape)
    return obs, fcst


def test_worked_contingency_example():
    # one sample, one lead, 2x2 grid, threshold 30 dBZ:
    # hit (35/32), false alarm (31/10), miss (5/40), correct negative (0/0)
    obs = np.array([32.0, 10.0, 40.0, 0.0]).reshape(1, 1, 2, 2)
    fcst = np.array([35.0, 31.0, 5.0, 0.0]).reshape(1, 1, 2, 2)
    out = verify.verify_nowcast(obs, fcst, np.ones((2, 2), bool), {**CFG, "fss_scales_km": [1.0]})
    s = out["scores"]
    assert s["csi@30dBZ"]["all"] == pytest.approx(1 / 3)
    assert s["pod@30dBZ"]["all"] == pytest.approx(0.5)
    assert s["far@30dBZ"]["all"] == pytest.approx(0.5)
    assert s["frequency_bias@30dBZ"]["all"] == pytest.approx(1.0)
    assert s["rmse"]["all"] == pytest.approx(np.sqrt((9 + 21**2 + 35**2 + 0) / 4))
    assert s["mae"]["all"] == pytest.approx((3 + 21 + 35) / 4)
    # 40 dBZ: observed 40 is an event (>=), forecast has none -> CSI 0, FAR undefined
    assert s["csi@40dBZ"]["all"] == 0.0 and s["far@40dBZ"]["all"] is None
    # rain thresholds via Marshall-Palmer: 1 mm/h <-> 23.01 dBZ, 5 mm/h <-> 34.2 dBZ
    # 1 mm/h: hit (35/32), false alarm (31/10), miss (5/40) -> 1/3
    assert s["csi@1mmh"]["all"] == pytest.approx(1 / 3)
    # 5 mm/h: forecast 35 is an event where 32 is not (false alarm), 40 is missed -> 0
    assert s["csi@5mmh"]["all"] == 0.0 and s["pod@5mmh"]["all"] == 0.0
    assert out["leads_min"] == [6]


def test_categorical_matches_pysteps_per_lead():
    from pysteps.verification import det_cat_fct

    obs, fcst = _fields()
    mask = np.ones(obs.shape[2:], bool)
    mask[:3] = False
    fcst[0, 0, 5, 5] = np.nan  # a NaN cell is not scored
    out = verify.verify_nowcast(obs, fcst, mask, CFG)
    for lead in range(obs.shape[1]):
        ok = mask[None] & np.isfinite(fcst[:, lead])
        for thr in CFG["thresholds_dbz"]:
            ref = det_cat_fct(fcst[:, lead][ok], obs[:, lead][ok], thr, scores=["CSI", "POD", "FAR", "BIAS"])
            s = out["scores"]
            assert s[f"csi@{thr:g}dBZ"]["by_lead"][lead] == pytest.approx(ref["CSI"])
            assert s[f"pod@{thr:g}dBZ"]["by_lead"][lead] == pytest.approx(ref["POD"])
            assert s[f"far@{thr:g}dBZ"]["by_lead"][lead] == pytest.approx(ref["FAR"])
            assert s[f"frequency_bias@{thr:g}dBZ"]["by_lead"][lead] == pytest.approx(ref["BIAS"])
    ok = mask[None, None] & np.isfinite(fcst)
    ref = det_cat_fct(fcst[ok], obs[ok], 30.0, scores=["CSI"])
    assert out["scores"]["csi@30dBZ"]["all"] == pytest.approx(ref["CSI"])
    e = (fcst - obs)[ok]
    assert out["scores"]["rmse"]["all"] == pytest.approx(np.sqrt(np.mean(e**2)))


def test_fss_matches_scores_library():
    import scores.spatial

    obs, fcst = _fields(seed=1, S=4, L=2)
    mask = np.ones(obs.shape[2:], bool)
    out = verify.verify_nowcast(obs, fcst, mask, CFG, dx_km=1.0)
    assert out["fss_windows_cells"] == [1, 3, 5]
    for lead in range(2):
        for win, km in zip((1, 3, 5), (1, 3, 5)):
            da_f = xr.DataArray(fcst[:, lead], dims=("t", "y", "x"))
            da_o = xr.DataArray(obs[:, lead], dims=("t", "y", "x"))
            ref = scores.spatial.fss_2d(da_f, da_o, event_threshold=30.0, window_size=(win, win),
                                        spatial_dims=("y", "x"), zero_padding=False, preserve_dims=[])
            assert out["scores"][f"fss@30dBZ@{km}km"]["by_lead"][lead] == pytest.approx(float(ref), rel=1e-9)
    # useful level 0.5 + f0/2, f0 the observed frequency >= 30 dBZ
    f0 = np.mean(obs >= 30.0)
    assert out["scores"]["fss_useful@30dBZ"]["all"] == pytest.approx(0.5 + f0 / 2)


def test_fss_windows_from_km_and_grid_spacing():
    assert verify.fss_windows([1, 5, 10, 21], 1.0) == [1, 5, 11, 21]
    assert verify.fss_windows([1, 5, 10], 2.0) == [1, 3, 5]
    da = xr.DataArray(np.zeros((1, 1, 3, 4)), dims=("sample", "lead", "y", "x"),
                      coords={"x": np.arange(4) * 2000.0})
    assert verify.grid_spacing_km(da) == 2.0


def test_rapsd_matches_pysteps():
    from pysteps.utils.spectral import rapsd

    rng = np.random.default_rng(3)
    for shape in ((32, 32), (33, 33), (24, 30)):
        f = rng.normal(size=(2,) + shape)
        ours, freq = verify.rapsd(f, d=1.0)
        for i in range(2):
            ref, rfreq = rapsd(f[i], fft_method=np.fft, return_freq=True, d=1.0)
            np.testing.assert_allclose(ours[i], ref, rtol=1e-10)
            np.testing.assert_allclose(freq, rfreq)


def test_power_spectra_smooth_forecast_has_less_small_scale_power():
    from scipy.ndimage import uniform_filter

    rng = np.random.default_rng(4)
    obs = rng.gamma(2.0, 10.0, size=(3, 2, 32, 32))
    fcst = uniform_filter(obs, size=(1, 1, 5, 5))
    sp = verify.power_spectra(obs, fcst, dx_km=1.0)
    assert len(sp["obs"]) == 2 and len(sp["wavelength_km"]) == 15
    assert all(r < 0.2 for r in sp["small_scale_power_ratio"])
    same = verify.power_spectra(obs, obs, dx_km=1.0)
    assert same["small_scale_power_ratio"] == pytest.approx([1.0, 1.0])


def _pair(seed, better: bool, S=40):
    rng = np.random.default_rng(seed)
    obs = rng.gamma(2.0, 12.0, size=(S, 2, 16, 16))
    a = obs + rng.normal(0, 12.0, obs.shape)
    b = obs + rng.normal(0, 4.0 if better else 12.0, obs.shape)
    return obs, a, b


def test_compare_clearly_better_model_excludes_zero():
    obs, a, b = _pair(5, better=True)
    out = verify.compare(obs, a, b, np.ones((16, 16), bool), CFG, seed=0, name_a="reflectivity", name_b="dualpol")
    p = out["scores"]["csi@30dBZ"]["all"]
    assert p["ci_low"] > 0 and p["p_value"] < 0.01
    assert out["verdict"] == "significant improvement"
    assert out["scores"]["rmse"]["all"]["ci_high"] < 0
    assert out["scores"]["rmse"]["all"]["verdict"] == "significant improvement"
    assert len(out["scores"]["csi@30dBZ"]["by_lead"]["ci_low"]) == 2
    assert out["line"].startswith("dualpol vs reflectivity: CSI >= 30 dBZ")
    # reversed roles: significantly worse
    rev = verify.compare(obs, b, a, np.ones((16, 16), bool), CFG, seed=0)
    assert rev["verdict"] == "significantly worse"


def test_compare_equal_skill_models_include_zero():
    obs, a, b = _pair(6, better=False)
    out = verify.compare(obs, a, b, np.ones((16, 16), bool), CFG, seed=0)
    for key in ("csi@30dBZ", "rmse", "fss@30dBZ@3km"):
        p = out["scores"][key]["all"]
        assert p["ci_low"] < 0 < p["ci_high"], key
    assert out["verdict"] == "no significant difference"


def test_compare_difference_is_point_difference():
    obs, a, b = _pair(7, better=True, S=10)
    mask = np.ones((16, 16), bool)
    out = verify.compare(obs, a, b, mask, CFG, seed=1)
    va, vb = verify.verify_nowcast(obs, a, mask, CFG), verify.verify_nowcast(obs, b, mask, CFG)
    for k in ("rmse", "csi@20dBZ", "fss@40dBZ@5km"):
        assert out["scores"][k]["all"]["difference"] == pytest.approx(vb["scores"][k]["all"] - va["scores"][k]["all"])
        np.testing.assert_allclose(out["scores"][k]["by_lead"]["difference"],
                                   np.subtract(vb["scores"][k]["by_lead"], va["scores"][k]["by_lead"]))


def test_compare_holm_adjusts_secondary_p_values_and_config_errors():
    from evaluation.multiplicity import holm

    obs, a, b = _pair(8, better=True, S=12)
    mask = np.ones((16, 16), bool)
    out = verify.compare(obs, a, b, mask, CFG, seed=2)
    assert "p_holm" not in out["scores"]["csi@30dBZ"]["all"]
    raw = out["scores"]["rmse"]["all"]["p_value"]
    assert out["scores"]["rmse"]["all"]["p_holm"] >= raw
    fam = []
    for k in ["rmse"] + [f"csi@{t:g}dBZ" for t in CFG["thresholds_dbz"]] + \
            [f"fss@{t:g}dBZ@{s:g}km" for t in CFG["thresholds_dbz"] for s in CFG["fss_scales_km"]]:
        for sc in ("all", "by_lead"):
            if (k, sc) != ("csi@30dBZ", "all"):
                fam.extend(np.atleast_1d(out["scores"][k][sc]["p_value"]))
    fam = np.array([np.nan if v is None else v for v in fam], dtype=float)
    assert out["scores"]["rmse"]["all"]["p_holm"] == pytest.approx(holm(fam)[0])
    with pytest.raises(ValueError, match="radar.evaluation.fss_scales_km"):
        verify.verify_nowcast(obs, a, mask, {**CFG, "fss_scales_km": [40.0]})
    with pytest.raises(ValueError, match="radar.evaluation.primary_threshold_dbz"):
        verify.compare(obs, a, b, mask, {**CFG, "primary_threshold_dbz": 35.0})


def test_settings_from_config_takes_marshall_palmer_from_qpe():
    s = verify.settings_from_config({"radar": {"evaluation": {"block_length": 4}, "qpe": {"zr_a": 300.0, "zr_b": 1.4}}})
    assert (s["block_length"], s["zr_a"], s["zr_b"]) == (4, 300.0, 1.4)
    # Z = 300 R^1.4: 1 mm/h <-> 24.77 dBZ, so 24 dBZ is below 1 mm/h and 25 dBZ above it
    obs = np.array([25.0, 24.0]).reshape(1, 1, 1, 2)
    out = verify.verify_nowcast(obs, obs, np.ones((1, 2), bool), {**s, "fss_scales_km": [1.0]})
    assert out["scores"]["base_rate@1mmh"]["all"] == pytest.approx(0.5)
    out = verify.verify_nowcast(obs, obs, np.ones((1, 2), bool), {"fss_scales_km": [1.0]})
    assert out["scores"]["base_rate@1mmh"]["all"] == pytest.approx(1.0)  # 200 R^1.6: 1 mm/h <-> 23.01 dBZ
