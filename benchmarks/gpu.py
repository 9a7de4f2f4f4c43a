"""GPU: g-NFT training speed at paper scale and the projected time of its full schedule.

Runs stages.train.train on CUDA with the paper scale's batch size and g-NFT architecture from
config.yaml, on rotated MNIST built from the official test split with the split fractions of
config.yaml. The first epoch is a warm-up (CUDA context, cuDNN algorithm search); each later
epoch is one repetition. Skipped when CUDA is not available.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from benchmarks.data import PipelineSettings, mnist_manifest, write_rotated_mnist
from benchmarks.report import Section, SummaryRow
from benchmarks.timing import Series

log = logging.getLogger("benchmarks")


@dataclass(frozen=True)
class GpuSizes:
    max_images: int
    epochs: int  # timed epochs after one warm-up epoch


def run(settings: PipelineSettings, data_root: Path, scratch: Path, sizes: GpuSizes,
        device: torch.device | None = None) -> Section:
    """Measure on ``device``, by default the first CUDA device, or skip without CUDA."""
    from stages.checkpoint import run_fingerprint
    from stages.common import seed_everything
    from stages.h5data import RotatedViews
    from stages.models import build_model
    from stages.models.gnft import GNFTConfig
    from stages.train import train

    architecture = settings.gnft_architecture
    config = GNFTConfig(**architecture)
    latent = f"{config.latent_dim} x {1 + 2 * config.max_frequency}"
    section = Section(
        title="6. GPU training",
        description=(
            f"Samples per second of g-NFT training (`stages.train.train`, latent {latent}, "
            f"batch {settings.paper_batch_size}, AdamW lr {settings.paper_lr} weight decay "
            f"{settings.paper_weight_decay}) on one GPU, and the projected time of "
            f"{settings.paper_epochs} epochs over {settings.paper_train_rows:,} training "
            "images."
        ),
    )
    if device is None:
        if not torch.cuda.is_available():
            section.skipped = "CUDA is not available here (`torch.cuda.is_available()` is False)."
            return section
        device = torch.device("cuda")
    path = write_rotated_mnist(
        mnist_manifest(data_root), settings, scratch / "gpu.h5", sizes.max_images
    )
    options = {
        "epochs": 1 + sizes.epochs,
        "batch_size": settings.paper_batch_size,
        "lr": settings.paper_lr,
        "weight_decay": settings.paper_weight_decay,
    }
    generator = seed_everything(0)
    model = build_model("gnft", architecture)
    train_set, val_set = RotatedViews(path, "train"), RotatedViews(path, "val")
    fingerprint = run_fingerprint({"benchmark": "gpu"}, path)
    checkpoint_path = scratch / "gpu-checkpoint.pt"
    checkpoint_path.unlink(missing_ok=True)
    log.info("GPU training on %s: %d epochs of %d rows", device, options["epochs"], len(train_set))
    metrics = train(model, train_set, val_set, options, generator, device, checkpoint_path,
                    fingerprint)
    checkpoint_path.unlink(missing_ok=True)

    rows = len(train_set)
    timed = metrics.iloc[1:]
    train_seconds = [rows / rate for rate in timed["samples_per_s"]]
    epoch_seconds = metrics["elapsed_s"].diff().iloc[1:].tolist()
    training = Series(f"training batches only ({device})", train_seconds, rows, "samples/s")
    whole = Series(
        f"whole epoch: training, validation, checkpoint ({device})", epoch_seconds, rows,
        "samples/s",
    )
    section.series = [training, whole]
    projected_hours = settings.paper_epochs * settings.paper_train_rows / whole.median / 3600
    section.summary += [
        SummaryRow("training speed", f"{training.median:,.0f} samples/s "
                   f"(range {training.minimum:,.0f}-{training.maximum:,.0f})"),
        SummaryRow(
            f"projected {settings.paper_epochs} epochs x {settings.paper_train_rows:,} images",
            f"{projected_hours:.2f} h per model and seed",
        ),
    ]
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else str(device)
    section.notes.append(
        f"Device: {name}. {rows} training and {len(val_set)} validation rows (the split "
        "fractions of config.yaml, so validation takes the same share of an epoch as at paper "
        "scale). The projection scales the median whole-epoch rate, so it includes validation "
        "and the checkpoint of every epoch."
    )
    return section
