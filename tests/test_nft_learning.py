"""A tiny U-NFT learns the planted frequencies of a known linear group action."""

import math

import pytest
import torch

from stages.nft.lstsq import fit_transition, rollout
from stages.nft.representations import rotation_matrix

PLANTED = [1, 3, 5]
OBSERVED_DIM = 12
DIM_A = 2 * len(PLANTED)
DIM_M = 16
FRAMES = 4
CONDITIONING = 2
DOUBLE = torch.float64


def action_sequences(generator, embedding, count, frames):
    """Return x_t = z @ blockdiag_j R(k_j t theta) @ P^T, shape (n, T, 12), and theta.

    embedding: P of shape (12, 6) with orthonormal columns. z ~ N(0, I_6) per sequence.
    """
    angles = torch.rand(count, generator=generator, dtype=DOUBLE) * math.pi
    start = torch.randn(count, 1, DIM_A, generator=generator, dtype=DOUBLE)
    steps = []
    for t in range(frames):
        action = torch.zeros(count, DIM_A, DIM_A, dtype=DOUBLE)
        for j, frequency in enumerate(PLANTED):
            block = slice(2 * j, 2 * j + 2)
            action[:, block, block] = rotation_matrix(frequency * t * angles)
        steps.append((start @ action)[:, 0] @ embedding.T)
    return torch.stack(steps, dim=1), angles


def phase_errors(encoder, embedding, seed=99, count=256):
    """Return per-sample max |sorted |arg eig M*| - sorted |arg e^{i k_j theta}||."""
    generator = torch.Generator().manual_seed(seed)
    observations, angles = action_sequences(generator, embedding, count, CONDITIONING)
    with torch.no_grad():
        latents = encoder(observations).reshape(count, CONDITIONING, DIM_M, DIM_A)
        transitions = fit_transition(latents)
    found = torch.linalg.eigvals(transitions).angle().abs().sort(dim=-1).values
    unit = torch.ones_like(angles)
    planted = [torch.polar(unit, k * angles).angle().abs() for k in PLANTED]
    expected = torch.stack(planted + planted, dim=-1).sort(dim=-1).values
    return (found - expected).abs().amax(dim=-1)


@pytest.fixture
def single_thread():
    """Run on one thread: the ops are tiny, and extra threads only add contention."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def test_unft_learns_planted_frequencies(single_thread):
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    noise = torch.randn(OBSERVED_DIM, DIM_A, generator=generator, dtype=DOUBLE)
    embedding = torch.linalg.qr(noise)[0]
    latent_size = DIM_M * DIM_A
    encoder = torch.nn.Linear(OBSERVED_DIM, latent_size, bias=False, dtype=DOUBLE)
    decoder = torch.nn.Linear(latent_size, OBSERVED_DIM, bias=False, dtype=DOUBLE)
    parameters = [*encoder.parameters(), *decoder.parameters()]
    optimiser = torch.optim.Adam(parameters, lr=1e-2)
    initial_errors = phase_errors(encoder, embedding)

    batch = 64
    for _ in range(400):
        observations, _ = action_sequences(generator, embedding, batch, FRAMES)
        latents = encoder(observations).reshape(batch, FRAMES, DIM_M, DIM_A)
        transition = fit_transition(latents[:, :CONDITIONING])
        last = latents[:, CONDITIONING - 1]
        predicted = rollout(last, transition, FRAMES - CONDITIONING)
        prediction = decoder(predicted.flatten(-2))
        reconstruction = decoder(latents.flatten(-2))
        target = observations[:, CONDITIONING:]
        prediction_loss = (prediction - target).square().sum(-1).mean()
        reconstruction_loss = (reconstruction - observations).square().sum(-1).mean()
        loss = prediction_loss + reconstruction_loss
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()

    errors = phase_errors(encoder, embedding)
    assert initial_errors.median() > 0.5
    assert loss.item() < 1e-2
    assert errors.median() < 0.02
    assert (errors > 0.05).double().mean() < 0.05
