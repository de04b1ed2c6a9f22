"""radar.model_selection: the quantile map judged on validation alone (fit on the first half
of the validation samples, score on the second half)."""
import numpy as np
import xarray as xr


def _nowcasts(obs, fc):
    dims = ("sample", "lead", "y", "x")
    return xr.Dataset({"nowcast": (dims, fc.astype(np.float32)), "observed": (dims, obs.astype(np.float32)),
                       "mask": (("y", "x"), np.ones(obs.shape[2:], bool))},
                      coords={"lead": np.arange(1, obs.shape[1] + 1), "y": 1000.0 * np.arange(obs.shape[2]),
                              "x": 1000.0 * np.arange(obs.shape[3])})


ECFG = {"fss_scales_km": [1.0, 3.0]}


def test_split_half_quantile_map_restores_a_squeezed_forecast():
    from radar.model_selection import _split_half_quantile_map

    rng = np.random.default_rng(1)
    obs = np.clip(rng.normal(18.0, 12.0, size=(20, 2, 8, 8)), 0.0, None)
    fc = 10.0 + 0.2 * obs  # the right places, intensities squeezed below 30 dBZ
    p = _nowcasts(obs, fc)
    per = p["observed"].copy(data=np.roll(obs, 1, axis=0))
    r = _split_half_quantile_map(p, per, np.ones((8, 8), bool), ECFG)["second_half"]
    assert r["n"] == 10
    assert r["raw"]["csi@30dBZ"] == 0.0  # the squeezed forecast never reaches 30 dBZ
    # the map fitted on samples 0-9 brings samples 10-19 back to (nearly) the observation
    assert r["quantile_map"]["csi@30dBZ"] > 0.9
    assert abs(r["quantile_map"]["frequency_bias@30dBZ"] - 1.0) < 0.1
    assert r["quantile_map"]["rmse"] < 0.2 * r["raw"]["rmse"]
    # the fit sees the first half only: a second half whose observation is shifted keeps the
    # first half's map, so the mapped second half misses the shift
    shifted = _nowcasts(np.concatenate([obs[:10], obs[10:] + 20.0]), fc)
    s = _split_half_quantile_map(shifted, per, np.ones((8, 8), bool), ECFG)["second_half"]
    assert s["quantile_map"]["rmse"] > 15.0
