"""Training overhead: the training stage's loop against a bare PyTorch loop.

Pipeline: stages.train.train on RotatedViews splits, with the stage's logging set up by
stages.common.setup_logging, its tqdm progress bar and its checkpoint after every epoch.
Reference: a loop over tensors already in memory with the same g-NFT network, batch size,
AdamW settings, epochs and validation pass, and nothing else. Both run on the CPU with the
same torch thread count, and both times include the validation pass of every epoch.
"""

from __future__ import annotations

import contextlib
import io
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from benchmarks.data import PipelineSettings, mnist_manifest, write_rotated_mnist
from benchmarks.report import Section, SummaryRow
from benchmarks.timing import Ratio, Series, measure

log = logging.getLogger("benchmarks")

TARGET_RATIO = 0.9


@dataclass(frozen=True)
class TrainingSizes:
    # Source images drawn (the split fractions of config.yaml apply); None draws as many as
    # the demo scale (rotation.max_images of config.yaml), so an epoch is the demo's epoch.
    max_images: int | None
    epochs: int
    repeats: int
    warmup: int


class TerminalSink(io.TextIOBase):
    """A text stream that reports itself as a terminal and discards what is written.

    With stderr redirected to it, tqdm (``disable=None``) draws its bar as in an interactive
    ``python -m stages.train``, without the cost of a real terminal's output.
    """

    encoding = "utf-8"

    def __init__(self) -> None:
        super().__init__()
        self.characters = 0

    def write(self, text: str) -> int:
        self.characters += len(text)
        return len(text)

    def isatty(self) -> bool:
        return True


@contextlib.contextmanager
def stage_stderr(stream):
    """Redirect stderr to ``stream`` and set up logging as a stage process does."""
    from stages.common import setup_logging

    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    root.handlers = []
    try:
        with contextlib.redirect_stderr(stream):
            setup_logging()
            yield
    finally:
        root.handlers = saved_handlers
        root.setLevel(saved_level)


class StageTraining:
    """Callable that runs stages.train.train once with stderr sent to ``stream``."""

    def __init__(self, path: Path, options: dict, architecture: dict, checkpoint_path: Path,
                 stream) -> None:
        from stages.checkpoint import run_fingerprint

        self.path, self.options, self.architecture = path, options, architecture
        self.checkpoint_path, self.stream = checkpoint_path, stream
        self.fingerprint = run_fingerprint({"benchmark": "training"}, path)
        self.reported_rates: list[float] = []

    def __call__(self) -> float:
        from stages.common import seed_everything
        from stages.h5data import RotatedViews
        from stages.models import build_model
        from stages.train import train

        generator = seed_everything(0)
        model = build_model("gnft", self.architecture)
        train_set = RotatedViews(self.path, "train")
        val_set = RotatedViews(self.path, "val")
        # A leftover checkpoint with this fingerprint would make train() resume, not train.
        self.checkpoint_path.unlink(missing_ok=True)
        with stage_stderr(self.stream):
            start = time.perf_counter()
            metrics = train(model, train_set, val_set, self.options, generator,
                            torch.device("cpu"), self.checkpoint_path, self.fingerprint)
            elapsed = time.perf_counter() - start
        self.checkpoint_path.unlink(missing_ok=True)
        self.reported_rates += metrics["samples_per_s"].tolist()
        return elapsed


