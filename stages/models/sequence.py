"""NFT models of 1D signal sequences: MLP encoder and decoder around a matrix latent.

A frame x of N points is encoded to H = Phi(x) of shape (d_m, d_a). A shift acts from the
right, H' = H @ M with M of shape (d_a, d_a), and the decoder maps H back to N points.
The transition M comes from one of three sources:

- ``least_squares`` (U-NFT): fitted per sequence by ridge least squares on the consecutive
  conditioning latents, without group knowledge;
- ``abelian`` (G-NFT for an abelian group): one complex scalar per 2 x 2 block, fitted by
  least squares. The default is the corrected orientation, in which H @ M multiplies each
  complex coordinate by the fitted c_f. ``code_faithful=True`` multiplies by conj(c_f), as
  the authors' AbelMSP code does;
- ``known`` (g-NFT): M(theta) = blockdiag_j R(j theta) for j = 0..d_a/2 - 1, built from the
  true shift theta of the sequence.

The predicted frame t >= T_c is Psi(H_{T_c - 1} @ M^(t - T_c + 1)), so the rollout starts
from the last conditioning latent. Losses are SSE-mean: the sum of squared errors over the
N points of a frame, averaged over sequences and frames.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from stages.nft.abelian import fit_abelian_transition
from stages.nft.lstsq import fit_transition, rollout
from stages.nft.representations import so2_paired_representation

TRANSITIONS = ("least_squares", "abelian", "known")
ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU}


@dataclass
class SequenceConfig:
    transition: str = "least_squares"  # least_squares (U-NFT), abelian (G-NFT), known (g-NFT)
    latent_dim: int = 16  # d_m, rows of the latent
    action_dim: int = 10  # d_a, columns of the latent and size of M
    encoder_hidden: list[int] = field(default_factory=lambda: [256, 160])
    decoder_hidden: list[int] = field(default_factory=lambda: [256, 256])
    activation: str = "tanh"  # after every hidden layer, none after the output layer
    num_points: int = 128  # N, samples per frame
    code_faithful: bool = False  # abelian only: roll out with conj(c_f) as the authors' code

    def __post_init__(self) -> None:
        if self.transition not in TRANSITIONS:
            raise ValueError(f"unknown transition {self.transition!r}; use one of {TRANSITIONS}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(
                f"unknown activation {self.activation!r}; use one of {sorted(ACTIVATIONS)}"
            )
        if self.transition in ("abelian", "known") and self.action_dim % 2:
            raise ValueError(
                f"invalid action_dim {self.action_dim} for the {self.transition} transition: "
                "it needs 2 x 2 blocks, so give an even action_dim"
            )


def mlp(widths: list[int], activation: str) -> nn.Sequential:
    """Linear layers through ``widths`` with the activation after every layer but the last."""
    layers: list[nn.Module] = []
    for index, (width_in, width_out) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.Linear(width_in, width_out))
        if index < len(widths) - 2:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


def sse_mean(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Sum squared errors over the last axis (N points), then average over all other axes."""
    return (predicted - target).square().sum(dim=-1).mean()


class SequenceNFT(nn.Module):
    """Encoder Phi: (..., N) -> (..., d_m, d_a), decoder Psi back, and a transition M."""

    def __init__(self, config: SequenceConfig) -> None:
        super().__init__()
        self.config = config
        latent_size = config.latent_dim * config.action_dim
        encoder_widths = [config.num_points, *config.encoder_hidden, latent_size]
        decoder_widths = [latent_size, *config.decoder_hidden, config.num_points]
        self.encoder = mlp(encoder_widths, config.activation)
        self.decoder = mlp(decoder_widths, config.activation)

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """Frames (..., N) -> latents (..., d_m, d_a)."""
        flat = self.encoder(frames)
        return flat.reshape(*frames.shape[:-1], self.config.latent_dim, self.config.action_dim)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents (..., d_m, d_a) -> frames (..., N)."""
        return self.decoder(latents.flatten(-2))

    def transition(self, latents: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
        """Return M (B, d_a, d_a), acting from the right, for conditioning latents.

        latents: (B, T_c, d_m, d_a), shifts: (B,) in radians. Only the ``known``
        transition reads the shifts, and only the fitted transitions read the latents.
        """
        if self.config.transition == "least_squares":
            return fit_transition(latents)
        if self.config.transition == "abelian":
            return fit_abelian_transition(latents, code_faithful=self.config.code_faithful)
        return so2_paired_representation(shifts.to(latents.dtype), self.config.action_dim // 2)

    def predict(self, sequences: torch.Tensor, shifts: torch.Tensor, num_cond: int,
                reconstruct: bool) -> dict[str, torch.Tensor]:
        """Encode the first T_c frames, roll out the rest and decode.

        sequences: (B, T, N) with T > T_c = num_cond, shifts: (B,). Returns a dict with
        ``predicted`` (B, T - T_c, N), the decoded rollout of frames T_c..T-1, and
        ``transition`` (B, d_a, d_a). With ``reconstruct`` it also contains
        ``reconstructed`` (B, T_c, N), the decoded encodings of the conditioning frames.
        """
        num_frames = sequences.shape[1]
        if not 1 <= num_cond < num_frames:
            raise ValueError(f"invalid num_cond {num_cond} for sequences of {num_frames} frames")
        if num_cond < 2 and self.config.transition != "known":
            raise ValueError(f"the {self.config.transition} transition needs num_cond >= 2")
        latents = self.encode(sequences[:, :num_cond])
        transition = self.transition(latents, shifts)
        future = rollout(latents[:, -1], transition, num_frames - num_cond)
        out = {"predicted": self.decode(future), "transition": transition}
        if reconstruct:
            out["reconstructed"] = self.decode(latents)
        return out

    def sequence_loss(self, sequences: torch.Tensor, shifts: torch.Tensor, num_cond: int,
                      reconstruct: bool) -> dict[str, torch.Tensor]:
        """Return the training loss and its parts as scalars.

        ``prediction`` is the SSE-mean over the predicted frames T_c..T-1. With
        ``reconstruct``, ``loss`` is the SSE-mean over all T frames (T_c reconstructions
        plus the predictions), as the authors' code computes it while the reconstruction
        term is on. Otherwise ``loss`` equals ``prediction``.
        """
        out = self.predict(sequences, shifts, num_cond, reconstruct)
        prediction = sse_mean(out["predicted"], sequences[:, num_cond:])
        parts = {"prediction": prediction, "loss": prediction}
        if reconstruct:
            parts["reconstruction"] = sse_mean(out["reconstructed"], sequences[:, :num_cond])
            everything = torch.cat([out["reconstructed"], out["predicted"]], dim=1)
            parts["loss"] = sse_mean(everything, sequences)
        return parts


def build_sequence_model(architecture: dict) -> SequenceNFT:
    """Build a SequenceNFT from plain parameters, rejecting unknown keys with a ValueError."""
    known = set(SequenceConfig.__dataclass_fields__)
    unknown = sorted(set(architecture) - known)
    if unknown:
        raise ValueError(f"unknown architecture parameter(s) {unknown}; known: {sorted(known)}")
    return SequenceNFT(SequenceConfig(**architecture))
