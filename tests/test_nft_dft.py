import numpy as np
import pytest

from stages.nft.dft import (
    band_limited_projection,
    dft_baseline_error,
    mean_signal_energy,
    one_sided_reconstruction,
)
from stages.synthetic import make_e2_test_signals


@pytest.fixture(scope="module")
def e2_test():
    return make_e2_test_signals()


def test_e2_test_set_shape(e2_test):
    assert e2_test.sequences.shape == (5000, 5, 128)
    assert e2_test.frequencies == [3, 5, 11, 4, 7]


def test_dft16_baseline_matches_authors_value(e2_test):
    assert round(dft_baseline_error(e2_test.sequences), 4) == 8.0956


def test_exact_projection_error(e2_test):
    assert round(dft_baseline_error(e2_test.sequences, exact=True), 3) == 5.877


def test_signal_energy(e2_test):
    assert round(mean_signal_energy(e2_test.sequences), 2) == 51.80


@pytest.mark.parametrize("num_bins, expected", [(8, 20.93), (32, 2.525), (64, 2.219)])
def test_dft_baseline_other_bin_counts(e2_test, num_bins, expected):
    error = dft_baseline_error(e2_test.sequences, num_bins)
    assert error == pytest.approx(expected, abs=5e-3)


def test_one_sided_doubles_only_mean(e2_test):
    frames = e2_test.sequences[:, 0]
    difference = one_sided_reconstruction(frames) - band_limited_projection(frames)
    assert np.allclose(difference, frames.mean(axis=-1, keepdims=True), atol=1e-12)


def test_projection_exact_on_band():
    grid = np.arange(128) / 128
    in_band = np.cos(2 * np.pi * 3 * grid) + 0.5 * np.sin(2 * np.pi * 15 * grid) + 0.2
    assert np.allclose(band_limited_projection(in_band), in_band, atol=1e-12)


def test_projection_removes_out_of_band():
    grid = np.arange(128) / 128
    out_of_band = np.sin(2 * np.pi * 16 * grid)
    assert np.allclose(band_limited_projection(out_of_band), 0.0, atol=1e-12)


def test_projection_rejects_too_many_bins():
    with pytest.raises(ValueError, match="num_bins"):
        band_limited_projection(np.zeros(128), 65)
