"""Train one model on a rotated-image dataset and save it with its parameters and metrics.

Usage: python -m stages.train --data mnist.h5 --kind gnft --architecture '{"latent_dim": 32}'
       --optimisation '{"epochs": 5, "batch_size": 128, "lr": 0.001, "weight_decay": 0.05}'
       --seed 0 --threads 2 --out-model model.pt --out-metrics metrics.parquet

Prints a progress bar when attached to a terminal and one log line per epoch (training and
validation loss, samples per second, elapsed time). The saved file contains plain types and
tensors only, so ``torch.load(path, weights_only=True)`` reads it.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler
from tqdm import tqdm

from stages import checkpoint, tables
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
from stages.h5data import RotatedViews, read_attrs
from stages.models import build_model

log = logging.getLogger("stages.train")

OPTIMISATION_KEYS = {"epochs", "batch_size", "lr", "weight_decay"}
METRICS_SCHEMA = {
    "epoch": "int64",
    "train_loss": "float64",
    "val_loss": "float64",
    "samples_per_s": "float64",
    "elapsed_s": "float64",
}


def check_optimisation(options: dict) -> dict:
    missing, unknown = OPTIMISATION_KEYS - set(options), set(options) - OPTIMISATION_KEYS
    if missing or unknown:
        raise StageError(
            f"invalid --optimisation: missing {sorted(missing)}, unknown {sorted(unknown)}; "
            f"give exactly {sorted(OPTIMISATION_KEYS)}"
        )
    if options["epochs"] < 1 or options["batch_size"] < 1:
        raise StageError(f"invalid --optimisation {options}: epochs and batch_size must be >= 1")
    return options


def seed_worker(worker_id: int) -> None:
    """Give each DataLoader worker its own NumPy and Python RNG stream.

    torch already seeds worker ``i`` with base_seed + i, where the base seed comes from the
    loader's generator; NumPy and ``random`` are derived from it here.
    """
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def make_loader(dataset: RotatedViews, batch_size: int, shuffle: bool,
                generator: torch.Generator | None = None, workers: int = 0) -> DataLoader:
    """Yield whole batches by fancy indexing the in-memory split, not one item at a time.

    The batch order comes from the sampler in the main process, so it does not depend on the
    number of workers. Each worker loads the split itself on its first batch.
    """
    base = RandomSampler(dataset, generator=generator) if shuffle else SequentialSampler(dataset)
    sampler = BatchSampler(base, batch_size=batch_size, drop_last=False)
    # Worker seeds come from a generator of their own, so that starting workers draws neither
    # from the sampler's generator nor from torch's global RNG.
    seed = generator.initial_seed() + 1 if generator is not None else 0
    worker_generator = torch.Generator().manual_seed(seed) if workers else None
    return DataLoader(dataset, sampler=sampler, batch_size=None, num_workers=workers,
                      worker_init_fn=seed_worker if workers else None,
                      generator=worker_generator, persistent_workers=workers > 0)


def batch_to(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {key: tensor.to(device, non_blocking=True) for key, tensor in batch.items()}


@torch.no_grad()
def mean_loss(model, loader: DataLoader, device: torch.device) -> float:
    model.eval()
    total, count = 0.0, 0
    for batch in loader:
        batch = batch_to(batch, device)
        size = len(batch["labels"])
        total += model.training_loss(batch).item() * size
        count += size
    return total / count


def train(model, train_set: RotatedViews, val_set: RotatedViews, options: dict,
          generator: torch.Generator, device: torch.device,
          checkpoint_path: Path | None = None, fingerprint: str = "",
          workers: int = 0) -> pd.DataFrame:
    """Run the training loop and return one row of metrics per epoch.

    With ``checkpoint_path``, the loop saves a checkpoint after every epoch and first resumes
    from an existing one with the same ``fingerprint`` (see stages.checkpoint). On the CPU a
    resumed run ends with the same weights and losses as an uninterrupted one.
    """
    model.to(device)
    optimiser = torch.optim.AdamW(
        model.parameters(), lr=options["lr"], weight_decay=options["weight_decay"]
    )
    train_loader = make_loader(train_set, options["batch_size"], True, generator, workers)
    val_loader = make_loader(val_set, options["batch_size"], False, workers=workers)
    rows, first_epoch, elapsed_before = [], 1, 0.0
    state = checkpoint.load_matching(checkpoint_path, fingerprint) if checkpoint_path else None
    if state is not None:
        model.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        checkpoint.restore_rng(state["rng"], generator)
        rows, first_epoch = state["rows"], state["epoch"] + 1
        elapsed_before = rows[-1]["elapsed_s"] if rows else 0.0
        log.info("resuming from %s after epoch %d", checkpoint_path, state["epoch"])
    start = time.perf_counter() - elapsed_before
    for epoch in range(first_epoch, options["epochs"] + 1):
        model.train()
        epoch_start, total, seen = time.perf_counter(), 0.0, 0
        bar = tqdm(train_loader, desc=f"epoch {epoch}", leave=False, disable=None)
        for batch in bar:
            batch = batch_to(batch, device)
            loss = model.training_loss(batch)
            if not torch.isfinite(loss):
                raise StageError(
                    f"training loss became {loss.item()} at epoch {epoch}; lower lr "
                    f"(now {options['lr']}) or check the input data"
                )
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            total += loss.item() * len(batch["labels"])
            seen += len(batch["labels"])
            bar.set_postfix(loss=f"{loss.item():.4f}")
        rate = seen / (time.perf_counter() - epoch_start)
        val_loss = mean_loss(model, val_loader, device)
        row = {
            "epoch": epoch,
            "train_loss": total / seen,
            "val_loss": val_loss,
            "samples_per_s": rate,
            "elapsed_s": time.perf_counter() - start,
        }
        rows.append(row)
        log.info(
            "epoch %d/%d train_loss %.5f val_loss %.5f samples/s %.0f elapsed %.1fs",
            epoch, options["epochs"], row["train_loss"], val_loss, rate, row["elapsed_s"],
        )
        if checkpoint_path is not None:
            checkpoint.save(checkpoint_path, {
                "fingerprint": fingerprint,
                "epoch": epoch,
                "rows": rows,
                "model": model.state_dict(),
                "optimiser": optimiser.state_dict(),
                "rng": checkpoint.capture_rng(generator),
            })
    return pd.DataFrame(rows).astype(METRICS_SCHEMA)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, type=Path, help="dataset HDF5 file")
    parser.add_argument("--kind", required=True, help="model kind, e.g. gnft")
    parser.add_argument("--architecture", default="{}", help="JSON object of model parameters")
    parser.add_argument("--optimisation", required=True, help="JSON: epochs, batch_size, lr, weight_decay")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--tuned", type=Path, default=None,
                        help="best.json of stages.tune; its parameters override the given ones")
    parser.add_argument("--occlusion", action="store_true",
                        help="occlude the top-left quadrant of every copy but the last")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for torch")
    parser.add_argument("--workers", type=int, default=0,
                        help="DataLoader worker processes (0 loads in the training process)")
    parser.add_argument("--device", default="auto", help="auto (CUDA if present), cpu or cuda")
    parser.add_argument("--out-model", required=True, type=Path)
    parser.add_argument("--out-metrics", required=True, type=Path)
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="rolling checkpoint (default: checkpoint.pt beside --out-model)")
    args = parser.parse_args(argv)

    architecture = parse_json_arg(args.architecture, "architecture")
    options = parse_json_arg(args.optimisation, "optimisation")
    if args.tuned is not None:
        tuned = json.loads(args.tuned.read_text())
        architecture = {**architecture, **tuned["architecture"]}
        options = {**options, **tuned["optimisation"]}
        log.info("using tuned parameters from %s: %s", args.tuned, json.dumps(tuned, sort_keys=True))
    options = check_optimisation(options)
    set_threads(args.threads)
    device = pick_device(args.device)
    generator = seed_everything(args.seed)
    model = build_model(args.kind, architecture)
    train_set = RotatedViews(args.data, "train", args.occlusion)
    val_set = RotatedViews(args.data, "val", args.occlusion)
    if len(train_set) == 0 or len(val_set) == 0:
        raise StageError(
            f"{args.data} has {len(train_set)} training and {len(val_set)} validation images; "
            "both must be non-empty, so raise max_images or the split fractions"
        )
    log.info(
        "training %s (%d parameters) on %s: %d train / %d val images, device %s, %d threads, %s",
        args.kind, sum(p.numel() for p in model.parameters()), args.data, len(train_set),
        len(val_set), device, torch.get_num_threads(), json.dumps(options, sort_keys=True),
    )
    checkpoint_path = args.checkpoint or args.out_model.with_name("checkpoint.pt")
    fingerprint = checkpoint.run_fingerprint(
        {"kind": args.kind, "architecture": architecture, "optimisation": options,
         "seed": args.seed, "occlusion": args.occlusion, "device": device.type},
        args.data,
    )
    metrics = train(model, train_set, val_set, options, generator, device,
                    checkpoint_path, fingerprint, args.workers)

    saved = {
        "kind": args.kind,
        "architecture": architecture,
        "optimisation": options,
        "seed": args.seed,
        "occlusion": args.occlusion,
        "dataset": str(args.data),
        "dataset_attrs": {k: v for k, v in read_attrs(args.data).items() if k in ("dataset", "seed", "views")},
        "code_version": code_version(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    with atomic_path(args.out_model) as tmp:
        torch.save(saved, tmp)
    tables.write_parquet(metrics, tables.TRAINING_METRICS, args.out_metrics)
    # The outputs are complete, so the checkpoint can no longer save any work.
    checkpoint_path.unlink(missing_ok=True)
    log.info("saved %s and %s", args.out_model, args.out_metrics)


if __name__ == "__main__":
    run_main(main)
