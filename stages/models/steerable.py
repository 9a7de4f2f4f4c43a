"""A C_N-equivariant steerable CNN (escnn) trained as a supervised classifier.

Architecture (a project choice, since the paper's steerable baselines are unpublished): three
R2Conv blocks on ``rot2dOnR2(N)`` with regular-representation fields, inner batch norm, ReLU and
2x2 average pooling after the first two blocks (28 -> 14 -> 7), then group pooling and a spatial
mean, which give rotation-invariant features, and a linear classifier on those features.

Every layer commutes with the rotations in C_N up to sampling effects; for N divisible by 4 the
rotations by multiples of 90 degrees map the 28 x 28 pixel grid (and the 2 x 2 pooling cells)
onto itself, so the features are invariant to them up to floating-point error.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

# escnn warns at import when py3nj (a Fortran build) is absent; only SO(3) needs it.
warnings.filterwarnings("ignore", message="`py3nj` package not found")
from escnn import gspaces  # noqa: E402
from escnn import nn as enn  # noqa: E402


@dataclass
class SteerableConfig:
    rotations: int = 8  # N of the cyclic group C_N
    fields: list[int] = field(default_factory=lambda: [8, 16, 32])  # regular fields per block
    kernel_sizes: list[int] = field(default_factory=lambda: [5, 5, 3])
    classes: int = 10


class SteerableCNN(nn.Module):
    """C_N steerable CNN: images (B, 1, 28, 28) -> invariant features (B, fields[-1])."""

    equivariant_latent = False

    def __init__(self, config: SteerableConfig) -> None:
        super().__init__()
        if len(config.fields) != 3 or len(config.kernel_sizes) != 3:
            raise ValueError("steerable CNN needs three entries in fields and kernel_sizes")
        self.config = config
        gspace = gspaces.rot2dOnR2(N=config.rotations)
        self.input_type = enn.FieldType(gspace, [gspace.trivial_repr])
        layers, in_type = [], self.input_type
        for block, (count, kernel) in enumerate(zip(config.fields, config.kernel_sizes)):
            out_type = enn.FieldType(gspace, count * [gspace.regular_repr])
            layers += [
                enn.R2Conv(in_type, out_type, kernel_size=kernel, padding=kernel // 2),
                enn.InnerBatchNorm(out_type),
                enn.ReLU(out_type, inplace=True),
            ]
            if block < 2:
                layers.append(enn.PointwiseAvgPool2D(out_type, kernel_size=2, stride=2))
            in_type = out_type
        layers.append(enn.GroupPooling(in_type))
        self.body = enn.SequentialModule(*layers)
        self.head = nn.Linear(config.fields[-1], config.classes)

    def invariant_features(self, images: torch.Tensor) -> torch.Tensor:
        maps = self.body(enn.GeometricTensor(images, self.input_type)).tensor
        return maps.mean(dim=(-2, -1))

    def training_loss(self, images: torch.Tensor, angles: torch.Tensor, labels: torch.Tensor):
        """Return the cross-entropy of the first rotated copy's class, images (B, V, 1, H, W)."""
        logits = self.head(self.invariant_features(images[:, 0]))
        return F.cross_entropy(logits, labels)

    def features(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"invariant": self.invariant_features(images)}
