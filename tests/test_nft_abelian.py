import math

import pytest
import torch

from stages.nft.abelian import (
    abelian_dimension,
    abelian_transition,
    block_phases,
    complex_coordinates,
    fit_abelian_coefficients,
    fit_abelian_transition,
)
from stages.nft.lstsq import rollout


def complex_scaled_latents(coefficients, frames=3, dim_m=5, seed=0):
    """Return latents (B, T, d_m, 2F) whose complex coordinates gain c_f per step."""
    generator = torch.Generator().manual_seed(seed)
    batch, num_blocks = coefficients.shape
    shape = (batch, dim_m, num_blocks)
    real = torch.randn(shape, generator=generator, dtype=torch.float64)
    imag = torch.randn(shape, generator=generator, dtype=torch.float64)
    start = torch.complex(real, imag)
    steps = [start * coefficients[:, None, :] ** t for t in range(frames)]
    complex_latents = torch.stack(steps, dim=1)
    paired = torch.stack([complex_latents.real, complex_latents.imag], dim=-1)
    return paired.flatten(-2)


@pytest.fixture
def planted():
    angles = torch.tensor([[0.3, 1.2, -2.0], [2.5, 0.1, 1.0]], dtype=torch.float64)
    moduli = torch.tensor([[1.0, 0.9, 1.1], [1.0, 1.0, 0.8]], dtype=torch.float64)
    return torch.polar(moduli, angles)


def test_complex_coordinates_pair_columns():
    latents = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    expected = torch.tensor([[1 + 2j, 3 + 4j]], dtype=torch.complex64)
    assert torch.equal(complex_coordinates(latents), expected)


def test_abelian_fit_recovers_coefficients(planted):
    latents = complex_scaled_latents(planted)
    fitted = fit_abelian_coefficients(latents, eps=0.0)
    assert torch.allclose(fitted, planted, atol=1e-12)
    assert torch.allclose(block_phases(fitted), planted.angle(), atol=1e-12)


def test_corrected_transition_reproduces_next_frame(planted):
    latents = complex_scaled_latents(planted)
    transition = fit_abelian_transition(latents)
    assert torch.allclose(latents[:, 0] @ transition, latents[:, 1], atol=1e-10)
    predicted = rollout(latents[:, 0], transition, 2)
    assert torch.allclose(predicted, latents[:, 1:], atol=1e-10)


def test_code_faithful_transition_multiplies_by_conjugate(planted):
    latents = complex_scaled_latents(planted)
    transition = fit_abelian_transition(latents, code_faithful=True)
    stepped = latents[:, 0] @ transition
    expected = complex_coordinates(latents[:, 0]) * planted.conj()[:, None, :]
    assert not torch.allclose(stepped, latents[:, 1], atol=1e-3)
    assert torch.allclose(complex_coordinates(stepped), expected, atol=1e-10)


def test_code_faithful_is_transpose_of_corrected(planted):
    corrected = abelian_transition(planted)
    faithful = abelian_transition(planted, code_faithful=True)
    assert torch.equal(faithful, corrected.transpose(-2, -1))


def test_abelian_block_layout():
    transition = abelian_transition(torch.tensor([[2.0 + 3.0j]]))
    assert torch.equal(transition[0], torch.tensor([[2.0, 3.0], [-3.0, 2.0]]))


def test_abelian_rotation_direction():
    theta = 0.7
    coefficient = torch.polar(torch.tensor([[1.0]]), torch.tensor([[theta]]))
    rotated = torch.tensor([[1.0, 0.0]]) @ abelian_transition(coefficient)[0]
    expected = torch.tensor([[math.cos(theta), math.sin(theta)]])
    assert torch.allclose(rotated, expected)


def test_abelian_zero_latents_finite_gradients():
    latents = torch.zeros(2, 3, 4, 6, requires_grad=True)
    transition = fit_abelian_transition(latents)
    (rollout(latents[:, -1], transition, 2).sum() + transition.sum()).backward()
    assert torch.isfinite(transition).all()
    assert torch.isfinite(latents.grad).all()


def test_abelian_rejects_odd_dimension():
    with pytest.raises(ValueError, match="even d_a"):
        complex_coordinates(torch.zeros(2, 5))


def test_abelian_dimension_is_twice_blocks():
    assert abelian_dimension(16) == 32
