"""Normalisation: inverse round trip (hypothesis), statistics by pieces, errors naming the channel."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from pipeline.common.errors import NormalisationError
from pipeline.dataset.normalise import Moments, NormStats, finalise, invert, moments_of, normalise

CHANNELS = ["temperature_850hPa", "u_850hPa", "geopotential_height_500hPa", "rain"]


@settings(max_examples=60, deadline=None)
@given(
    data=arrays(np.float64, (3, 4, 2, 2), elements=st.floats(0.0, 1e4, allow_nan=False)),
    mean=arrays(np.float64, 4, elements=st.floats(-1e3, 1e4)),
    std=arrays(np.float64, 4, elements=st.floats(1e-2, 1e3)),
    shift=st.floats(-80.0, 80.0),
)
def test_normalise_then_invert_round_trips(data, mean, std, shift):
    x = data.copy()
    x[:, :3] += shift  # sounding channels may be negative; rain (last) stays >= 0
    stats = NormStats(CHANNELS, mean, std, np.full(4, 100))
    back = invert(normalise(x, stats), stats)
    np.testing.assert_allclose(back, x, rtol=1e-9, atol=1e-9 * (1 + np.abs(x).max()))


@settings(max_examples=30, deadline=None)
@given(arrays(np.float64, (7, 4, 3, 2), elements=st.floats(0.0, 500.0)), st.integers(1, 6))
def test_moments_by_pieces_equal_whole(x, cut):
    whole = moments_of(x, CHANNELS)
    pieces = moments_of(x[:cut], CHANNELS).merge(moments_of(x[cut:], CHANNELS))
    np.testing.assert_allclose(pieces.mean, whole.mean, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(pieces.m2, whole.m2, rtol=1e-8, atol=1e-8)
    t = x.copy()
    t[:, 3] = np.log1p(t[:, 3])
    np.testing.assert_allclose(whole.mean, t.mean(axis=(0, 2, 3)), rtol=1e-10, atol=1e-12)


def test_zero_variance_and_too_few_samples_name_the_channel():
    rng = np.random.default_rng(0)
    x = rng.gamma(1.0, 2.0, (20, 4, 3, 3))
    x[:, 1] = 7.25  # constant u
    with pytest.raises(NormalisationError, match="'u_850hPa'.*zero variance"):
        finalise(moments_of(x, CHANNELS), CHANNELS)
    x = rng.gamma(1.0, 2.0, (20, 4, 3, 3))
    x[:, 2] = np.nan
    x[0, 2, 0, :2] = [1.0, 2.0]
    with pytest.raises(NormalisationError, match="'geopotential_height_500hPa': only 2 valid"):
        finalise(moments_of(x, CHANNELS), CHANNELS, min_samples=10)
    x[:, 3] = -1.0
    with pytest.raises(NormalisationError, match="'rain'.*negative"):
        moments_of(x, CHANNELS)


def test_nan_stays_nan_and_empty_moments_merge():
    stats = NormStats(CHANNELS, np.zeros(4), np.ones(4), np.ones(4, int))
    x = np.full((1, 4, 1, 1), np.nan)
    assert np.isnan(normalise(x, stats)).all()
    m = moments_of(np.ones((2, 4, 1, 1)) * np.arange(4)[None, :, None, None], CHANNELS)
    merged = Moments.empty(4).merge(m)
    np.testing.assert_array_equal(merged.mean, m.mean)
