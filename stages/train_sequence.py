"""Train one NFT sequence model (U-NFT, G-NFT or g-NFT) on a synthetic 1D signal set.

Usage: python -m stages.train_sequence --data seed1.h5 --frames 6 --cond-frames 4
       --architecture '{"transition": "known", "latent_dim": 1, "action_dim": 32, ...}'
       --optimisation '{"iterations": 100000, "batch_size": 16, "lr": 0.0001,
                        "lr_schedule": "step80_div15", "reconstruction_fraction": 1.0,
                        "log_interval": 1000}'
       --noise-std 0.05 --seed 1 --out-model model.pt --out-metrics metrics.parquet

Training runs for a number of Adam iterations over reshuffled passes of the train split. Each
batch of sequences (B, T, N) gets fresh Gaussian noise of standard deviation ``--noise-std``
on every point of every frame (inputs and targets alike, as the authors' data loader adds
it), drawn from a generator seeded with ``--seed``. The loss is the SSE-mean over all T
frames while the iteration is below ``reconstruction_fraction * iterations`` and over the
predicted frames afterwards (see stages/models/sequence.py). Every ``log_interval``
iterations one log line reports the mean training loss, the noise-free validation loss,
the learning rate, samples per second and elapsed time.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import pandas as pd
import torch
from tqdm import tqdm

from stages.common import (
    StageError,
    atomic_path,
    code_version,
    parse_json_arg,
    pick_device,
    run_main,
    seed_everything,
    set_threads,
)
from stages.models.sequence import build_sequence_model
from stages.signal_data import read_signal_attrs, read_signals

log = logging.getLogger("stages.train_sequence")

# Piecewise-constant learning-rate schedules: (fraction of the iterations, lr multiplier
# from there on). The authors' E2 code means to divide lr by 5 at 40% and by 15 at 80% of
# the iterations, but its if/else overwrites the first step, so what it runs is lr until
# 80% and lr/15 afterwards ("step80_div15"). "step40_div5_step80_div15" is the intended
# schedule, and "step80_div3" is the E1 code's lr/3 from 80%.
LR_SCHEDULES = {
    "constant": [],
    "step80_div3": [(0.8, 1 / 3)],
    "step80_div15": [(0.8, 1 / 15)],
    "step40_div5_step80_div15": [(0.4, 1 / 5), (0.8, 1 / 15)],
}
OPTIMISATION_KEYS = {"iterations", "batch_size", "lr", "lr_schedule", "reconstruction_fraction",
                     "log_interval"}
METRICS_SCHEMA = {
    "iteration": "int64",
    "train_loss": "float64",
    "val_loss": "float64",
    "lr": "float64",
    "reconstruction": "bool",
    "samples_per_s": "float64",
    "elapsed_s": "float64",
}
VAL_BATCH = 1000


def check_optimisation(options: dict) -> dict:
    missing, unknown = OPTIMISATION_KEYS - set(options), set(options) - OPTIMISATION_KEYS
    if missing or unknown:
        raise StageError(
            f"invalid --optimisation: missing {sorted(missing)}, unknown {sorted(unknown)}; "
            f"give exactly {sorted(OPTIMISATION_KEYS)}"
        )
    if options["lr_schedule"] not in LR_SCHEDULES:
        raise StageError(
            f"unknown lr_schedule {options['lr_schedule']!r}; use one of {sorted(LR_SCHEDULES)}"
        )
    if min(options["iterations"], options["batch_size"], options["log_interval"]) < 1:
        raise StageError(f"invalid --optimisation {options}: iterations, batch_size and "
                         "log_interval must be >= 1")
    return options


def learning_rate(iteration: int, options: dict) -> float:
    """Return the learning rate of 0-based ``iteration`` under the named schedule."""
    rate = options["lr"]
    for fraction, multiplier in LR_SCHEDULES[options["lr_schedule"]]:
        if iteration >= fraction * options["iterations"]:
            rate = options["lr"] * multiplier
    return rate


def batches(num_rows: int, batch_size: int, generator: torch.Generator):
    """Yield index batches (B,) forever, over a fresh permutation of the rows each pass."""
    while True:
        order = torch.randperm(num_rows, generator=generator)
        for start in range(0, num_rows, batch_size):
            yield order[start : start + batch_size]


@torch.no_grad()
def validation_loss(model, sequences: torch.Tensor, shifts: torch.Tensor, num_cond: int,
                    reconstruct: bool) -> float:
    """Compute the noise-free loss over a split, weighting each batch by its size."""
    model.eval()
    total = 0.0
    for start in range(0, len(shifts), VAL_BATCH):
        rows = slice(start, start + VAL_BATCH)
        parts = model.sequence_loss(sequences[rows], shifts[rows], num_cond, reconstruct)
        total += parts["loss"].item() * len(shifts[rows])
    model.train()
    return total / len(shifts)


def train(model, train_set: dict, val_set: dict, num_cond: int, noise_std: float,
          options: dict, seed: int, order_generator: torch.Generator,
          device: torch.device) -> pd.DataFrame:
    """Run the Adam loop and return one row of metrics per log interval.

    ``order_generator`` draws the batch order. The noise has its own generator, seeded with
    ``seed``, so the noise level does not change which sequences form a batch.
    """
    noise_generator = torch.Generator(device=device).manual_seed(seed)
    sequences = torch.from_numpy(train_set["sequences"]).to(device)
    shifts = torch.from_numpy(train_set["shifts"]).float().to(device)
    val_sequences = torch.from_numpy(val_set["sequences"]).to(device)
    val_shifts = torch.from_numpy(val_set["shifts"]).float().to(device)
    model.to(device).train()
    optimiser = torch.optim.Adam(model.parameters(), lr=options["lr"])
    reconstruction_end = options["reconstruction_fraction"] * options["iterations"]
    rows, total, seen = [], 0.0, 0
    start = interval_start = time.perf_counter()
    index_batches = batches(len(shifts), options["batch_size"], order_generator)
    bar = tqdm(range(options["iterations"]), desc="iterations", disable=None)
    for iteration in bar:
        rate = learning_rate(iteration, options)
        for group in optimiser.param_groups:
            group["lr"] = rate
        rows_index = next(index_batches).to(device)
        batch = sequences[rows_index]
        if noise_std > 0:
            noise = torch.randn(batch.shape, generator=noise_generator, device=device)
            batch = batch + noise_std * noise
        reconstruct = iteration < reconstruction_end
        loss = model.sequence_loss(batch, shifts[rows_index], num_cond, reconstruct)["loss"]
        if not torch.isfinite(loss):
            raise StageError(f"training loss became {loss.item()} at iteration {iteration}; "
                             f"lower lr (now {options['lr']}) or check the input data")
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        total += loss.item() * len(rows_index)
        seen += len(rows_index)
        done = iteration + 1
        if done % options["log_interval"] == 0 or done == options["iterations"]:
            now = time.perf_counter()
            val_loss = validation_loss(model, val_sequences, val_shifts, num_cond, reconstruct)
            row = {
                "iteration": done,
                "train_loss": total / seen,
                "val_loss": val_loss,
                "lr": rate,
                "reconstruction": reconstruct,
                "samples_per_s": seen / (now - interval_start),
                "elapsed_s": now - start,
            }
            rows.append(row)
            bar.set_postfix(loss=f"{row['train_loss']:.4f}")
            log.info("iteration %d/%d train_loss %.5f val_loss %.5f lr %.2e reconstruction %s "
                     "samples/s %.0f elapsed %.1fs", done, options["iterations"],
                     row["train_loss"], row["val_loss"], rate, reconstruct, row["samples_per_s"],
                     row["elapsed_s"])
            total, seen, interval_start = 0.0, 0, time.perf_counter()
    return pd.DataFrame(rows).astype(METRICS_SCHEMA)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, type=Path, help="signal HDF5 file (train, val)")
    parser.add_argument("--frames", type=int, required=True, help="frames T per training sequence")
    parser.add_argument("--cond-frames", type=int, required=True, help="conditioning frames T_c")
    parser.add_argument("--architecture", required=True,
                        help="JSON object of SequenceConfig fields")
    parser.add_argument("--optimisation", required=True, help=f"JSON: {sorted(OPTIMISATION_KEYS)}")
    parser.add_argument("--noise-std", type=float, default=0.0, help="training noise sigma")
    parser.add_argument("--seed", type=int, required=True, help="seed of init, batches and noise")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for torch")
    parser.add_argument("--device", default="auto", help="auto (CUDA if present), cpu or cuda")
    parser.add_argument("--out-model", required=True, type=Path)
    parser.add_argument("--out-metrics", required=True, type=Path)
    args = parser.parse_args(argv)

    architecture = parse_json_arg(args.architecture, "architecture")
    options = check_optimisation(parse_json_arg(args.optimisation, "optimisation"))
    if args.noise_std < 0:
        raise StageError(f"invalid --noise-std {args.noise_std}: must be >= 0")
    if not 1 <= args.cond_frames < args.frames:
        raise StageError(
            f"invalid --cond-frames {args.cond_frames}: need 1 <= T_c < T = {args.frames}"
        )
    set_threads(args.threads)
    device = pick_device(args.device)
    order_generator = seed_everything(args.seed)
    try:
        model = build_sequence_model(architecture)
    except (TypeError, ValueError) as error:
        raise StageError(f"invalid --architecture {args.architecture}: {error}") from error
    train_set = read_signals(args.data, "train", args.frames)
    val_set = read_signals(args.data, "val", args.frames)
    log.info("training %s NFT (%d parameters) on %s: %d train / %d val sequences, T %d, T_c %d, "
             "noise %g, device %s, %d threads, %s", architecture.get("transition"),
             sum(p.numel() for p in model.parameters()), args.data, len(train_set["shifts"]),
             len(val_set["shifts"]), args.frames, args.cond_frames, args.noise_std, device,
             torch.get_num_threads(), json.dumps(options, sort_keys=True))
    metrics = train(model, train_set, val_set, args.cond_frames, args.noise_std, options,
                    args.seed, order_generator, device)

    attrs = read_signal_attrs(args.data)
    checkpoint = {
        "architecture": architecture,
        "optimisation": options,
        "frames": args.frames,
        "cond_frames": args.cond_frames,
        "noise_std": args.noise_std,
        "seed": args.seed,
        "dataset": str(args.data),
        "dataset_attrs": {key: attrs[key] for key in ("experiment", "frequencies", "num_data")},
        "code_version": code_version(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    with atomic_path(args.out_model) as tmp:
        torch.save(checkpoint, tmp)
    with atomic_path(args.out_metrics) as tmp:
        metrics.to_parquet(tmp, index=False)
    log.info("saved %s and %s", args.out_model, args.out_metrics)


if __name__ == "__main__":
    run_main(main)
