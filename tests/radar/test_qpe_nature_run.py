"""radar.qpe on the nature run's truth and gauges (slow: runs an 80-step nature run).

The nature run draws drop-size distributions that vary at fixed Z_H, so Z_DR carries rain
information beyond Z_H: R(Z, Z_DR) must beat Marshall-Palmer against the gauges, with a
bootstrap interval excluding 0 (measured: RMSE 0.38 vs 0.67 mm/h on 30 test periods)."""
import numpy as np
import pytest
import xarray as xr

from radar import qpe

pytestmark = pytest.mark.slow


def test_zdr_contribution_on_the_nature_run(tmp_path):
    nature_run = pytest.importorskip("radar.nature_run")
    nature_run.generate({"radar": {"nature_run": {"steps": 80}}}, tmp_path / "raw", tmp_path / "truth",
                        show_progress=False)
    ds = xr.open_dataset(tmp_path / "truth" / "truth.nc")
    gauges = qpe.read_gauges(tmp_path / "raw" / "gauges" / "gauges.csv")
    t = ds.time.values
    out = qpe.verify_qpe(ds, gauges, t[:50], t[50:], {"bootstrap_samples": 500, "block_length": 10})
    est = out["estimators"]
    assert est["rzzdr"]["rmse"] < est["rz"]["rmse"]
    assert abs(est["rzzdr"]["bias"]) < 0.1 and est["rzzdr"]["correlation"] > 0.95
    rz_vs_rzzdr = out["zdr_contribution"][0]
    assert rz_vs_rzzdr["verdict"] == "significant improvement"
    # against the true rain rate of the lowest level: R(Z, Z_DR) is unbiased, R(Z) is not
    r = ds.RATE.isel(height=0).values
    z, zdr = ds.DBZH.isel(height=0).values, ds.ZDR.isel(height=0).values
    m = r > 0.5
    assert abs(np.nanmean(qpe.rain_from_z_zdr(z, zdr)[m] - r[m])) < 0.1
    assert np.nanmean(qpe.rain_from_dbz(z)[m] - r[m]) > 0.3
