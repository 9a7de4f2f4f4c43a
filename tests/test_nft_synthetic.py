import numpy as np
import pytest

from stages.synthetic import (
    e1_frequencies,
    make_e1_signals,
    make_e2_signals,
    render_sequences,
    warped_grid,
)


@pytest.mark.parametrize(
    "freqseed, expected",
    [
        (1, [37, 43, 12, 8, 63, 9, 11]),
        (2, [40, 15, 45, 8, 22, 43, 18]),
        (3, [42, 24, 57, 3, 56, 8, 0]),
    ],
)
def test_e1_frequency_lists(freqseed, expected):
    assert e1_frequencies(freqseed) == expected


def test_e1_shapes_and_weak_scaling():
    data = make_e1_signals(num_data=100, num_frames=3, freqseed=1)
    assert data.sequences.shape == (100, 3, 128)
    assert data.coefficients.shape == (100, 7)
    norms = np.linalg.norm(data.coefficients[:, :5], axis=1) ** 2
    weak = np.linalg.norm(data.coefficients[:, 5:], axis=1) ** 2
    assert np.allclose(norms + weak / 0.1**2, 1.0)


def test_e1_shifts_shared_per_block_of_twenty():
    shifts = make_e1_signals(num_data=100, num_frames=2).shifts
    assert np.all(shifts[:20] == shifts[0])
    assert shifts[20] != shifts[19]
    assert np.all((shifts >= 0) & (shifts < np.pi))


def test_e1_test_seed_changes_coefficients_not_frequencies():
    train = make_e1_signals(num_data=50, num_frames=2, freqseed=2)
    test = make_e1_signals(num_data=50, num_frames=2, freqseed=2, test_seed=1)
    assert test.frequencies == train.frequencies
    assert not np.allclose(test.coefficients, train.coefficients)


def test_generator_is_deterministic():
    first = make_e2_signals(num_data=40, num_frames=3, seed=5, noise_std=0.1)
    second = make_e2_signals(num_data=40, num_frames=3, seed=5, noise_std=0.1)
    assert np.array_equal(first.sequences, second.sequences)


def test_e2_shifts_shared_per_block_of_sixteen():
    shifts = make_e2_signals(num_data=40, num_frames=2, seed=0).shifts
    assert np.all(shifts[:16] == shifts[0])
    assert np.all(shifts[32:] == shifts[32])
    assert shifts[16] != shifts[15]


def test_e2_noise_drawn_after_shifts():
    clean = make_e2_signals(num_data=32, num_frames=2, seed=3)
    noisy = make_e2_signals(num_data=32, num_frames=2, seed=3, noise_std=0.05)
    assert np.array_equal(clean.shifts, noisy.shifts)
    residual = noisy.sequences - clean.sequences
    assert 0.04 < residual.std() < 0.06


def test_shift_is_translation_in_warped_coordinate():
    coefficients = np.array([[0.6, 0.8]])
    theta = 0.9
    sequences = render_sequences(coefficients, [3, 5], np.array([theta]), num_frames=3)
    grid = warped_grid()
    for step in range(3):
        shifted = grid - step * theta / (2 * np.pi)
        expected = 0.6 * np.sin(6 * np.pi * shifted)
        expected += 0.8 * np.sin(10 * np.pi * shifted)
        assert np.allclose(sequences[0, step], expected, atol=1e-12), step


def test_long_shift_matches_full_modulo():
    coefficients = np.array([[1.0]])
    theta = 3.0
    sequences = render_sequences(coefficients, [4], np.array([theta]), num_frames=20)
    phase = np.mod(warped_grid() - 19 * theta / (2 * np.pi), 1.0)
    assert np.allclose(sequences[0, 19], np.sin(8 * np.pi * phase), atol=1e-9)
