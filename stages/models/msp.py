"""U-NFT (meta-sequential prediction) on stationary rotation sequences of images.

Each training item is a sequence of three copies of one image rotated by beta, 2 beta and
3 beta with beta ~ U[-pi/2, pi/2] per item, made on the fly from the unrotated image. The
transition M (d_a x d_a, acting from the right) is fitted by regularised least squares from the
latents of the first two frames, and the third frame is predicted as Psi(H_2 @ M). No group
knowledge is used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from stages.models.backbone import MatrixLatentAutoencoder
from stages.nft.lstsq import fit_transition_from_pairs
from stages.rotation import rotate


@dataclass
class MSPConfig:
    latent_dim: int = 32  # d_m
    action_dim: int = 10  # d_a


class MSP(nn.Module):
    """U-NFT image model; probe features are the row norms of the latent (d_m numbers)."""

    equivariant_latent = False

    def __init__(self, config: MSPConfig) -> None:
        super().__init__()
        self.config = config
        self.net = MatrixLatentAutoencoder(config.latent_dim, config.action_dim)

    def stationary_sequence(self, canonical: torch.Tensor) -> torch.Tensor:
        """Rotate canonical images (B, 1, H, W) by beta, 2 beta, 3 beta: (B, 3, 1, H, W)."""
        beta = (torch.rand(len(canonical), device=canonical.device) - 0.5) * math.pi
        frames = [rotate(canonical, step * beta) for step in (1, 2, 3)]
        return torch.stack(frames, dim=1)

    def training_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        frames = self.stationary_sequence(batch["canonical"])
        h_1, h_2 = self.net.encode(frames[:, 0]), self.net.encode(frames[:, 1])
        transition = fit_transition_from_pairs(h_1, h_2)
        return F.mse_loss(self.net.decode(h_2 @ transition), frames[:, 2])

    def features(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        latent = self.net.encode(images)
        return {"norms": latent.norm(dim=-1), "latent": latent.flatten(1)}
