"""U-NFT transition fitting: a differentiable ridge least-squares solve per sequence.

Latents of one sequence have shape (T, d_m, d_a), and a transition M of shape (d_a, d_a)
acts from the right, H_{t+1} = H_t @ M. The fitted M* minimises ||H0 @ M - H1||_F over
the consecutive pairs of the conditioning frames, and gradients flow through the solve
into the encoder.
"""

from __future__ import annotations

import torch

DEFAULT_RIDGE = 1e-6
"""Relative ridge: lambda = DEFAULT_RIDGE * (||H0||_F^2 + ||H1||_F^2) / (2 d_a)."""


def split_consecutive(latents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack the consecutive latent pairs of each sequence into H0 and H1.

    latents: (B, T_c, d_m, d_a) with T_c >= 2. Returns H0 = latents[:, :-1] and H1 =
    latents[:, 1:], each reshaped to (B, (T_c - 1) * d_m, d_a), so that row r of H0 maps
    to row r of H1.
    """
    if latents.dim() != 4:
        shape = tuple(latents.shape)
        raise ValueError(f"invalid latents shape {shape}: expected (B, T_c, d_m, d_a)")
    batch, num_frames, _, dim_a = latents.shape
    if num_frames < 2:
        raise ValueError(f"invalid conditioning frame count {num_frames}: need >= 2")
    h0 = latents[:, :-1].reshape(batch, -1, dim_a)
    h1 = latents[:, 1:].reshape(batch, -1, dim_a)
    return h0, h1


def ridge_strength(
    h0: torch.Tensor, h1: torch.Tensor, ridge: float, floor: float
) -> torch.Tensor:
    """Return the per-sequence Tikhonov strength lambda, shape (B, 1, 1), detached.

    lambda = ridge * (||H0||_F^2 + ||H1||_F^2) / (2 d_a) + floor. The relative part
    makes the regularisation invariant to the latent scale, which the encoder is free to
    change. The H1 term keeps lambda positive when H0 is all zero but H1 is not, and the
    absolute floor covers all-zero latents. lambda is detached so that it stays a
    numerical safeguard and not a term the encoder can optimise.
    """
    dim_a = h0.shape[-1]
    energy = h0.detach().square().sum(dim=(-2, -1))
    energy = energy + h1.detach().square().sum(dim=(-2, -1))
    return (ridge * energy / (2 * dim_a) + floor)[:, None, None]


def fit_transition_from_pairs(
    h0: torch.Tensor,
    h1: torch.Tensor,
    ridge: float = DEFAULT_RIDGE,
    floor: float = 1e-12,
) -> torch.Tensor:
    """Solve min_M ||H0 @ M - H1||_F^2 + lambda ||M||_F^2 for each batch element.

    h0, h1: (B, R, d_a) with matching rows. Returns M of shape (B, d_a, d_a), acting
    from the right, as (H0^T H0 + lambda I)^{-1} H0^T H1 with lambda from
    `ridge_strength`. Rank-deficient H0 (all zeros, duplicated columns, fewer rows than
    d_a) therefore gives finite values and finite gradients. With ridge=0 and floor=0
    this is the authors' unregularised normal-equation solve, which raises
    torch.linalg.LinAlgError for an exactly singular H0^T H0.
    """
    if h0.shape != h1.shape:
        raise ValueError(f"shape mismatch: H0 {tuple(h0.shape)}, H1 {tuple(h1.shape)}")
    gram = h0.transpose(-2, -1) @ h0
    cross = h0.transpose(-2, -1) @ h1
    strength = ridge_strength(h0, h1, ridge, floor)
    identity = torch.eye(h0.shape[-1], dtype=h0.dtype, device=h0.device)
    return torch.linalg.solve(gram + strength * identity, cross)


def fit_transition(
    latents: torch.Tensor, ridge: float = DEFAULT_RIDGE, floor: float = 1e-12
) -> torch.Tensor:
    """Fit the U-NFT transition M* (B, d_a, d_a) from latents (B, T_c, d_m, d_a).

    M* acts from the right (H_{t+1} ~ H_t @ M*) and is fitted jointly on all T_c - 1
    consecutive pairs. With the default relative ridge of 1e-6 the bias on
    well-conditioned latents is about 1e-6 relative. When H0 and H1 carry similar
    energy, the condition number of H0^T H0 + lambda I is at most about d_a / ridge.
    """
    h0, h1 = split_consecutive(latents)
    return fit_transition_from_pairs(h0, h1, ridge=ridge, floor=floor)


def rollout(
    latent: torch.Tensor, transition: torch.Tensor, num_steps: int
) -> torch.Tensor:
    """Return H @ M^k for k = 1..num_steps, shape (B, num_steps, d_m, d_a).

    latent: (B, d_m, d_a), usually the last conditioning latent H_{T_c - 1}. transition:
    (B, d_a, d_a), acting from the right. The powers come from repeated multiplication
    of the latent, so M^k is never formed.
    """
    if num_steps < 0:
        raise ValueError(f"invalid num_steps {num_steps}: must be >= 0")
    steps = []
    current = latent
    for _ in range(num_steps):
        current = current @ transition
        steps.append(current)
    if not steps:
        return latent.new_zeros(latent.shape[0], 0, *latent.shape[1:])
    return torch.stack(steps, dim=1)


def fit_residual(latents: torch.Tensor, transition: torch.Tensor) -> torch.Tensor:
    """Return sum ||H0 @ M - H1||^2 over the conditioning pairs, shape (B,)."""
    h0, h1 = split_consecutive(latents)
    return (h0 @ transition - h1).square().sum(dim=(-2, -1))


def orthogonality_defect(transition: torch.Tensor) -> torch.Tensor:
    """Return ||I - M M^T||_F^2 per transition, shape (B,), zero for orthogonal M."""
    dim = transition.shape[-1]
    identity = torch.eye(dim, dtype=transition.dtype, device=transition.device)
    product = transition @ transition.transpose(-2, -1)
    return (identity - product).square().sum(dim=(-2, -1))
