"""G-NFT for abelian groups: one complex scalar per 2x2 block, fitted by least squares.

The d_a = 2F latent columns form F complex coordinates h_f = H[..., 2f] + i H[...,
2f+1]. A transition multiplies each coordinate by a complex scalar c_f. As a real (d_a,
d_a) matrix it acts from the right on latents (B, d_m, d_a): H' = H @ M.
"""

from __future__ import annotations

import torch

from stages.nft.lstsq import split_consecutive


def abelian_dimension(num_blocks: int) -> int:
    """Return d_a = 2F of a G-NFT latent with F complex blocks."""
    if num_blocks < 1:
        raise ValueError(f"invalid num_blocks {num_blocks}: must be >= 1")
    return 2 * num_blocks


def complex_coordinates(latents: torch.Tensor) -> torch.Tensor:
    """Pair the columns of latents (..., 2F) into complex coordinates (..., F)."""
    if latents.shape[-1] % 2:
        dim_a = latents.shape[-1]
        raise ValueError(f"invalid d_a {dim_a}: abelian G-NFT needs an even d_a")
    return torch.complex(latents[..., 0::2], latents[..., 1::2])


def fit_abelian_coefficients(latents: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Fit c_f = sum h1 conj(h0) / (sum |h0|^2 + eps) per sequence and block.

    latents: (B, T_c, d_m, 2F) conditioning latents. Returns complex c of shape (B, F).
    The sums run over all (T_c - 1) * d_m rows of the consecutive pairs, and c_f
    minimises sum |h1 - c h0|^2 up to eps, which keeps value and gradient finite for an
    all-zero block. The authors add 1e-12 to each zero entry of |h0|^2 instead, which
    changes the denominator by at most (T_c - 1) * d_m * 1e-12.
    """
    h0, h1 = split_consecutive(latents)
    re0, im0 = h0[..., 0::2], h0[..., 1::2]
    re1, im1 = h1[..., 0::2], h1[..., 1::2]
    # h1 conj(h0) = (re1 re0 + im1 im0) + i (im1 re0 - re1 im0), in real arithmetic.
    numerator_re = (re1 * re0 + im1 * im0).sum(dim=-2)
    numerator_im = (im1 * re0 - re1 * im0).sum(dim=-2)
    denominator = (re0.square() + im0.square()).sum(dim=-2) + eps
    return torch.complex(numerator_re / denominator, numerator_im / denominator)


def abelian_transition(
    coefficients: torch.Tensor, code_faithful: bool = False
) -> torch.Tensor:
    """Build the real block-diagonal transition (..., 2F, 2F) from c of shape (..., F).

    The default (code_faithful=False) is the corrected orientation: block f is [[a, b],
    [-b, a]] for c_f = a + i b, so the right action H @ M multiplies every complex
    coordinate h_f by c_f, the model the coefficients were fitted for.
    code_faithful=True builds [[a, -b], [b, a]] as the authors' AbelMSP does, so H @ M
    multiplies by conj(c_f) and rolls a rotating latent out in the wrong direction. It
    exists to test whether reported G-NFT results depend on that bug.
    """
    real, imag = coefficients.real, coefficients.imag
    sign = -1.0 if code_faithful else 1.0
    num_blocks = coefficients.shape[-1]
    dim = 2 * num_blocks
    out = real.new_zeros(*coefficients.shape[:-1], dim, dim)
    even = torch.arange(0, dim, 2, device=coefficients.device)
    out[..., even, even] = real
    out[..., even + 1, even + 1] = real
    out[..., even, even + 1] = sign * imag
    out[..., even + 1, even] = -sign * imag
    return out


def fit_abelian_transition(
    latents: torch.Tensor, eps: float = 1e-12, code_faithful: bool = False
) -> torch.Tensor:
    """Fit the G-NFT transition (B, 2F, 2F) from conditioning latents (B, T_c, d_m, 2F).

    By default H @ M multiplies each complex coordinate by the fitted c_f (see
    `abelian_transition`). Roll it out with `stages.nft.lstsq.rollout`.
    """
    coefficients = fit_abelian_coefficients(latents, eps=eps)
    return abelian_transition(coefficients, code_faithful=code_faithful)


def block_phases(coefficients: torch.Tensor) -> torch.Tensor:
    """Return arg(c_f) in (-pi, pi], shape (..., F): k_f * theta modulo 2 pi."""
    return torch.atan2(coefficients.imag, coefficients.real)
