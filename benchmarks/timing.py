"""Repeated timing with a warm-up, the figures derived from it, and the machine description."""

from __future__ import annotations

import logging
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("benchmarks")

REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Series:
    """Wall times of the repetitions of one measured configuration.

    ``work`` is the number of ``unit`` items (images, rows, samples) processed by each
    repetition: one number for all of them, or one per repetition. A series whose ``work`` is
    None is a plain duration, so lower is better.
    """

    label: str
    seconds: list[float]
    work: float | list[float] | None = None
    unit: str = "s"

    @property
    def is_rate(self) -> bool:
        return self.work is not None

    def values(self) -> list[float]:
        """Rates (work per second) for a rate series, seconds otherwise."""
        if not self.is_rate:
            return list(self.seconds)
        work = self.work if isinstance(self.work, list) else [self.work] * len(self.seconds)
        return [items / seconds for items, seconds in zip(work, self.seconds, strict=True)]

    @property
    def median(self) -> float:
        return statistics.median(self.values())

    @property
    def median_seconds(self) -> float:
        return statistics.median(self.seconds)

    @property
    def minimum(self) -> float:
        return min(self.values())

    @property
    def maximum(self) -> float:
        return max(self.values())


@dataclass
class Ratio:
    """Pipeline rate over reference rate: the ratio of the medians and its extreme range."""

    median: float
    low: float
    high: float

    @classmethod
    def of(cls, pipeline: Series, reference: Series) -> Ratio:
        return cls(
            median=pipeline.median / reference.median,
            low=pipeline.minimum / reference.maximum,
            high=pipeline.maximum / reference.minimum,
        )

    def text(self) -> str:
        return f"{self.median:.2f}x (range {self.low:.2f}-{self.high:.2f}x)"


Measured = float | tuple[float, float] | None


@dataclass
class Timings:
    """Seconds of the timed repetitions of one function, and the work each reported."""

    seconds: list[float]
    work: list[float]


def measure(functions: dict[str, Callable[[], Measured]], repeats: int,
            warmup: int) -> dict[str, Timings]:
    """Time every function ``warmup`` + ``repeats`` times, interleaved, and drop the warm-ups.

    Interleaving (A B A B ...) spreads slow phases of a shared machine over all functions
    instead of penalising whichever ran during them. A function may return its own duration
    in seconds, which leaves its set-up out of the timing. It may also return a (seconds,
    work) pair when the amount of work varies between calls. A call that returns None is
    timed as a whole.
    """
    results = {name: Timings([], []) for name in functions}
    for round_index in range(warmup + repeats):
        for name, function in functions.items():
            start = time.perf_counter()
            reported = function()
            elapsed = time.perf_counter() - start
            amount = None
            if isinstance(reported, tuple):
                elapsed, amount = reported
            elif reported is not None:
                elapsed = reported
            phase = "warm-up" if round_index < warmup else "repetition"
            log.info("  %s %s: %.3f s", name, phase, elapsed)
            if round_index >= warmup:
                results[name].seconds.append(elapsed)
                if amount is not None:
                    results[name].work.append(amount)
    return results


def cpu_model() -> str:
    """Return the CPU model name from /proc/cpuinfo, or what the platform module reports."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def git_revision() -> str:
    """Return the checked-out commit and whether tracked files have uncommitted changes."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True,
            text=True, check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO_ROOT,
            capture_output=True, text=True, check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return f"{commit} with uncommitted changes" if dirty else commit


def machine_info() -> dict[str, str]:
    """Describe the machine and the library versions that the figures depend on."""
    import h5py
    import numpy
    import psutil
    import snakemake
    import torch
    import torchvision

    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    cores = f"{os.cpu_count()} logical CPUs"
    if affinity is not None and affinity != os.cpu_count():
        cores += f", {affinity} usable by this process"
    cuda = "none"
    if torch.cuda.is_available():
        cuda = f"{torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda})"
    return {
        "CPU": cpu_model(),
        "Cores": cores,
        "Memory": f"{psutil.virtual_memory().total / 2**30:.1f} GiB",
        "GPU": cuda,
        "OS": platform.platform(),
        "Python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "numpy": numpy.__version__,
        "h5py": h5py.__version__,
        "snakemake": snakemake.__version__,
        "torch threads by default": str(torch.get_num_threads()),
        "Commit": git_revision(),
    }


def load_average() -> tuple[float, float, float]:
    return os.getloadavg()


def thread_slowdown_note(rates: dict[int, tuple[Series, Series]], unit: str) -> str | None:
    """Describe the thread counts at which pipeline and reference both ran slower than at the
    fewest threads, or return None when none did.

    ``rates`` maps a thread count to its (pipeline, reference) series.
    """
    fewest = min(rates)
    base_pipeline, base_reference = rates[fewest]
    slower = [
        count for count, (pipeline, reference) in rates.items()
        if count > fewest and pipeline.median < base_pipeline.median
        and reference.median < base_reference.median
    ]
    if not slower:
        return None
    parts = []
    for count in slower:
        pipeline, reference = rates[count]
        parts.append(
            f"with {count} threads the pipeline delivered {pipeline.median:,.0f} {unit} "
            f"(against {base_pipeline.median:,.0f} with {fewest}) and the reference "
            f"{reference.median:,.0f} (against {base_reference.median:,.0f})"
        )
    return (
        "Both implementations ran slower with more threads: " + "; ".join(parts) + ". Extra "
        "threads cannot help when other processes keep the cores busy (see the load average "
        "under Run), so the figures at the fewest threads are the more reliable ones."
    )
