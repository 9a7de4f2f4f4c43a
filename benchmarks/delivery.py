"""Data delivery: rows per second that reach the training loop.

Pipeline: stages.h5data.RotatedViews with stages.train.make_loader, which fancy-indexes whole
batches of precomputed rotations held in memory. Reference: a Dataset that rotates one image
per ``__getitem__`` with torchvision's functional ``rotate`` at a fresh random angle (nearest
interpolation) and a DataLoader with default collation, the on-the-fly pattern that rotates
every image again in every epoch. Both run in this process (0 workers) with the same torch
thread count and deliver the same batch content.
"""

from __future__ import annotations

import logging
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as TF

from benchmarks.data import PipelineSettings, mnist_manifest, write_rotated_mnist
from benchmarks.report import Section, SummaryRow
from benchmarks.timing import Ratio, Series, measure, thread_slowdown_note

log = logging.getLogger("benchmarks")

TARGET_RATIO = 20.0


@dataclass(frozen=True)
class DeliverySizes:
    """Sizes and repetitions of one delivery run."""

    max_images: int  # source images drawn; the train split is their first fraction
    min_seconds: float  # minimum duration of one repetition
    repeats: int
    warmup: int


class PerSampleRotation(Dataset):
    """Rotate one uint8 image per item, with a fresh uniform angle for each of ``views`` copies.

    Returns the same keys, shapes and dtypes as one row of RotatedViews: ``images``
    (V, 1, H, W) and ``canonical`` (1, H, W) as floats in [0, 1], ``angles`` (V,) in radians
    and ``labels``.
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, views: int, seed: int) -> None:
        self.images = torch.from_numpy(images).unsqueeze(1)  # (N, 1, H, W) uint8
        self.labels = torch.from_numpy(labels)
        self.views = views
        self.random = random.Random(seed)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        image = self.images[index]
        degrees = [self.random.uniform(0.0, 360.0) for _ in range(self.views)]
        copies = [
            TF.rotate(image, angle, interpolation=InterpolationMode.NEAREST) for angle in degrees
        ]
        return {
            "images": torch.stack(copies).float().div_(255),
            "angles": torch.tensor([math.radians(angle) for angle in degrees], dtype=torch.float32),
            "labels": self.labels[index],
            "canonical": image.float().div_(255),
        }


def deliver_for(loader, min_seconds: float) -> tuple[float, int]:
    """Draw batches, epoch after epoch, until ``min_seconds`` have passed.

    Returns the elapsed seconds and the rows delivered. Bounding the time instead of the work
    keeps the slow reference short and the fast pipeline long enough to time.
    """
    rows, start = 0, time.perf_counter()
    while True:
        for batch in loader:
            rows += len(batch["labels"])
            elapsed = time.perf_counter() - start
            if elapsed >= min_seconds:
                return elapsed, rows


def run(settings: PipelineSettings, data_root: Path, scratch: Path, threads: list[int],
        sizes: DeliverySizes) -> Section:
    from stages.h5data import RotatedViews, load_split
    from stages.train import make_loader

    path = write_rotated_mnist(
        mnist_manifest(data_root), settings, scratch / "delivery.h5", sizes.max_images
    )
    split = load_split(path, "train")
    rows = len(split["labels"])
    batch_size = settings.batch_size

    # The one-time read of the split into memory, which the first batch of a run triggers.
    load_start = time.perf_counter()
    pipeline_set = RotatedViews(path, "train")
    pipeline_set.arrays()
    load_seconds = time.perf_counter() - load_start

    generator = torch.Generator().manual_seed(0)
    pipeline_loader = make_loader(pipeline_set, batch_size, True, generator)
    reference_set = PerSampleRotation(
        split["canonical"], split["labels"], settings.views, seed=0
    )
    reference_loader = DataLoader(
        reference_set, batch_size=batch_size, shuffle=True, num_workers=0,
        generator=torch.Generator().manual_seed(0),
    )
    check_same_batches(next(iter(pipeline_loader)), next(iter(reference_loader)))

    section = Section(
        title="1. Data delivery",
        description=(
            "Rows per second delivered to the training loop, one row being the "
            f"{settings.views} rotated copies of one image with its angles, label and "
            "unrotated image. Pipeline: `stages.h5data.RotatedViews` + "
            "`stages.train.make_loader` (precomputed rotations, whole batches by fancy "
            "indexing). Reference: a `Dataset` whose `__getitem__` rotates one uint8 28 x 28 "
            "image with `torchvision.transforms.functional.rotate` (nearest interpolation) at "
            "a fresh random angle per copy, batched by a `DataLoader` with default collation. "
            f"Both: batch size {batch_size}, shuffled, 0 workers, the same "
            f"`torch.set_num_threads`, {rows} rows of the train split of rotated MNIST "
            "(official test images)."
        ),
    )
    original_threads = torch.get_num_threads()
    by_threads: dict[int, tuple[Series, Series]] = {}
    try:
        for count in threads:
            torch.set_num_threads(count)
            log.info("data delivery, %d thread(s)", count)
            times = measure(
                {
                    "pipeline": lambda: deliver_for(pipeline_loader, sizes.min_seconds),
                    "reference": lambda: deliver_for(reference_loader, sizes.min_seconds),
                },
                sizes.repeats, sizes.warmup,
            )
            pipeline = Series(
                f"pipeline (RotatedViews + make_loader), {count} thread(s)",
                times["pipeline"].seconds, times["pipeline"].work, "rows/s",
            )
            reference = Series(
                f"reference (per-sample torchvision rotate), {count} thread(s)",
                times["reference"].seconds, times["reference"].work, "rows/s",
            )
            ratio = Ratio.of(pipeline, reference)
            section.series += [pipeline, reference]
            by_threads[count] = (pipeline, reference)
            section.summary.append(SummaryRow(
                f"delivery speed-up, {count} thread(s)", ratio.text(), f">= {TARGET_RATIO:g}x",
                ratio.median >= TARGET_RATIO,
            ))
            per_row_us = 1e6 / reference.median
            if ratio.median < TARGET_RATIO:
                section.notes.append(
                    f"Target missed at {count} thread(s): the reference spends "
                    f"{per_row_us:.0f} us per row and the pipeline "
                    f"{1e6 / pipeline.median:.1f} us, a ratio of {ratio.median:.1f}x."
                )
    finally:
        torch.set_num_threads(original_threads)
    slowdown = thread_slowdown_note(by_threads, "rows/s")
    if slowdown:
        section.notes.append(slowdown)
    section.notes.append(
        f"Reading the split into memory took {load_seconds:.3f} s for {rows} rows. A training "
        "run pays it once, before its first batch, and the rates above leave it out."
    )
    section.notes.append(
        f"Each repetition draws batches until at least {sizes.min_seconds:g} s have passed "
        "and counts the rows; "
        f"{sizes.warmup} warm-up round(s) before {sizes.repeats} timed, interleaved rounds."
    )
    return section


def check_same_batches(pipeline: dict, reference: dict) -> None:
    """Fail when the two loaders would not deliver batches of equal shapes and dtypes."""
    for key in ("images", "angles", "labels", "canonical"):
        same = (pipeline[key].shape == reference[key].shape
                and pipeline[key].dtype == reference[key].dtype)
        if not same:
            raise AssertionError(
                f"delivery benchmark: batch key {key!r} differs, pipeline "
                f"{tuple(pipeline[key].shape)} {pipeline[key].dtype}, reference "
                f"{tuple(reference[key].shape)} {reference[key].dtype}"
            )
