"""radar.qpe: relations against worked numbers, learned fit, gauge matching, verification."""
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from radar import qpe


def test_marshall_palmer_worked_numbers():
    # Z = 200 R^1.6: R = 1 mm/h -> Z = 200 -> 23.01 dBZ; R = 10 -> 200 * 10^1.6 = 7962 -> 39.01 dBZ
    assert qpe.dbz_from_rain(1.0) == pytest.approx(23.0103, abs=1e-4)
    assert qpe.dbz_from_rain(10.0) == pytest.approx(39.0103, abs=1e-4)
    assert qpe.rain_from_dbz(23.0103) == pytest.approx(1.0, rel=1e-4)
    # 40 dBZ: (10^4 / 200)^(1/1.6) = 50^0.625 = 11.53 mm/h
    assert qpe.rain_from_dbz(40.0) == pytest.approx(11.5314, rel=1e-4)
    assert qpe.rain_from_dbz(np.array([np.nan, 0.0]), floor=0.0)[1] == 0.0
    assert np.isnan(qpe.rain_from_dbz(np.nan))


def test_z_zdr_and_kdp_worked_numbers():
    # R = 6.7e-3 Z^0.927 10^(-0.343 ZDR): 40 dBZ, ZDR 1 dB -> 6.7e-3 * 10^3.708 * 10^-0.343
    ref = 6.7e-3 * 10 ** (4 * 0.927) * 10 ** (-0.343)
    assert qpe.rain_from_z_zdr(40.0, 1.0) == pytest.approx(ref, rel=1e-9)
    assert ref == pytest.approx(15.53, abs=0.01)
    # Z_DR below 0.1 dB falls back to Marshall-Palmer
    assert qpe.rain_from_z_zdr(40.0, 0.0) == pytest.approx(qpe.rain_from_dbz(40.0))
    # R = 40.5 K_DP^0.85: K_DP = 1 -> 40.5; 2 deg/km -> 40.5 * 2^0.85 = 73.00
    assert qpe.rain_from_kdp(1.0) == pytest.approx(40.5)
    assert qpe.rain_from_kdp(2.0) == pytest.approx(73.00, abs=0.01)
    assert qpe.rain_from_kdp(-0.2) == 0.0 and np.isnan(qpe.rain_from_kdp(np.nan))


def test_learned_qpe_recovers_a_log_linear_law():
    rng = np.random.default_rng(0)
    z = rng.uniform(15, 55, 500)
    zdr = rng.uniform(0.2, 3.0, 500)
    kdp = rng.uniform(0, 2, 500)
    w = np.array([-3.0, 0.12, -0.3, 0.5])
    g = np.exp(w[0] + w[1] * z + w[2] * zdr + w[3] * np.log1p(kdp))
    m = qpe.fit_learned(z, zdr, kdp, g, with_zdr=True)
    np.testing.assert_allclose(m.weights, w, atol=1e-8)
    assert m(30.0, 1.0, 0.5) == pytest.approx(np.exp(w @ [1, 30.0, 1.0, np.log1p(0.5)]))
    assert m(-5.0, 1.0, 0.0) == 0.0  # at or below the floor: no rain
    m2 = qpe.fit_learned(z, zdr, kdp, g, with_zdr=False)
    assert len(m2.weights) == 3
    with pytest.raises(ValueError, match="learned_min_mmh"):
        qpe.fit_learned(z[:2], zdr[:2], kdp[:2], g[:2], with_zdr=True)


def _synthetic(tmp_path, seed=0, n_t=80, zdr_signal=True):
    """A CAPPI store (4 heights? 2) and gauges whose rain follows R(Z, Z_DR) plus noise."""
    rng = np.random.default_rng(seed)
    times = pd.date_range("2026-06-01", periods=n_t, freq="6min").values.astype("datetime64[ns]")
    ny, nx = 6, 7
    lat = 50.0 + np.arange(ny)[:, None] * 0.009 + 0 * np.arange(nx)[None]
    lon = 8.0 + np.arange(nx)[None] * 0.014 + 0 * np.arange(ny)[:, None]
    # drop-size variability: at fixed Z, larger Z_DR (bigger drops) means less rain
    dbz = rng.uniform(20, 50, (n_t, 2, ny, nx))
    zdr = rng.uniform(0.3, 3.0, (n_t, 2, ny, nx))
    kdp = np.maximum(0.0, (dbz - 35) / 15)
    ds = xr.Dataset({"DBZH": (("time", "height", "y", "x"), dbz.astype(np.float32)),
                     "ZDR": (("time", "height", "y", "x"), zdr.astype(np.float32)),
                     "KDP": (("time", "height", "y", "x"), kdp.astype(np.float32))},
                    coords={"time": times, "height": [1000.0, 2000.0], "y": np.arange(ny) * 1000.0,
                            "x": np.arange(nx) * 1000.0, "lat": (("y", "x"), lat), "lon": (("y", "x"), lon)})
    ds["DBZH"][5, 0, 2, 3] = np.nan  # a QC-removed cell
    stations = [("A", 2, 3), ("B", 4, 1), ("C", 0, 6), ("D", 5, 5)]
    recs = []
    for i in range(1, n_t):
        for name, iy, ix in stations:
            z0, z1 = dbz[i - 1, 0, iy, ix], dbz[i, 0, iy, ix]
            d0, d1 = zdr[i - 1, 0, iy, ix], zdr[i, 0, iy, ix]
            if zdr_signal:
                r = 0.5 * (qpe.rain_from_z_zdr(z0, d0) + qpe.rain_from_z_zdr(z1, d1))
            else:
                r = 0.5 * (qpe.rain_from_dbz(z0) + qpe.rain_from_dbz(z1))
            r *= np.exp(rng.normal(0, 0.1))
            recs.append((name, lat[iy, ix] + 0.001, lon[iy, ix] - 0.001,
                         pd.Timestamp(times[i]).strftime("%Y-%m-%dT%H:%M:%SZ"), round(r / 10.0, 4)))
    path = tmp_path / "gauges.csv"
    pd.DataFrame(recs, columns=["station", "lat", "lon", "time", "rain_mm"]).to_csv(path, index=False)
    return ds, path, times