def split_tensors(split: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """Convert one split's arrays to the float and integer tensors that a model consumes."""
    return {
        "images": torch.from_numpy(split["images"]).float().div_(255).unsqueeze(2),
        "angles": torch.from_numpy(split["angles"]),
        "labels": torch.from_numpy(split["labels"]),
        "canonical": torch.from_numpy(split["canonical"]).float().div_(255).unsqueeze(1),
    }


class BareTraining:
    """Callable that trains the same network with a minimal loop over in-memory tensors."""

    def __init__(self, path: Path, options: dict, architecture: dict) -> None:
        from stages.h5data import load_split

        self.train = split_tensors(load_split(path, "train"))
        self.val = split_tensors(load_split(path, "val"))
        self.options, self.architecture = options, architecture
        self.model = None
        self.optimiser = None

    def __call__(self) -> float:
        from stages.common import seed_everything
        from stages.models import build_model

        generator = seed_everything(0)
        model = build_model("gnft", self.architecture)
        optimiser = torch.optim.AdamW(
            model.parameters(), lr=self.options["lr"], weight_decay=self.options["weight_decay"]
        )
        batch_size, rows = self.options["batch_size"], len(self.train["labels"])
        start = time.perf_counter()
        for _ in range(self.options["epochs"]):
            model.train()
            order = torch.randperm(rows, generator=generator)
            for begin in range(0, rows, batch_size):
                index = order[begin:begin + batch_size]
                batch = {key: tensor[index] for key, tensor in self.train.items()}
                loss = model.training_loss(batch)
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
            model.eval()
            val_total = 0.0
            with torch.no_grad():
                for begin in range(0, len(self.val["labels"]), batch_size):
                    rows_slice = slice(begin, begin + batch_size)
                    batch = {key: tensor[rows_slice] for key, tensor in self.val.items()}
                    val_total += model.training_loss(batch).item()
        elapsed = time.perf_counter() - start
        self.model, self.optimiser = model, optimiser
        return elapsed


def checkpoint_seconds(model, optimiser, path: Path, repeats: int = 3) -> float:
    """Return the median time of one stages.checkpoint.save of this model's training state."""
    from stages import checkpoint

    generator = torch.Generator().manual_seed(0)
    state = {
        "fingerprint": "benchmark",
        "epoch": 1,
        "rows": [],
        "model": model.state_dict(),
        "optimiser": optimiser.state_dict(),
        "rng": checkpoint.capture_rng(generator),
    }
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        checkpoint.save(path, state)
        times.append(time.perf_counter() - start)
    path.unlink(missing_ok=True)
    return float(np.median(times))


def run(settings: PipelineSettings, data_root: Path, scratch: Path, threads: int,
        sizes: TrainingSizes) -> Section:
    max_images = settings.demo_max_images if sizes.max_images is None else sizes.max_images
    path = write_rotated_mnist(
        mnist_manifest(data_root), settings, scratch / "training.h5", max_images
    )
    options = {
        "epochs": sizes.epochs,
        "batch_size": settings.batch_size,
        "lr": settings.lr,
        "weight_decay": settings.weight_decay,
    }
    architecture = settings.gnft_architecture
    bare = BareTraining(path, options, architecture)
    train_rows = len(bare.train["labels"])
    val_rows = len(bare.val["labels"])
    original_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with open(scratch / "training-stage.log", "w") as log_file:
            stage_logged = StageTraining(
                path, options, architecture, scratch / "ckpt-log.pt", log_file
            )
            stage_terminal = StageTraining(
                path, options, architecture, scratch / "ckpt-tty.pt", TerminalSink()
            )
            log.info("training overhead, %d thread(s)", threads)
            times = measure(
                {"bare": bare, "stage, log file": stage_logged,
                 "stage, terminal": stage_terminal},
                sizes.repeats, sizes.warmup,
            )
        save_seconds = checkpoint_seconds(bare.model, bare.optimiser, scratch / "ckpt-save.pt")
    finally:
        torch.set_num_threads(original_threads)

    samples = train_rows * sizes.epochs
    reference = Series(f"bare loop over in-memory tensors, {threads} thread(s)",
                       times["bare"].seconds, samples, "samples/s")
    logged = Series(
        f"stage `train()`, stderr to a log file (tqdm off, as in a workflow job), "
        f"{threads} thread(s)", times["stage, log file"].seconds, samples, "samples/s",
    )
    interactive = Series(
        f"stage `train()`, stderr a terminal (tqdm on), {threads} thread(s)",
        times["stage, terminal"].seconds, samples, "samples/s",
    )
    section = Section(
        title="3. Training overhead",
        description=(
            "Training samples per second of g-NFT "
            f"({', '.join(f'{k} {v}' for k, v in architecture.items())}) over whole epochs "
            "including the validation pass. Pipeline: `stages.train.train` on "
            "`RotatedViews` splits, with the stage's logging, its tqdm bar and its checkpoint "
            "after every epoch. Reference: a bare loop over tensors already in memory "
            "(shuffled index batches, forward, backward, AdamW step, then the validation "
            f"loss). Both: batch size {options['batch_size']}, AdamW lr {options['lr']} "
            f"weight decay {options['weight_decay']}, {sizes.epochs} epoch(s) of {train_rows} "
            f"training and {val_rows} validation rows, CPU, `torch.set_num_threads({threads})`."
        ),
        series=[logged, interactive, reference],
    )
    for series in (logged, interactive):
        ratio = Ratio.of(series, reference)
        setting = "log file" if series is logged else "terminal"
        section.summary.append(SummaryRow(
            f"stage loop / bare loop, {setting}", ratio.text(), f">= {TARGET_RATIO:g}x",
            ratio.median >= TARGET_RATIO,
        ))

    epoch_seconds = train_rows / reference.median
    section.notes.append(
        f"Fixed cost of the stage per epoch: one checkpoint save of {save_seconds:.3f} s "
        f"(model and AdamW state). The bare loop's epoch takes {epoch_seconds:.2f} s here, so "
        f"the save alone is {save_seconds / epoch_seconds:.1%} of it. The first epoch also "
        "reads both splits from the HDF5 file."
    )
    for name, rows in (("demo", settings.demo_train_rows), ("paper", settings.paper_train_rows)):
        scaled_epoch = rows / reference.median
        section.notes.append(
            f"Estimate for the {name} scale's epoch of {rows:,} training rows: the checkpoint "
            f"save is {save_seconds / (scaled_epoch + save_seconds):.2%} of the epoch time "
            "(from the bare loop's rate above)."
        )
    if stage_logged.reported_rates:
        reported = float(np.median(stage_logged.reported_rates[sizes.warmup * sizes.epochs:]))
        section.notes.append(
            f"The stage's own `samples_per_s` metric (training batches only, no validation) "
            f"has median {reported:,.0f} samples/s in the log-file runs."
        )
    saves = sizes.epochs * save_seconds
    spread = (reference.maximum - reference.minimum) / reference.median
    for series, row in zip((logged, interactive), section.summary, strict=True):
        if row.met is not False:
            continue
        extra = series.median_seconds - reference.median_seconds
        text = (
            f"Target missed for '{row.figure}': the stage's median run takes {extra:.2f} s "
            f"({extra / reference.median_seconds:.0%}) longer than the bare loop's, and the "
            f"{sizes.epochs} checkpoint save(s) account for about {saves:.2f} s of that."
        )
        if extra / reference.median_seconds <= spread:
            text += (
                f" The bare loop's own repetitions spread over {spread:.0%} of its median, so "
                "on this machine the difference is within the run-to-run noise."
            )
        else:
            text += (
                " The rest is the stage's per-batch work (`loss.item()`, the finiteness check, "
                "batches from `RotatedViews`), which this benchmark does not split further."
            )
        section.notes.append(text)
    return section
