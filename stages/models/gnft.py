"""g-NFT for SO(2): an autoencoder whose latent transforms by known rotation irreps.

The latent H of an image is (d_m, d_a) with d_a = 1 + 2L; the rotation by theta acts from the
right through M(theta) = blockdiag([1], R(theta), ..., R(L theta)), so ideally
Phi(rotate(x, theta)) = Phi(x) @ M(theta).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from stages.models.backbone import MatrixLatentAutoencoder
from stages.nft.representations import act, so2_dimension, so2_representation


@dataclass
class GNFTConfig:
    latent_dim: int = 32  # d_m, rows of the latent
    max_frequency: int = 8  # L; frequencies 0..L give d_a = 1 + 2L
    alignment_weight: float = 0.0  # weight of the latent alignment MSE(Phi(x_b), Phi(x_a) M)


class GNFT(nn.Module):
    """g-NFT with known angles, trained on pairs of rotated copies of one image.

    Loss for a pair (x_a, theta_a), (x_b, theta_b): the symmetric prediction error
    MSE(Psi(Phi(x_a) M(theta_a)^-1 M(theta_b)), x_b) + MSE(Psi(Phi(x_b) M(theta_b)^-1 M(theta_a)), x_a),
    plus ``alignment_weight`` * MSE(Phi(x_b), Phi(x_a) M(theta_a)^-1 M(theta_b)) when positive.
    """

    equivariant_latent = True

    def __init__(self, config: GNFTConfig) -> None:
        super().__init__()
        self.config = config
        self.net = MatrixLatentAutoencoder(config.latent_dim, so2_dimension(config.max_frequency))

    def representation(self, angles: torch.Tensor) -> torch.Tensor:
        """Return M(theta) of shape (B, d_a, d_a) for angles (B,)."""
        return so2_representation(angles, self.config.max_frequency)

    def relative(self, from_angles: torch.Tensor, to_angles: torch.Tensor) -> torch.Tensor:
        """Return M(from)^-1 M(to) = M(to - from), which maps a latent at one pose to another."""
        return self.representation(to_angles - from_angles)

    def training_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Return the pair loss for images (B, V>=2, 1, H, W) and angles (B, V) in radians."""
        images, angles = batch["images"], batch["angles"]
        x_a, x_b = images[:, 0], images[:, -1]
        z_a, z_b = self.net.encode(x_a), self.net.encode(x_b)
        forward = self.relative(angles[:, 0], angles[:, -1])
        backward = forward.transpose(-1, -2)  # M is orthogonal, so the inverse is the transpose
        predicted_b = act(z_a, forward)
        loss = F.mse_loss(self.net.decode(predicted_b), x_b) + F.mse_loss(
            self.net.decode(act(z_b, backward)), x_a
        )
        if self.config.alignment_weight > 0:
            loss = loss + self.config.alignment_weight * F.mse_loss(z_b, predicted_b)
        return loss

    def latent(self, images: torch.Tensor) -> torch.Tensor:
        return self.net.encode(images)

    def features(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Return probe features: the raw latent (d_m * d_a) and its invariant block norms.

        ``norms`` holds, for each latent row, the norm of each irrep chunk (the frequency-0
        chunk's absolute value and each 2-D chunk's length): d_m * (L + 1) rotation-invariant
        numbers.
        """
        latent = self.net.encode(images)
        freq0 = latent[..., :1].abs()
        pairs = latent[..., 1:].unflatten(-1, (self.config.max_frequency, 2)).norm(dim=-1)
        norms = torch.cat([freq0, pairs], dim=-1)
        return {"latent": latent.flatten(1), "norms": norms.flatten(1)}
