"""Steerable CNNs (escnn), equivariant to C_N or SO(2), trained as supervised classifiers.

Architecture (a project choice, since the paper's steerable baselines are unpublished): three
R2Conv blocks on ``rot2dOnR2`` with 2x2 average pooling after the first two blocks
(28 -> 14 -> 7), an invariant pooling over each field, a spatial mean, and a linear classifier.

- C_N (``rotations`` = N >= 1): regular-representation fields, inner batch norm, ReLU, and group
  pooling (max over the N rotations of each field).
- SO(2) (``rotations`` = -1): band-limited regular fields with frequencies 0..``max_frequency``,
  IID batch norm, a Fourier ELU that applies the ELU at ``fourier_samples`` rotations, and norm
  pooling (the norm of each field).

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
    rotations: int = 8  # N of the cyclic group C_N, or -1 for SO(2)
    max_frequency: int = 4  # SO(2) only: highest irrep frequency of each field
    fourier_samples: int = 16  # SO(2) only: rotations at which the Fourier ELU is applied
    fields: list[int] = field(default_factory=lambda: [8, 16, 32])  # regular fields per block
    kernel_sizes: list[int] = field(default_factory=lambda: [5, 5, 3])
    classes: int = 10


class SteerableCNN(nn.Module):
    """Steerable CNN: images (B, 1, 28, 28) -> invariant features (B, fields[-1]).

    The features are invariant, i.e. equivariant with the trivial representation, so
    ``latent`` returns them as a (B, 1, F) matrix and ``relative`` the identity.
    """

    equivariant_latent = True
    latent_feature = "invariant"

    def __init__(self, config: SteerableConfig) -> None:
        super().__init__()
        if len(config.fields) != 3 or len(config.kernel_sizes) != 3:
            raise ValueError("steerable CNN needs three entries in fields and kernel_sizes")
        if config.rotations == 0 or config.rotations < -1:
            raise ValueError(f"invalid rotations {config.rotations}: use N >= 1 or -1 for SO(2)")
        self.config = config
        if config.rotations == -1:
            gspace = gspaces.rot2dOnR2(N=-1, maximum_frequency=2 * config.max_frequency)
        else:
            gspace = gspaces.rot2dOnR2(N=config.rotations)
        self.input_type = enn.FieldType(gspace, [gspace.trivial_repr])
        layers, in_type = [], self.input_type
        for block, (count, kernel) in enumerate(zip(config.fields, config.kernel_sizes)):
            norm, nonlinearity = self._block_layers(gspace, count)
            out_type = nonlinearity.in_type
            layers += [
                enn.R2Conv(in_type, out_type, kernel_size=kernel, padding=kernel // 2),
                norm,
                nonlinearity,
            ]
            if block < 2:
                layers.append(enn.PointwiseAvgPool2D(out_type, kernel_size=2, stride=2))
            in_type = out_type
        layers.append(
            enn.NormPool(in_type) if config.rotations == -1 else enn.GroupPooling(in_type)
        )
        self.body = enn.SequentialModule(*layers)
        self.head = nn.Linear(config.fields[-1], config.classes)

    def _block_layers(self, gspace, count: int):
        """Return the (batch norm, nonlinearity) of a block with ``count`` fields."""
        if self.config.rotations == -1:
            irreps = gspace.fibergroup.bl_irreps(self.config.max_frequency)
            nonlinearity = enn.FourierELU(gspace, count, irreps=irreps, inplace=True,
                                          type="regular", N=self.config.fourier_samples)
            return enn.IIDBatchNorm2d(nonlinearity.in_type), nonlinearity
        field_type = enn.FieldType(gspace, count * [gspace.regular_repr])
        return enn.InnerBatchNorm(field_type), enn.ReLU(field_type, inplace=True)

    def latent(self, images: torch.Tensor) -> torch.Tensor:
        return self.invariant_features(images).unsqueeze(1)

    def relative(self, from_angles: torch.Tensor, to_angles: torch.Tensor) -> torch.Tensor:
        """Return the identity (B, F, F): invariant features do not change under rotation."""
        size = self.config.fields[-1]
        return torch.eye(size, device=from_angles.device).expand(len(from_angles), size, size)

    def invariant_features(self, images: torch.Tensor) -> torch.Tensor:
        maps = self.body(enn.GeometricTensor(images, self.input_type)).tensor
        return maps.mean(dim=(-2, -1))

    def training_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Return the cross-entropy of the first rotated copy's class, images (B, V, 1, H, W)."""
        logits = self.head(self.invariant_features(batch["images"][:, 0]))
        return F.cross_entropy(logits, batch["labels"])

    def features(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"invariant": self.invariant_features(images)}
