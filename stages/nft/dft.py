"""DFT baseline of the E2 compression experiment, in NumPy along the last axis (N).

The authors' test script keeps FFT bins 0..K-1 of a frame and reconstructs
2 Re(IFFT(.)). That "2 x one-sided" reconstruction doubles the DC term, and with K = 16
its mean error on the E2 test set is 8.0956. The exact real projection onto frequencies
0..K-1 gives 5.877.
"""

from __future__ import annotations

import numpy as np

DFT_NUM_BINS = 16
"""Bins kept in E2: 16 complex coefficients, about 31 real numbers against d_a = 32."""


def one_sided_reconstruction(
    signals: np.ndarray, num_bins: int = DFT_NUM_BINS
) -> np.ndarray:
    """Return 2 Re(IFFT(FFT(x) with only bins 0..K-1 kept)), shape (..., N).

    This is the authors' baseline. For 1 <= k < K it restores bins k and N - k of a real
    signal exactly, but it doubles bin 0 (the mean), which adds N * mean(x)^2 to the
    squared error of `band_limited_projection`.
    """
    spectrum = np.fft.fft(signals, axis=-1)
    spectrum[..., num_bins:] = 0
    return 2 * np.real(np.fft.ifft(spectrum, axis=-1))


def band_limited_projection(
    signals: np.ndarray, num_bins: int = DFT_NUM_BINS
) -> np.ndarray:
    """Return the orthogonal projection of real x onto frequencies 0..K-1, (..., N).

    Bins 0..K-1 and their conjugate bins N-K+1..N-1 are kept, which gives the best
    approximation of x in that real subspace. Requires 2K - 1 <= N.
    """
    length = signals.shape[-1]
    if 2 * num_bins - 1 > length:
        raise ValueError(
            f"invalid num_bins {num_bins}: need 2 * num_bins - 1 <= N = {length}"
        )
    spectrum = np.fft.fft(signals, axis=-1)
    spectrum[..., num_bins : length - num_bins + 1] = 0
    return np.real(np.fft.ifft(spectrum, axis=-1))


def sum_squared_error(signals: np.ndarray, reconstructions: np.ndarray) -> np.ndarray:
    """Return sum_j (x_j - y_j)^2 over the last axis, shape (...,)."""
    return np.square(signals - reconstructions).sum(axis=-1)


def dft_baseline_error(
    sequences: np.ndarray,
    num_bins: int = DFT_NUM_BINS,
    frame: int = 0,
    exact: bool = False,
) -> float:
    """Return the mean over test functions of the DFT reconstruction SSE of one frame.

    sequences: (n, T, N) noise-free test sequences, or (n, N) single frames. The
    authors' procedure uses frame 0 and `one_sided_reconstruction` (exact=False), and
    exact=True uses `band_limited_projection` instead.
    """
    frames = sequences[:, frame] if sequences.ndim == 3 else sequences
    reconstruct = band_limited_projection if exact else one_sided_reconstruction
    return float(sum_squared_error(frames, reconstruct(frames, num_bins)).mean())


def mean_signal_energy(sequences: np.ndarray, frame: int = 0) -> float:
    """Return mean_i sum_j x_ij^2 of one frame, the SSE of predicting all zeros."""
    frames = sequences[:, frame] if sequences.ndim == 3 else sequences
    return float(np.square(frames).sum(axis=-1).mean())
