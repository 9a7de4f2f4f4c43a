"""Model registry: every model the train and evaluate stages know, built from plain parameters.

A model is an ``nn.Module`` with
- ``training_loss(batch)``: a dict with ``images`` (B, V, 1, H, W) in [0, 1], ``angles`` (B, V)
  in radians, ``labels`` (B,) and ``canonical`` (B, 1, H, W) unrotated images; returns a scalar
  loss;
- ``features(images)``: images (B, 1, H, W) -> dict of named (B, F) probe features;
- ``equivariant_latent``: True when ``latent(images)`` and ``relative(a, b)`` exist, so that
  Phi(x_b) ~ Phi(x_a) @ relative(theta_a, theta_b) can be measured.
"""

from __future__ import annotations

import dataclasses

from torch import nn

from stages.common import StageError
from stages.models.autoencoder import Autoencoder, AutoencoderConfig
from stages.models.baselines import (
    Contrastive,
    ContrastiveConfig,
    InvariantAE,
    InvariantAEConfig,
    SupervisedCNN,
    SupervisedConfig,
)
from stages.models.gnft import GNFT, GNFTConfig
from stages.models.msp import MSP, MSPConfig
from stages.models.steerable import SteerableCNN, SteerableConfig

# Kind name in the config -> (model class, config dataclass).
MODEL_KINDS = {
    "gnft": (GNFT, GNFTConfig),
    "msp": (MSP, MSPConfig),
    "autoencoder": (Autoencoder, AutoencoderConfig),
    "invariant_autoencoder": (InvariantAE, InvariantAEConfig),
    "supervised": (SupervisedCNN, SupervisedConfig),
    "contrastive": (Contrastive, ContrastiveConfig),
    "steerable_cnn": (SteerableCNN, SteerableConfig),
}


def build_model(kind: str, architecture: dict) -> nn.Module:
    """Build a model of ``kind`` from its architecture parameters, rejecting unknown keys."""
    if kind not in MODEL_KINDS:
        raise StageError(f"unknown model kind {kind!r}; known kinds: {', '.join(MODEL_KINDS)}")
    model_class, config_class = MODEL_KINDS[kind]
    known = {f.name for f in dataclasses.fields(config_class)}
    unknown = sorted(set(architecture) - known)
    if unknown:
        raise StageError(
            f"unknown architecture parameter(s) {unknown} for model kind {kind!r}; "
            f"known: {sorted(known)}"
        )
    return model_class(config_class(**architecture))
