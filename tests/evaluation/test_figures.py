"""Figures a meteorologist reads at a glance: maps in degrees at the right aspect, rain on
fixed levels, FSS against km with the useful-skill line; images exist and are not blank,
also for all-dry and all-NaN fields."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from evaluation import figures


def _not_blank(path):
    img = np.asarray(Image.open(path).convert("RGB"), dtype=np.float64)
    assert img.shape[0] > 100 and img.shape[1] > 100
    assert len(np.unique(img.reshape(-1, 3), axis=0)) > 10   # more than a few colours
    assert img.std() > 5.0                                   # not a flat image
    return img


LAT = np.arange(40.0, 46.01, 0.5)     # 13 rows
LON = np.arange(0.0, 12.01, 0.5)      # 25 columns


def test_rain_levels_are_fixed_and_dry_is_white():
    cmap, norm = figures.rain_norm()
    assert figures.RAIN_LEVELS_MM == (0.1, 1.0, 5.0, 15.0, 30.0, 50.0)
    # each value falls into its band: [0, 0.1) dry, [0.1, 1), [1, 5), ..., [30, 50), >= 50 over
    bands = norm(np.array([0.0, 0.05, 0.1, 0.99, 1.0, 4.9, 5.0, 15.0, 29.9, 30.0, 49.9]))
    assert list(bands) == [0, 0, 1, 1, 2, 2, 3, 4, 4, 5, 5]
    assert cmap(norm(0.0))[:3] == (1.0, 1.0, 1.0)
    assert tuple(cmap(norm(np.array([80.0])))[0][:3]) == tuple(cmap.get_over()[:3])
    assert cmap(np.ma.masked_invalid([np.nan]))[0][:3] == pytest.approx((0.85, 0.85, 0.85))


def test_geo_axes_aspect_and_degree_labels():
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots()
    figures.geo_axes(ax, np.array([59.0, 61.0]), [("region 1", [59.0, 61.0, 10.0, 12.0])])
    assert ax.get_aspect() == pytest.approx(2.0, rel=1e-3)   # 1 / cos(60 degrees)
    assert figures._lon_label(-7.5) == "7.5°W" and figures._lon_label(12) == "12°E"
    assert figures._lat_label(45) == "45°N" and figures._lat_label(-3) == "3°S"
    assert len(ax.patches) == 1
    plt.close(fig)


def test_cell_size_and_base_rate():
    assert figures.cell_size_km(LAT) == pytest.approx(55.6, abs=0.1)   # 0.5 degree of latitude
    block = {"categorical": {"0.1": {"hits": 30, "misses": 10, "false_alarms": 5, "correct_negatives": 55},
                             "5": {"hits": 0, "misses": 0, "false_alarms": 0, "correct_negatives": 0}}}
    f0 = figures.observed_base_rate(block, [0.1, 5.0])
    assert f0[0] == pytest.approx(0.4) and np.isnan(f0[1])


def _fields(rng, n_cases, dry=False):
    shape = (n_cases, LAT.size, LON.size)
    truth = np.zeros(shape) if dry else rng.gamma(0.6, 6.0, shape)
    truth[:, :3, :4] = np.nan                                # unscored cells
    return truth


@pytest.mark.parametrize("dry", [False, True])
def test_case_and_map_figures_are_drawn(tmp_path, dry):
    rng = np.random.default_rng(0)
    cases = {"truth": _fields(rng, 2, dry), "exp1": _fields(rng, 2, dry), "exp2": _fields(rng, 2, dry)}
    figures.plot_cases(tmp_path / "cases.png", LAT, LON, ["2022-01-01 00UTC", "2022-01-02 12UTC"], cases)
    diffs = {k: v - cases["truth"] for k, v in cases.items() if k != "truth"}
    figures.plot_diverging(tmp_path / "diff.png", LAT, LON, ["a", "b"], diffs, "prediction - truth (mm / 12 h)")
    mae = {"exp1": np.abs(diffs["exp1"][0]), "exp2": np.abs(diffs["exp2"][0])}
    figures.plot_error_maps(tmp_path / "err.png", LAT, LON, mae, ("|err exp2| - |err exp1|", mae["exp2"] - mae["exp1"]))
    for name in ("cases.png", "diff.png", "err.png"):
        _not_blank(tmp_path / name)


def test_all_nan_fields_still_draw(tmp_path):
    nan = np.full((1, LAT.size, LON.size), np.nan)
    figures.plot_cases(tmp_path / "cases.png", LAT, LON, ["t"], {"truth": nan, "exp1": nan})
    figures.plot_error_maps(tmp_path / "err.png", LAT, LON, {"exp1": nan[0]}, None)
    _not_blank(tmp_path / "cases.png")
    _not_blank(tmp_path / "err.png")


def test_fss_in_km_with_useful_line(tmp_path):
    import matplotlib.pyplot as plt
    drawn = {}
    orig = figures._save

    def keep(fig, path):
        drawn["fig"] = fig
        fig.savefig(path, dpi=figures.DPI)

    figures._save = keep
    try:
        fss = {"exp1": np.array([[0.3, 0.5, 0.7], [np.nan, 0.1, 0.2]])}
        figures.plot_fss(tmp_path / "fss.png", [0.1, 15.0], [1, 3, 5], fss, {"exp1": "tab:blue"},
                         cell_km=50.0, base_rate=np.array([0.3, np.nan]))
    finally:
        figures._save = orig
    ax0, ax1 = drawn["fig"].axes
    x, _ = ax0.lines[0].get_data()
    assert list(x) == [50.0, 150.0, 250.0]
    useful = [ln for ln in ax0.lines if ln.get_label().startswith("useful")]
    assert len(useful) == 1 and useful[0].get_ydata()[0] == pytest.approx(0.65)
    assert ax0.get_xlabel() == "neighbourhood size (km)"
    assert not [ln for ln in ax1.lines if ln.get_label().startswith("useful")]   # f0 undefined: no line
    plt.close(drawn["fig"])
    _not_blank(tmp_path / "fss.png")
