import math

import numpy as np
import pytest
import torch
from scipy.linalg import block_diag

from stages.nft.representations import quaternion_to_matrix, rotation_matrix
from stages.nft.spectrum import (
    block_frequencies,
    character_spectrum,
    fit_change_of_basis,
    frequency_scores,
    ground_truth_spectrum,
    laplacian_trace_norm,
    simultaneous_block_diagonalization,
)

PLANTED = [37, 43, 12, 8, 63]
DOUBLE = torch.float64


def planted_rotations(frequencies, count, seed=0):
    """Return blockdiag_j R(k_j theta_i), shape (n, 2J, 2J), and theta ~ U[0, pi)."""
    generator = torch.Generator().manual_seed(seed)
    angles = torch.rand(count, generator=generator, dtype=DOUBLE) * math.pi
    dim = 2 * len(frequencies)
    transitions = torch.zeros(count, dim, dim, dtype=DOUBLE)
    for index, frequency in enumerate(frequencies):
        block = slice(2 * index, 2 * index + 2)
        transitions[:, block, block] = rotation_matrix(frequency * angles)
    return transitions, angles


def mixed_block_matrices(count=40, seed=0):
    """Return blocks [1], R(2 theta), R(5 theta) and a 3x3 rotation, mixed by Q."""
    generator = torch.Generator().manual_seed(seed)
    angles = torch.rand(count, generator=generator, dtype=DOUBLE) * math.pi
    noise = torch.randn(count, 4, generator=generator, dtype=DOUBLE)
    spatial = quaternion_to_matrix(noise).numpy()
    second = rotation_matrix(2 * angles).numpy()
    fifth = rotation_matrix(5 * angles).numpy()
    trivial = np.ones((1, 1))
    planted = np.stack(
        [block_diag(trivial, second[i], fifth[i], spatial[i]) for i in range(count)]
    )
    basis = np.linalg.qr(np.random.default_rng(seed).standard_normal((8, 8)))[0]
    return basis.T @ planted @ basis, planted, angles


@pytest.fixture(scope="module")
def spectrum():
    transitions, angles = planted_rotations(PLANTED, count=30000)
    generator = torch.Generator().manual_seed(1)
    noise = torch.randn(10, 10, generator=generator, dtype=DOUBLE)
    basis = torch.linalg.qr(noise)[0]
    mixed = basis.T @ transitions @ basis
    return character_spectrum(mixed, angles, max_frequency=64)


def test_character_peaks_at_planted_frequencies(spectrum):
    for frequency in PLANTED:
        assert abs(float(spectrum[frequency]) - 2.0) < 0.1, frequency


def test_character_near_zero_elsewhere(spectrum):
    others = [f for f in range(65) if f not in PLANTED]
    assert float(spectrum[others].abs().max()) < 0.15


def test_character_trivial_block_peaks_at_zero():
    generator = torch.Generator().manual_seed(2)
    angles = torch.rand(2000, generator=generator, dtype=DOUBLE) * math.pi
    ones = torch.ones(2000, 1, 1, dtype=DOUBLE)
    spectrum = character_spectrum(ones, angles, max_frequency=8)
    assert abs(float(spectrum[0]) - 2.0) < 1e-12


def test_ground_truth_overlay_peaks():
    overlay = ground_truth_spectrum([3, 10], max_frequency=12)
    assert overlay.shape == (13,)
    assert overlay[3] == pytest.approx(2.0, abs=1e-9)
    assert overlay[10] == pytest.approx(2.0, abs=1e-9)
    assert overlay[6] < 1e-9


def test_commutant_recovers_block_sizes():
    mixed, _, _ = mixed_block_matrices()
    basis, sizes = simultaneous_block_diagonalization(mixed)
    assert sorted(sizes) == [1, 2, 2, 3]
    assert np.allclose(basis.T @ basis, np.eye(8), atol=1e-10)


def test_commutant_output_block_diagonal():
    mixed, _, _ = mixed_block_matrices(seed=3)
    basis, sizes = simultaneous_block_diagonalization(mixed)
    transformed = basis.T @ mixed @ basis
    mask = block_diag(*[np.ones((size, size)) for size in sizes]).astype(bool)
    assert np.abs(transformed[:, ~mask]).max() < 1e-8


def test_commutant_keeps_irreducible_block():
    _, planted, _ = mixed_block_matrices()
    _, sizes = simultaneous_block_diagonalization(planted[:, 5:, 5:])
    assert sizes == [3]


def test_block_frequencies_after_diagonalisation():
    mixed, _, angles = mixed_block_matrices(seed=4)
    basis, sizes = simultaneous_block_diagonalization(mixed)
    transformed = torch.from_numpy(basis.T @ mixed @ basis)
    frequencies, scores = block_frequencies(transformed, angles, sizes, 10)
    rotation_blocks = [index for index, size in enumerate(sizes) if size < 3]
    assert sorted(frequencies[index] for index in rotation_blocks) == [0, 2, 5]
    assert min(scores[index] for index in rotation_blocks) > 0.999


def test_frequency_scores_single_block():
    transitions, angles = planted_rotations([7], count=500, seed=5)
    scores = frequency_scores(transitions, angles, max_frequency=12)
    assert int(scores.argmax()) == 7
    assert float(scores[7]) == pytest.approx(1.0, abs=1e-9)


def test_block_frequencies_rejects_wrong_sizes():
    with pytest.raises(ValueError, match="do not sum"):
        block_frequencies(torch.eye(4)[None], torch.zeros(1), [1, 2])


def test_laplacian_loss_lower_when_block_diagonal():
    mixed, planted, _ = mixed_block_matrices()
    planted_loss = laplacian_trace_norm(torch.from_numpy(planted))
    mixed_loss = laplacian_trace_norm(torch.from_numpy(mixed))
    assert planted_loss < mixed_loss - 1.0


def test_change_of_basis_training_lowers_loss():
    mixed, _, _ = mixed_block_matrices()
    matrices = torch.from_numpy(mixed)
    module, history = fit_change_of_basis(matrices, num_epochs=10, seed=0)
    assert history[-1] < history[0]
    assert history[-1] < float(laplacian_trace_norm(matrices))
    assert module.basis.shape == (8, 8)
