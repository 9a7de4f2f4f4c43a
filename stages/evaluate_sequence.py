"""Evaluate trained NFT sequence models of E1 and E2, and the DFT baseline of E2.

Usage:
  python -m stages.evaluate_sequence e1 --model model.pt --data rollout.h5 --freqseed 1
         --seed 1 --out-spectrum spectrum.parquet --out-rollout rollout.parquet
  python -m stages.evaluate_sequence e2 --model model.pt --data test.h5 --model-name g_nft
         --seed 1 --noise-std 0.05 --out seed1.parquet
  python -m stages.evaluate_sequence dft --data test.h5 --num-bins 16 --out dft.parquet

E1: transitions M (d_a, d_a), acting from the right, are fitted from the latents of frames 0
and 1 of every rollout test sequence. Their character spectrum P(f) = mean_i tr(M_i) 2
cos(f theta_i), f = 0..F, is written next to the ground-truth overlay and the mean
magnitude of the plain DFT of the observed frame 0, scaled so that a unit sine in the
sample index s would read 1. The rollout Psi(Phi(x_1) @ M^r), r = 1..T-2, is compared with
frames 2..T-1, and the SSE over the N points is summarised per step over all sequences
(every test seed pooled, for the spectrum as well).

E2: on the noise-free test set, 4 frames are encoded and reconstructed and frame 4 is
predicted (g-NFT: M(theta) from the true shift; G-NFT: M fitted by least squares). The
metric is the authors': the SSE-mean over the 5 frames, averaged over consecutive batches
of 16 test sequences, so the last, smaller batch counts as much as a full one.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from stages.common import StageError, atomic_path, pick_device, run_main, set_threads
from stages.models.sequence import build_sequence_model
from stages.nft.dft import DFT_NUM_BINS, dft_baseline_error, mean_signal_energy
from stages.nft.spectrum import character_spectrum, ground_truth_spectrum
from stages.signal_data import read_signal_attrs, read_signals

log = logging.getLogger("stages.evaluate_sequence")

EVAL_BATCH = 1000
E1_COND_FRAMES = 2
E2_COND_FRAMES = 4
E2_TEST_BATCH = 16
SPECTRUM_SCHEMA = {
    "freqseed": "int64",
    "seed": "int64",
    "frequency": "int64",
    "character": "float64",
    "ground_truth": "float64",
    "observed_fft": "float64",
}
ROLLOUT_SCHEMA = {
    "freqseed": "int64",
    "seed": "int64",
    "step": "int64",
    "sse_mean": "float64",
    "sse_std": "float64",
    "zero_sse_mean": "float64",
    "num_sequences": "int64",
}
E2_SCHEMA = {"model": "string", "seed": "int64", "noise_std": "float64", "metric": "string",
             "value": "float64"}
DFT_SCHEMA = {"baseline": "string", "num_bins": "int64", "value": "float64"}


def load_sequence_model(path: Path, device: torch.device):
    """Rebuild a model saved by stages.train_sequence, in eval mode, and its checkpoint."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError) as error:
        raise StageError(f"cannot load model file {path}: {error}; delete it and rerun") from error
    model = build_sequence_model(checkpoint["architecture"])
    model.load_state_dict(checkpoint["state_dict"])
    return model.to(device).eval(), checkpoint


