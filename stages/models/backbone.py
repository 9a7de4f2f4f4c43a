"""The Conv28/Deconv28 backbone shared by the image autoencoders, and its linear adapters.

Encoder: Conv(1->32, k4, s2, p1) -> LeakyReLU -> Conv(32->64, k4, s2, p1) -> LeakyReLU, giving a
64 x 7 x 7 map (49 tokens of 64 channels) for 28 x 28 inputs. Decoder: the mirror image with
transposed convolutions and a final sigmoid, so outputs lie in [0, 1].
"""

from __future__ import annotations

import torch
from torch import nn

MAP_SHAPE = (64, 7, 7)
MAP_SIZE = 64 * 7 * 7


class Conv28(nn.Module):
    """Encode images (B, 1, 28, 28) into feature maps (B, 64, 7, 7)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 32, 4, stride=2, padding=1),
            nn.LeakyReLU(),
            nn.Conv2d(32, 64, 4, stride=2, padding=1),
            nn.LeakyReLU(),
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)


class Deconv28(nn.Module):
    """Decode feature maps (B, 64, 7, 7) into images (B, 1, 28, 28) in [0, 1]."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.LeakyReLU(),
            nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1),
            nn.LeakyReLU(),
            nn.ConvTranspose2d(32, 1, 4, stride=2, padding=1),
            nn.Sigmoid(),
        )

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        return self.net(maps)


class MatrixLatentAutoencoder(nn.Module):
    """Conv28 -> Linear(3136 -> d_m * d_a) latent -> Linear -> LayerNorm -> Deconv28.

    ``encode`` returns latents (B, d_m, d_a); ``decode`` takes latents of that shape.
    """

    def __init__(self, latent_rows: int, latent_cols: int) -> None:
        super().__init__()
        self.latent_shape = (latent_rows, latent_cols)
        latent_size = latent_rows * latent_cols
        self.encoder = Conv28()
        self.to_latent = nn.Linear(MAP_SIZE, latent_size)
        self.from_latent = nn.Linear(latent_size, MAP_SIZE)
        # LayerNorm over the 49 tokens x 64 channels, as the straight adapter of the backbone.
        self.norm = nn.LayerNorm([49, 64])
        self.decoder = Deconv28()

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        maps = self.encoder(images).flatten(1)
        return self.to_latent(maps).view(-1, *self.latent_shape)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        tokens = self.from_latent(latents.flatten(1)).view(-1, 49, 64)
        maps = self.norm(tokens).transpose(1, 2).reshape(-1, *MAP_SHAPE)
        return self.decoder(maps)
