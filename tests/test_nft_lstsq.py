import pytest
import torch

from stages.nft.lstsq import (
    fit_residual,
    fit_transition,
    orthogonality_defect,
    rollout,
    split_consecutive,
)

SCALE = 1.1


def sequence_from_transition(batch=4, frames=3, dim_m=6, dim_a=5, seed=0):
    """Return latents H_t = H_0 @ M^t (B, T, d_m, d_a) and M = 1.1 * orthogonal."""
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(batch, dim_a, dim_a, generator=generator, dtype=torch.float64)
    transition = SCALE * torch.linalg.qr(noise)[0]
    current = torch.randn(batch, dim_m, dim_a, generator=generator, dtype=torch.float64)
    steps = [current]
    for _ in range(frames - 1):
        current = current @ transition
        steps.append(current)
    return torch.stack(steps, dim=1), transition


def rank_deficient_latents(name):
    generator = torch.Generator().manual_seed(1)
    if name == "all_zero":
        return torch.zeros(3, 2, 4, 5)
    if name == "zero_h0":
        latents = torch.randn(3, 2, 4, 5, generator=generator)
        latents[:, 0] = 0
        return latents
    if name == "duplicated_columns":
        latents = torch.randn(3, 3, 4, 5, generator=generator)
        latents[..., 4] = latents[..., 0]
        return latents
    # Fewer rows than d_a: 2 rows from one pair of frames, 5 columns.
    return torch.randn(3, 2, 2, 5, generator=generator)


def test_split_consecutive_stacks_pairs():
    latents = torch.arange(2 * 3 * 2 * 4, dtype=torch.float64).reshape(2, 3, 2, 4)
    h0, h1 = split_consecutive(latents)
    assert h0.shape == (2, 4, 4)
    assert torch.equal(h0[:, 2:], latents[:, 1])
    assert torch.equal(h1[:, :2], latents[:, 1])


def test_lstsq_unregularised_recovers_action():
    latents, transition = sequence_from_transition()
    fitted = fit_transition(latents, ridge=0.0, floor=0.0)
    assert torch.allclose(fitted, transition, atol=1e-10)


def test_lstsq_default_ridge_bias_small():
    latents, transition = sequence_from_transition()
    fitted = fit_transition(latents)
    assert torch.allclose(fitted, transition, atol=1e-4)
    assert fit_residual(latents, fitted).max() < 1e-6


def test_lstsq_float32_recovers_action():
    latents, transition = sequence_from_transition(frames=4)
    fitted = fit_transition(latents.float())
    assert torch.allclose(fitted, transition.float(), atol=1e-3)


def test_lstsq_rejects_single_frame():
    with pytest.raises(ValueError, match="need >= 2"):
        fit_transition(torch.zeros(2, 1, 3, 3))


def test_lstsq_unregularised_rejects_zero_latents():
    latents = torch.zeros(2, 2, 4, 5, dtype=torch.float64)
    with pytest.raises(torch.linalg.LinAlgError):
        fit_transition(latents, ridge=0.0, floor=0.0)


@pytest.mark.parametrize(
    "name", ["all_zero", "zero_h0", "duplicated_columns", "fewer_rows_than_d_a"]
)
def test_lstsq_rank_deficient_stays_finite(name):
    latents = rank_deficient_latents(name).requires_grad_(True)
    transition = fit_transition(latents)
    predicted = rollout(latents[:, -1], transition, 3)
    loss = predicted.square().sum() + transition.square().sum()
    loss.backward()
    assert torch.isfinite(transition).all()
    assert torch.isfinite(predicted).all()
    assert torch.isfinite(latents.grad).all()


def test_lstsq_gradient_matches_finite_differences():
    latents, _ = sequence_from_transition(batch=2, frames=3, dim_m=4, dim_a=3)
    latents = latents.clone().requires_grad_(True)

    def summed_transition(values):
        return fit_transition(values).sum(dim=(-2, -1))

    assert torch.autograd.gradcheck(summed_transition, (latents,))


def test_rollout_applies_powers_from_right():
    latents, transition = sequence_from_transition(frames=5)
    predicted = rollout(latents[:, 1], transition, 3)
    assert predicted.shape == (4, 3, 6, 5)
    assert torch.allclose(predicted, latents[:, 2:5], atol=1e-12)


def test_rollout_zero_steps_is_empty():
    transition = torch.eye(4).expand(2, 4, 4)
    assert rollout(torch.zeros(2, 3, 4), transition, 0).shape == (2, 0, 3, 4)


def test_orthogonality_defect_zero_for_rotation():
    _, transition = sequence_from_transition()
    defect = orthogonality_defect(transition / SCALE)
    assert torch.allclose(defect, torch.zeros(4, dtype=torch.float64))
    assert (orthogonality_defect(transition) > 0.1).all()