def tensors(arrays: dict, rows: slice, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    sequences = torch.from_numpy(arrays["sequences"][rows]).to(device)
    shifts = torch.from_numpy(arrays["shifts"][rows]).float().to(device)
    return sequences, shifts


def observed_fft(frames: np.ndarray, max_frequency: int) -> np.ndarray:
    """Return the mean over frames (n, N) of 2 |FFT| / N at bins 0..F, shape (F + 1,)."""
    magnitude = np.abs(np.fft.rfft(frames.astype(np.float64), axis=-1)) * 2 / frames.shape[-1]
    return magnitude[:, : max_frequency + 1].mean(axis=0)


@torch.no_grad()
def evaluate_e1(model, arrays: dict, frequencies: list[int], max_frequency: int,
                device: torch.device) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return the spectrum (one row per f) and the rollout errors (one row per step)."""
    transitions, step_errors, energies = [], [], []
    for start in range(0, len(arrays["shifts"]), EVAL_BATCH):
        sequences, shifts = tensors(arrays, slice(start, start + EVAL_BATCH), device)
        out = model.predict(sequences, shifts, E1_COND_FRAMES, reconstruct=False)
        transitions.append(out["transition"].double().cpu())
        targets = sequences[:, E1_COND_FRAMES:]
        errors = (out["predicted"] - targets).square().sum(dim=-1)
        step_errors.append(errors.double().cpu())
        energies.append(targets.double().square().sum(dim=-1).cpu())
    shifts = torch.from_numpy(arrays["shifts"])
    spectrum = character_spectrum(torch.cat(transitions), shifts, max_frequency).numpy()
    frequency = np.arange(max_frequency + 1)
    spectrum_rows = pd.DataFrame({
        "frequency": frequency,
        "character": spectrum,
        "ground_truth": ground_truth_spectrum(frequencies, max_frequency),
        "observed_fft": observed_fft(arrays["sequences"][:, 0], max_frequency),
    })
    errors = torch.cat(step_errors).numpy()
    rollout_rows = pd.DataFrame({
        "step": np.arange(1, errors.shape[1] + 1),
        "sse_mean": errors.mean(axis=0),
        "sse_std": errors.std(axis=0),
        "zero_sse_mean": torch.cat(energies).numpy().mean(axis=0),
        "num_sequences": len(errors),
    })
    return spectrum_rows, rollout_rows


@torch.no_grad()
def e2_test_errors(model, arrays: dict, device: torch.device) -> dict[str, float]:
    """Compute the authors' E2 test metric and its reconstruction and prediction parts.

    Per sequence: SSE over N points, averaged over the 5 frames (``test_sse``), over the 4
    reconstructed frames and over the predicted frame. Each is then averaged within
    consecutive batches of E2_TEST_BATCH sequences, and the batch means are averaged.
    """
    per_sequence = {"test_sse": [], "test_sse_reconstruction": [], "test_sse_prediction": []}
    for start in range(0, len(arrays["shifts"]), EVAL_BATCH):
        sequences, shifts = tensors(arrays, slice(start, start + EVAL_BATCH), device)
        out = model.predict(sequences, shifts, E2_COND_FRAMES, reconstruct=True)
        decoded = torch.cat([out["reconstructed"], out["predicted"]], dim=1)
        errors = (decoded - sequences).square().sum(dim=-1).double().cpu()
        per_sequence["test_sse"].append(errors.mean(dim=1))
        per_sequence["test_sse_reconstruction"].append(errors[:, :E2_COND_FRAMES].mean(dim=1))
        per_sequence["test_sse_prediction"].append(errors[:, E2_COND_FRAMES:].mean(dim=1))
    metrics = {}
    for name, parts in per_sequence.items():
        values = torch.cat(parts)
        batch_means = [chunk.mean() for chunk in values.split(E2_TEST_BATCH)]
        metrics[name] = float(torch.stack(batch_means).mean())
    return metrics


def write_parquet(frame: pd.DataFrame, schema: dict, path: Path) -> None:
    frame = frame[list(schema)].astype(schema)
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)
    log.info("wrote %d rows to %s", len(frame), path)


def run_e1(args, device: torch.device) -> None:
    model, checkpoint = load_sequence_model(args.model, device)
    attrs = read_signal_attrs(args.data)
    if attrs.get("freqseed") != args.freqseed:
        raise StageError(f"{args.data} was generated with freqseed {attrs.get('freqseed')}, "
                         f"not --freqseed {args.freqseed}; pass the matching rollout file")
    arrays = read_signals(args.data, "test")
    if arrays["sequences"].shape[1] < E1_COND_FRAMES + 1:
        raise StageError(f"{args.data} has too few frames for a rollout; generate at least 3")
    spectrum, rollout = evaluate_e1(model, arrays, attrs["frequencies"], args.max_frequency, device)
    for frame in (spectrum, rollout):
        frame["freqseed"], frame["seed"] = args.freqseed, args.seed
    top = spectrum.nlargest(5, "character")
    log.info("largest P(f): %s; strong frequencies %s",
             ", ".join(f"{f}: {p:.2f}" for f, p in zip(top.frequency, top.character)),
             attrs["strong_frequencies"])
    log.info("rollout SSE at step 1: %.4f, step %d: %.4f", rollout.sse_mean.iloc[0],
             rollout.step.iloc[-1], rollout.sse_mean.iloc[-1])
    write_parquet(spectrum, SPECTRUM_SCHEMA, args.out_spectrum)
    write_parquet(rollout, ROLLOUT_SCHEMA, args.out_rollout)


def run_e2(args, device: torch.device) -> None:
    model, checkpoint = load_sequence_model(args.model, device)
    arrays = read_signals(args.data, "test", E2_COND_FRAMES + 1)
    metrics = e2_test_errors(model, arrays, device)
    log.info("%s seed %d noise %g: %s", args.model_name, args.seed, args.noise_std,
             ", ".join(f"{name} {value:.5f}" for name, value in metrics.items()))
    frame = pd.DataFrame({"metric": list(metrics), "value": list(metrics.values())})
    frame["model"], frame["seed"], frame["noise_std"] = args.model_name, args.seed, args.noise_std
    write_parquet(frame, E2_SCHEMA, args.out)


def run_dft(args) -> None:
    sequences = read_signals(args.data, "test")["sequences"].astype(np.float64)
    values = {
        "dft": dft_baseline_error(sequences, args.num_bins),
        "dft_exact": dft_baseline_error(sequences, args.num_bins, exact=True),
        "zero": mean_signal_energy(sequences),
    }
    log.info("DFT-%d baselines on frame 0 of %d test sequences: %s", args.num_bins,
             len(sequences), ", ".join(f"{name} {value:.4f}" for name, value in values.items()))
    frame = pd.DataFrame({"baseline": list(values), "value": list(values.values())})
    frame["num_bins"] = args.num_bins
    write_parquet(frame, DFT_SCHEMA, args.out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    e1 = commands.add_parser("e1", help="spectrum and rollout errors of an E1 U-NFT model")
    e1.add_argument("--freqseed", type=int, required=True)
    e1.add_argument("--max-frequency", type=int, default=64, help="last f of the spectrum")
    e1.add_argument("--out-spectrum", type=Path, required=True)
    e1.add_argument("--out-rollout", type=Path, required=True)
    e2 = commands.add_parser("e2", help="test error of an E2 model on the noise-free test set")
    e2.add_argument("--model-name", required=True, help="model name in the tables")
    e2.add_argument("--noise-std", type=float, required=True, help="training noise sigma")
    e2.add_argument("--out", type=Path, required=True)
    dft = commands.add_parser("dft", help="DFT baselines of the E2 test set")
    dft.add_argument("--num-bins", type=int, default=DFT_NUM_BINS, help="FFT bins kept")
    dft.add_argument("--out", type=Path, required=True)
    for sub in (e1, e2):
        sub.add_argument("--model", type=Path, required=True, help="model.pt of train_sequence")
        sub.add_argument("--seed", type=int, required=True, help="training seed (for the rows)")
        sub.add_argument("--threads", type=int, default=1)
        sub.add_argument("--device", default="auto")
    for sub in (e1, e2, dft):
        sub.add_argument("--data", type=Path, required=True,
                         help="signal HDF5 file with a test split")
    args = parser.parse_args(argv)

    if args.command == "dft":
        run_dft(args)
        return
    set_threads(args.threads)
    device = pick_device(args.device)
    torch.manual_seed(args.seed)
    (run_e1 if args.command == "e1" else run_e2)(args, device)


if __name__ == "__main__":
    run_main(main)
