import math

import pytest
import torch

from stages.common import StageError
from stages.models import MODEL_KINDS, build_model
from stages.nft.representations import act, so2_representation

SMALL = {
    "gnft": {"latent_dim": 4, "max_frequency": 3},
    "autoencoder": {"latent_size": 28},
    "steerable_cnn": {"rotations": 4, "fields": [2, 2, 4], "kernel_sizes": [3, 3, 3]},
    "msp": {"latent_dim": 4, "action_dim": 3},
    "invariant_autoencoder": {"latent_size": 12},
    "supervised": {"latent_size": 12},
    "contrastive": {"latent_size": 12, "head_dim": 5},
}


def batch(size=6, views=2):
    generator = torch.Generator().manual_seed(0)
    return {
        "images": torch.rand(size, views, 1, 28, 28, generator=generator),
        "angles": torch.rand(size, views, generator=generator) * 2 * math.pi,
        "labels": torch.randint(0, 10, (size,), generator=generator),
        "canonical": torch.rand(size, 1, 28, 28, generator=generator),
    }


@pytest.mark.parametrize("kind", sorted(MODEL_KINDS))
def test_one_training_step_is_finite(kind):
    torch.manual_seed(0)
    model = build_model(kind, SMALL[kind])
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loss = model.training_loss(batch())
    loss.backward()
    optimiser.step()
    assert torch.isfinite(loss)
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads
    assert all(torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("kind", sorted(MODEL_KINDS))
def test_features_are_flat_per_image(kind):
    model = build_model(kind, SMALL[kind]).eval()
    images = batch()["images"][:, 0]
    for name, value in model.features(images).items():
        assert value.ndim == 2, name
        assert value.shape[0] == len(images), name


def test_gnft_feature_sizes():
    model = build_model("gnft", {"latent_dim": 32, "max_frequency": 8})
    features = model.features(torch.rand(2, 1, 28, 28))
    assert features["latent"].shape == (2, 32 * 17)
    assert features["norms"].shape == (2, 32 * 9)


def test_gnft_norms_invariant_to_latent_rotation():
    model = build_model("gnft", SMALL["gnft"]).eval()
    latent = torch.randn(3, 4, 7)
    rotated = act(latent, so2_representation(torch.full((3,), 1.1), 3))
    with torch.no_grad():
        model.net.encode = lambda images: images  # feed latents directly
        assert torch.allclose(model.features(latent)["norms"], model.features(rotated)["norms"],
                              atol=1e-5)


def test_gnft_relative_transition_composes():
    model = build_model("gnft", SMALL["gnft"])
    a, b = torch.tensor([0.3]), torch.tensor([2.0])
    relative = model.relative(a, b)
    assert torch.allclose(model.representation(a) @ relative, model.representation(b), atol=1e-6)


@pytest.mark.parametrize("rotations", [4, 8, -1])
def test_steerable_features_invariant_to_quarter_turns(rotations):
    torch.manual_seed(0)
    model = build_model("steerable_cnn", {"rotations": rotations, "fields": [2, 3, 4],
                                          "kernel_sizes": [5, 5, 3], "max_frequency": 2}).eval()
    images = torch.rand(4, 1, 28, 28)
    with torch.no_grad():
        features = model.features(images)["invariant"]
        for turns in (1, 2, 3):
            turned = model.features(torch.rot90(images, turns, dims=(-2, -1)))["invariant"]
            assert torch.allclose(features, turned, atol=1e-4), turns


def test_unknown_architecture_key_is_named():
    with pytest.raises(StageError, match=r"unknown architecture parameter\(s\) \['width'\]"):
        build_model("gnft", {"width": 3})


def test_unknown_kind_is_named():
    with pytest.raises(StageError, match="unknown model kind 'vae'"):
        build_model("vae", {})
