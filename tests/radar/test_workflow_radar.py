"""Train -> predict -> evaluate -> report on a tiny synthetic CAPPI store (contract 3):
the nowcast file's observed frames are the store's, the report's verdict line comes from
radar.verify.compare, persistence scores match a direct computation."""
import json

import numpy as np
import pytest

from tests.radar.synthetic import make_cappi

CFG = {"seed": 0, "radar": {"model": {"hidden": [8, 8], "groups": 4},
                            "train": {"epochs": 1, "batch_size": 8, "lr": 1e-2},
                            "frames": {"input_steps": 4, "output_steps": 3},
                            "evaluation": {"bootstrap_samples": 50, "block_length": 3, "fss_scales_km": [1.0, 5.0]}}}


@pytest.mark.slow
def test_train_predict_report(tmp_path):
    from radar.predict import predict
    from radar.report import evaluate, report_md
    from radar.train import train

    ds = make_cappi(n_times=120, ny=12, nx=12)
    ds.to_zarr(tmp_path / "c.zarr")
    files = {}
    for e in ("reflectivity", "dualpol"):
        train(CFG, tmp_path / "c.zarr", e, 0, tmp_path / e, show_progress=False)
        p = predict(CFG, tmp_path / "c.zarr", tmp_path / e / "model.pt")
        p.to_netcdf(tmp_path / f"{e}.nc")
        files[e] = tmp_path / f"{e}.nc"
    # test split: frames [96+7=103, 120) -> windows of 7 starting 103..113: 11 samples
    assert p.sizes == {"sample": 11, "lead": 3, "y": 12, "x": 12, "step": 4}
    obs = ds["DBZH"].values[:, 0]
    np.testing.assert_allclose(p["observed"].values[0], obs[107:110], rtol=1e-6, atol=1e-5)  # via the target scale
    np.testing.assert_allclose(p["inputs"].values[-1], obs[113:117], rtol=1e-6, atol=1e-5)
    m = evaluate(CFG, files, ["persistence"])
    json.dumps(m, allow_nan=False)
    # persistence RMSE by hand over the scored cells
    per = np.repeat(p["inputs"].values[:, -1:], 3, axis=1)
    o = p["observed"].values
    ok = np.isfinite(o) & p["mask"].values[None, None]
    assert m["models"]["persistence"]["scores"]["rmse"]["all"] == pytest.approx(
        float(np.sqrt(np.mean((per - o)[ok] ** 2))), rel=1e-6)
    assert m["headline"].startswith("Z_DR and K_DP improve the 0-1 h nowcast: ")
    assert m["comparisons"]["dualpol_vs_reflectivity"]["n_samples"] == 11
    assert m["headline"].split(": ")[1].split(",")[0] in ("yes", "no")
    assert "dualpol vs reflectivity" in report_md(m)
