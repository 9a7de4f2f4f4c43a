"""Time-warped shifted 1D signals of E1 (random frequencies) and E2 (fixed frequencies).

Frame t of a sequence is x_t[j] = sum_k c_k sin(2 pi f_k ((u_j - t theta / 2 pi) mod 1))
with u_j = s_j^p on the grid s_j = j / N, warp power p = 3 and N = 128. A shift theta
acts as a translation in the warped coordinate u, so the group acts linearly on the
Fourier coefficients in u but not on x.

The generators draw from NumPy's legacy global RNG (np.random.seed and the calls that
follow it) in this order: frequencies (E1 only), coefficients, shifts, then noise. This
order reproduces the authors' data: E1 freqseed 1 draws [37, 43, 12, 8, 63, 9, 11], and
the E2 test set (seed 1234) gives a DFT-16 baseline error of 8.0956.
`make_e1_signals` always reseeds the global RNG, and `make_e2_signals` does so when a
seed is given.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import numpy as np

NUM_POINTS = 128
WARP_POWER = 3
E1_MAX_FREQUENCY = math.ceil(NUM_POINTS / (5 * 0.4))
"""Exclusive upper bound (64) of the E1 frequency draw, computed as the authors do."""
E2_FREQUENCY_POOL = (3, 5, 11, 4, 7, 9, 0, 2, 6, 8, 10, 1)
"""E2 takes the first num_frequencies entries, {3, 5, 11, 4, 7} for the default 5."""
E2_TEST_SEED = 1234


@dataclass(frozen=True)
class ShiftedSignals:
    """A set of shifted-signal sequences and the labels that generated them."""

    sequences: np.ndarray
    """(n, T, N) float64 frames."""
    shifts: np.ndarray
    """(n,) shift theta in radians, applied t times to frame t."""
    coefficients: np.ndarray
    """(n, K) coefficient c_k of each frequency."""
    frequencies: list[int]
    """The K frequencies f_k shared by all sequences."""


def warped_grid(num_points: int = NUM_POINTS, power: int = WARP_POWER) -> np.ndarray:
    """Return u_j = (j / N)^power for j = 0..N-1, shape (N,)."""
    return (np.arange(num_points) / num_points) ** power


def render_sequences(
    coefficients: np.ndarray,
    frequencies,
    shifts: np.ndarray,
    num_frames: int,
    num_points: int = NUM_POINTS,
    power: int = WARP_POWER,
) -> np.ndarray:
    """Evaluate x_t for t = 0..T-1, returning (n, T, N) float64 sequences.

    coefficients: (n, K), shifts: (n,). The phase u - t theta / 2 pi is wrapped by
    adding 1 where it is negative, as the authors do, which leaves it negative for
    t theta > 2 pi. Every f_k is an integer, so sin(2 pi f_k phase) has period 1 and the
    values equal those of a full mod 1.
    """
    grid = warped_grid(num_points, power)
    steps = np.arange(num_frames)
    offsets = steps[None, :, None] * shifts[:, None, None] / (2 * np.pi)
    phase = grid[None, None, :] - offsets
    phase = np.where(phase < 0, phase + 1, phase)
    sequences = np.zeros(phase.shape)
    for index, frequency in enumerate(frequencies):
        wave = np.sin(2 * np.pi * frequency * phase)
        sequences += coefficients[:, index, None, None] * wave
    return sequences


def draw_block_shifts(
    num_data: int, block_size: int, max_shift: float = np.pi
) -> np.ndarray:
    """Draw theta ~ U[0, max_shift) once per block of consecutive indices, (num_data,).

    Uses ceil(num_data / block_size) draws of the global NumPy RNG, so a last partial
    block gets its own draw.
    """
    num_blocks = -(-num_data // block_size)
    block_shifts = np.random.uniform(0, max_shift, size=num_blocks)
    return np.repeat(block_shifts, block_size)[:num_data]


def draw_unit_coefficients(num_data: int, num_frequencies: int) -> np.ndarray:
    """Draw c ~ N(0, I_K) per sample from the global RNG, scaled to unit norm (n, K)."""
    coefficients = np.random.randn(num_data, num_frequencies)
    return coefficients / np.linalg.norm(coefficients, axis=1, keepdims=True)


def add_observation_noise(sequences: np.ndarray, noise_std: float) -> np.ndarray:
    """Return sequences + noise_std * N(0, 1) from the global NumPy RNG, same shape."""
    if noise_std == 0:
        return sequences
    return sequences + noise_std * np.random.randn(*sequences.shape)


def e1_frequencies(
    freqseed: int,
    num_strong: int = 5,
    num_weak: int = 2,
    max_frequency: int = E1_MAX_FREQUENCY,
) -> list[int]:
    """Seed the global NumPy RNG with freqseed and draw the E1 frequencies in [0, F).

    Draws num_strong + num_weak integers, and the last num_weak are the weak ones. The
    draw may repeat a value.
    """
    np.random.seed(freqseed)
    draws = np.random.randint(0, max_frequency, num_strong + num_weak)
    return [int(frequency) for frequency in draws]


def make_e1_signals(
    num_data: int = 30000,
    num_frames: int = 3,
    freqseed: int = 1,
    test_seed: int | None = None,
    num_strong: int = 5,
    num_weak: int = 2,
    weak_strength: float = 0.2,
    block_size: int = 20,
    max_shift: float = np.pi,
) -> ShiftedSignals:
    """Generate the noise-free E1 data (`Shifted_FreqFun_nl`): 7 random frequencies.

    The RNG is seeded with freqseed for the frequency draw, so training data depend on
    freqseed alone. test_seed (1, 2 or 3 for the three evaluation repeats) reseeds NumPy
    after the frequency draw, which gives new coefficients and shifts with the same
    frequencies. Coefficients have unit norm before the num_weak weak ones are scaled by
    weak_strength / num_weak = 0.1. Each block of block_size consecutive indices shares
    one theta ~ U[0, max_shift).
    """
    frequencies = e1_frequencies(freqseed, num_strong, num_weak)
    if test_seed is not None:
        np.random.seed(test_seed)
    coefficients = draw_unit_coefficients(num_data, num_strong + num_weak)
    if num_weak:
        coefficients[:, num_strong:] *= weak_strength / num_weak
    shifts = draw_block_shifts(num_data, block_size, max_shift)
    sequences = render_sequences(coefficients, frequencies, shifts, num_frames)
    return ShiftedSignals(sequences, shifts, coefficients, frequencies)


def make_e2_signals(
    num_data: int = 5000,
    num_frames: int = 6,
    seed: int | None = None,
    noise_std: float = 0.0,
    num_frequencies: int = 5,
    block_size: int = 16,
    max_shift: float = np.pi,
) -> ShiftedSignals:
    """Generate the E2 data (`Shifted_FixedFreqFun_nl`), frequencies {3, 5, 11, 4, 7}.

    seed, if given, seeds Python's `random` and the global NumPy RNG first, as the
    authors' scripts do before building a dataset. Each block of block_size consecutive
    indices shares one theta. noise_std > 0 adds one draw of Gaussian noise to every
    point and frame after the shifts are drawn.

    NOTE: the authors redraw the noise at every item access, so it is fresh each epoch.
    A training loader that wants this should keep noise_std = 0 here and call
    `add_observation_noise` per batch.
    """
    if seed is not None:
        random.seed(seed)
        np.random.seed(seed)
    frequencies = list(E2_FREQUENCY_POOL[:num_frequencies])
    coefficients = draw_unit_coefficients(num_data, num_frequencies)
    shifts = draw_block_shifts(num_data, block_size, max_shift)
    sequences = render_sequences(coefficients, frequencies, shifts, num_frames)
    sequences = add_observation_noise(sequences, noise_std)
    return ShiftedSignals(sequences, shifts, coefficients, frequencies)


def make_e2_test_signals(num_data: int = 5000, num_frames: int = 5) -> ShiftedSignals:
    """Generate the noise-free E2 test set: seed 1234, 5000 sequences of 5 frames."""
    return make_e2_signals(num_data, num_frames, seed=E2_TEST_SEED, noise_std=0.0)