def test_match_gauges_picks_nearest_cell_and_bounding_frames(tmp_path):
    ds, path, times = _synthetic(tmp_path, n_t=10)
    g = qpe.read_gauges(path)
    assert g["time"][0] == times[1] and g["rain_mm"].dtype == float
    pairs = qpe.match_gauges(ds, g)
    k = np.flatnonzero((pairs["station"] == "B") & (pairs["time"] == times[3]))[0]
    assert pairs["DBZH_0"][k] == pytest.approx(float(ds.DBZH[2, 0, 4, 1]))
    assert pairs["DBZH_1"][k] == pytest.approx(float(ds.DBZH[3, 0, 4, 1]))
    assert pairs["gauge_mmh"][k] == pytest.approx(10 * g["rain_mm"][(g["station"] == "B") & (g["time"] == times[3])][0])
    # the rz estimate is the mean of the two frames' Marshall-Palmer rates
    est = qpe.estimate({kk: v[k:k + 1] for kk, v in pairs.items()}, "rz", {})
    assert est[0] == pytest.approx(0.5 * (qpe.rain_from_dbz(ds.DBZH[2, 0, 4, 1]) + qpe.rain_from_dbz(ds.DBZH[3, 0, 4, 1])))
    # the QC-removed cell leaves only the other frame
    k = np.flatnonzero((pairs["station"] == "A") & (pairs["time"] == times[5]))[0]
    est = qpe.estimate({kk: v[k:k + 1] for kk, v in pairs.items()}, "rz", {})
    assert est[0] == pytest.approx(qpe.rain_from_dbz(float(ds.DBZH[4, 0, 2, 3])), rel=1e-6)


def test_read_gauges_errors(tmp_path):
    from pipeline.common.errors import InvalidGaugeError

    p = tmp_path / "g.csv"
    p.write_text("station,lat,lon,time,rain_mm\nA,50,8,2026-06-01T00:06:00Z,-1\n")
    with pytest.raises(InvalidGaugeError, match=r"g.csv:2: rain_mm = -1"):
        qpe.read_gauges(p)
    p.write_text("station,lat,lon,time\n")
    with pytest.raises(InvalidGaugeError, match="missing column"):
        qpe.read_gauges(p)


def test_verify_qpe_zdr_contribution_detected(tmp_path):
    ds, path, times = _synthetic(tmp_path, seed=1, zdr_signal=True)
    out = qpe.verify_qpe(ds, qpe.read_gauges(path), times[:40], times[40:],
                         {"bootstrap_samples": 300, "block_length": 5})
    assert set(out["estimators"]) == set(qpe.ESTIMATORS)
    rz, rzz = out["estimators"]["rz"], out["estimators"]["rzzdr"]
    assert rzz["rmse"] < rz["rmse"] and rzz["correlation"] > 0.95
    c = out["zdr_contribution"][0]
    assert (c["a"], c["b"]) == ("rz", "rzzdr")
    assert c["verdict"] == "significant improvement" and c["scores"]["rmse"]["ci_high"] < 0
    learned = out["zdr_contribution"][1]
    assert learned["verdict"] == "significant improvement"
    # the learned law has the generating law's signs: rain grows with Z, falls with Z_DR at
    # fixed Z (the gauge averages two independent frames here, so the slopes are attenuated;
    # exact recovery is tested on single frames above)
    w = out["learned"]["learned"]["weights"]
    assert w[1] > 0 and w[2] < 0
    assert out["n_test_times"] == 40


def test_verify_qpe_no_zdr_signal_no_significant_difference(tmp_path):
    ds, path, times = _synthetic(tmp_path, seed=2, zdr_signal=False)
    out = qpe.verify_qpe(ds, qpe.read_gauges(path), times[:40], times[40:],
                         {"bootstrap_samples": 300, "block_length": 5})
    learned = out["zdr_contribution"][1]  # learned with vs without Z_DR on rain that ignores Z_DR
    s = learned["scores"]["rmse"]
    assert s["ci_low"] < 0 < s["ci_high"]
    assert learned["verdict"] == "no significant difference"
    # Marshall-Palmer is the truth here: R(Z, Z_DR) is significantly worse
    assert out["zdr_contribution"][0]["verdict"] == "significantly worse"
