"""radar.baselines: persistence values, optical-flow extrapolation of a translating pattern."""
import numpy as np
import xarray as xr

from radar import baselines


def _blobs(t, H=64, W=64, u=2.0, v=1.0):
    """Several Gaussian cells (peak 50 dBZ on a 0 dBZ floor) moved by (v, u) cells per step."""
    yy, xx = np.mgrid[0:H, 0:W].astype(float)
    out = np.zeros((H, W))
    for cy, cx, s in ((20, 15, 3.0), (35, 25, 4.0), (25, 35, 2.5), (45, 12, 3.5)):
        out = np.maximum(out, 50.0 * np.exp(-(((yy - cy - v * t) ** 2 + (xx - cx - u * t) ** 2) / (2 * s * s))))
    return out


def _centroid(f, thr=10.0):
    w = np.where(f >= thr, f, 0.0)
    yy, xx = np.mgrid[0:f.shape[0], 0:f.shape[1]]
    return (w * yy).sum() / w.sum(), (w * xx).sum() / w.sum()


def test_persistence_repeats_last_frame():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 10, 5, 6))
    out = baselines.persistence(x, n_leads=4)
    assert out.shape == (3, 4, 5, 6)
    for k in range(4):
        np.testing.assert_allclose(out[:, k], x[:, -1], rtol=1e-6)
    da = xr.DataArray(x, dims=("sample", "time", "y", "x"), coords={"x": np.arange(6) * 1000.0})
    out = baselines.persistence(da, n_leads=2)
    assert out.dims == ("sample", "lead", "y", "x") and list(out.lead.values) == [1, 2]
    np.testing.assert_allclose(out.x.values, da.x.values)


def test_optical_flow_moves_translating_pattern_by_the_right_displacement():
    frames = np.stack([_blobs(t) for t in range(10)])[None]  # (1, 10, 64, 64), u=2, v=1 cells/step
    out = baselines.optical_flow(frames, n_leads=4, floor=0.0)
    assert out.shape == (1, 4, 64, 64)
    y0, x0 = _centroid(frames[0, -1])
    for k in (1, 2, 4):
        y, x = _centroid(out[0, k - 1])
        ty, tx = _centroid(_blobs(9 + k))
        assert abs((x - x0) - 2.0 * k) < 0.35 * k, (k, x - x0)
        assert abs((y - y0) - 1.0 * k) < 0.35 * k, (k, y - y0)
        assert abs(x - tx) < 0.5 * k and abs(y - ty) < 0.5 * k
    # persistence leaves it in place: a much larger error at lead 4 than the extrapolation
    truth = _blobs(13)
    err_of = np.sqrt(np.mean((out[0, 3] - truth) ** 2))
    err_p = np.sqrt(np.mean((frames[0, -1] - truth) ** 2))
    assert err_of < 0.5 * err_p


def test_optical_flow_nan_outside_coverage():
    frames = np.stack([_blobs(t) for t in range(10)])[None].copy()
    frames[..., :, 58:] = np.nan  # a strip outside coverage
    out = baselines.optical_flow(frames, n_leads=3, floor=0.0)
    assert np.isnan(out[..., 58:]).all()
    assert np.isfinite(out[..., :58]).all()
    assert out[..., :58].min() >= 0.0 - 1e-6


def test_lucas_kanade_when_opencv_is_installed():
    import pytest

    pytest.importorskip("cv2")
    frames = np.stack([_blobs(t) for t in range(10)])[None]
    out = baselines.optical_flow(frames, n_leads=2, floor=0.0, method="LK")
    y0, x0 = _centroid(frames[0, -1])
    y, x = _centroid(out[0, 1])
    assert abs((x - x0) - 4.0) < 0.7 and abs((y - y0) - 2.0) < 0.7


def test_motion_method_names():
    import pytest

    assert baselines.motion_method("proesmans") == "proesmans"
    with pytest.raises(ValueError, match="radar.evaluation.motion_method"):
        baselines.motion_method("farneback")
