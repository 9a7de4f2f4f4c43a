"""A plain autoencoder with the same backbone and latent size as g-NFT."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from stages.models.backbone import MatrixLatentAutoencoder


@dataclass
class AutoencoderConfig:
    latent_size: int = 544  # flattened latent size; 544 = 32 x 17 matches the g-NFT default


class Autoencoder(nn.Module):
    """Reconstruct each rotated copy from its own latent; no use of the angles."""

    equivariant_latent = False

    def __init__(self, config: AutoencoderConfig) -> None:
        super().__init__()
        self.config = config
        self.net = MatrixLatentAutoencoder(1, config.latent_size)

    def training_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Return the reconstruction MSE of the first copy, images (B, V, 1, H, W)."""
        x = batch["images"][:, 0]
        return F.mse_loss(self.net.decode(self.net.encode(x)), x)

    def features(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"latent": self.net.encode(images).flatten(1)}
