"""Baselines with the Conv28 backbone: invariant autoencoder, supervised CNN and SimCLR.

All three expose the same 544-dimensional (by default) flattened latent as probe features, so
that the probe compares representations of equal size with g-NFT's 32 x 17 latent.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from stages.models.backbone import MAP_SIZE, Conv28, MatrixLatentAutoencoder
from stages.rotation import rotate


@dataclass
class InvariantAEConfig:
    latent_size: int = 544


class InvariantAE(nn.Module):
    """Decode a canonical image from one copy and rotate it onto another copy.

    Loss: MSE(rotate(Psi(Phi(x_a)), theta_b), x_b). The decoder has to output the image at angle
    0 whatever the input angle, which pushes Phi(x_a) towards rotation invariance. The rotation
    is bilinear (differentiable), unlike the authors' nearest-neighbour rotation.
    """

    equivariant_latent = False

    def __init__(self, config: InvariantAEConfig) -> None:
        super().__init__()
        self.config = config
        self.net = MatrixLatentAutoencoder(1, config.latent_size)

    def training_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        images, angles = batch["images"], batch["angles"]
        canonical = self.net.decode(self.net.encode(images[:, 0]))
        return F.mse_loss(rotate(canonical, angles[:, -1]), images[:, -1])

    def features(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"latent": self.net.encode(images).flatten(1)}


@dataclass
class SupervisedConfig:
    latent_size: int = 544
    classes: int = 10


class SupervisedCNN(nn.Module):
    """Conv28 -> Linear latent -> ReLU -> Linear classifier, trained with cross-entropy."""

    equivariant_latent = False

    def __init__(self, config: SupervisedConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = Conv28()
        self.to_latent = nn.Linear(MAP_SIZE, config.latent_size)
        self.head = nn.Sequential(nn.ReLU(), nn.Linear(config.latent_size, config.classes))

    def latent(self, images: torch.Tensor) -> torch.Tensor:
        return self.to_latent(self.encoder(images).flatten(1))

    def training_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        logits = self.head(self.latent(batch["images"][:, 0]))
        return F.cross_entropy(logits, batch["labels"])

    def features(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"latent": self.latent(images)}


@dataclass
class ContrastiveConfig:
    latent_size: int = 544
    head_dim: int = 64
    temperature: float = 0.1


class Contrastive(nn.Module):
    """SimCLR-style encoder: two rotated copies of an image are the positive pair.

    Loss: InfoNCE from copy a to copy b with in-batch negatives, cosine similarity over the
    temperature, on head(Phi(x)) with head = ReLU -> Linear(latent -> head_dim). The probe uses
    the latent before the head.
    """

    equivariant_latent = False

    def __init__(self, config: ContrastiveConfig) -> None:
        super().__init__()
        if config.temperature <= 0:
            raise ValueError(f"invalid temperature {config.temperature}: must be > 0")
        self.config = config
        self.encoder = Conv28()
        self.to_latent = nn.Linear(MAP_SIZE, config.latent_size)
        self.head = nn.Sequential(nn.ReLU(), nn.Linear(config.latent_size, config.head_dim))

    def latent(self, images: torch.Tensor) -> torch.Tensor:
        return self.to_latent(self.encoder(images).flatten(1))

    def training_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        images = batch["images"]
        z_a = F.normalize(self.head(self.latent(images[:, 0])), dim=-1)
        z_b = F.normalize(self.head(self.latent(images[:, -1])), dim=-1)
        logits = z_a @ z_b.T / self.config.temperature
        return F.cross_entropy(logits, torch.arange(len(logits), device=logits.device))

    def features(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"latent": self.latent(images)}
