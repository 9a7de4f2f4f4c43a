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
import importlib

from torch import nn

from stages.common import StageError

# Kind name in the config -> (module, model class, config dataclass). Modules are imported on
# first use, so that jobs of other models do not pay for importing escnn.
MODEL_KINDS = {
    "gnft": ("stages.models.gnft", "GNFT", "GNFTConfig"),
    "msp": ("stages.models.msp", "MSP", "MSPConfig"),
    "autoencoder": ("stages.models.autoencoder", "Autoencoder", "AutoencoderConfig"),
    "invariant_autoencoder": ("stages.models.baselines", "InvariantAE", "InvariantAEConfig"),
    "supervised": ("stages.models.baselines", "SupervisedCNN", "SupervisedConfig"),
    "contrastive": ("stages.models.baselines", "Contrastive", "ContrastiveConfig"),
    "steerable_cnn": ("stages.models.steerable", "SteerableCNN", "SteerableConfig"),
}


def build_model(kind: str, architecture: dict) -> nn.Module:
    """Build a model of ``kind`` from its architecture parameters, rejecting unknown keys."""
    if kind not in MODEL_KINDS:
        raise StageError(f"unknown model kind {kind!r}; known kinds: {', '.join(MODEL_KINDS)}")
    module_name, class_name, config_name = MODEL_KINDS[kind]
    module = importlib.import_module(module_name)
    model_class, config_class = getattr(module, class_name), getattr(module, config_name)
    known = {f.name for f in dataclasses.fields(config_class)}
    unknown = sorted(set(architecture) - known)
    if unknown:
        raise StageError(
            f"unknown architecture parameter(s) {unknown} for model kind {kind!r}; "
            f"known: {sorted(known)}"
        )
    return model_class(config_class(**architecture))
