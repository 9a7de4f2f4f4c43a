"""Batched image rotation with per-image angles (torch grid sampling).

Convention: a positive angle rotates the image counter-clockwise as displayed, with row 0 at
the top, about the image centre. Angles are in radians. Rotating by pi/2 equals
``torch.rot90(image, 1, dims=(-2, -1))``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

INTERPOLATIONS = ("bilinear", "nearest")


def rotation_grid(angles: torch.Tensor, size: tuple[int, int, int, int]) -> torch.Tensor:
    """Return the sampling grid that rotates images of ``size`` (N, C, H, W) by ``angles`` (N,).

    The grid maps each output pixel to the input position it is read from, so it uses the
    inverse rotation. Images must be square for the rotation to be rigid.
    """
    cos, sin = torch.cos(angles), torch.sin(angles)
    zero = torch.zeros_like(angles)
    # In grid coordinates (x right, y down) a counter-clockwise turn on screen is
    # [[cos, sin], [-sin, cos]]; the output pixel samples the input at its inverse.
    theta = torch.stack(
        [torch.stack([cos, -sin, zero], dim=-1), torch.stack([sin, cos, zero], dim=-1)], dim=-2
    )
    return F.affine_grid(theta, list(size), align_corners=False)


def rotate(images: torch.Tensor, angles: torch.Tensor, interpolation: str = "bilinear") -> torch.Tensor:
    """Rotate a batch of images (N, C, H, W) by per-image angles (N,) in radians.

    Pixels that come from outside the image are 0. Returns a float tensor of the input's shape.
    """
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"invalid interpolation {interpolation!r}; use one of {INTERPOLATIONS}")
    if images.shape[-1] != images.shape[-2]:
        raise ValueError(f"images must be square, got {tuple(images.shape[-2:])}")
    images = images.float()
    grid = rotation_grid(angles.to(images.dtype), tuple(images.shape))
    return F.grid_sample(images, grid, mode=interpolation, padding_mode="zeros", align_corners=False)
