"""Run the benchmark suite and write its results page (benchmarks/README.md by default).

Usage: python -m benchmarks.run [--quick] [--end-to-end] [--only delivery,build,...]
       [--threads 1,2] [--data-root DIR] [--output FILE] [--scratch DIR]

Each benchmark compares a pipeline stage with a reference implementation on this machine and
reports the ratio. The suite is not part of the test command; ``make benchmark`` runs it.
"""

from __future__ import annotations

import argparse
import datetime
import logging
import os
import shlex
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks import build, delivery, end_to_end, gpu, training, workflow
from benchmarks.data import BenchmarkError, check_data_root, default_data_root, pipeline_settings
from benchmarks.report import Section, render_page, write_page
from benchmarks.timing import REPO_ROOT, load_average, machine_info

log = logging.getLogger("benchmarks")

BENCHMARKS = ("delivery", "build", "training", "workflow", "gpu")
TITLES = {
    "delivery": "1. Data delivery",
    "build": "2. Dataset build",
    "training": "3. Training overhead",
    "workflow": "4. Workflow overhead",
    "end-to-end": "5. End to end",
    "gpu": "6. GPU training",
}


@dataclass(frozen=True)
class Sizes:
    """Problem sizes and repetitions of every benchmark for one mode."""

    delivery: delivery.DeliverySizes
    build: build.BuildSizes
    training: training.TrainingSizes
    workflow: workflow.WorkflowSizes
    gpu: gpu.GpuSizes


DEFAULT_SIZES = Sizes(
    delivery=delivery.DeliverySizes(max_images=5000, min_seconds=1.0, repeats=5, warmup=1),
    build=build.BuildSizes(images=1000, paper_pool=70_000, repeats=3, warmup=1),
    training=training.TrainingSizes(max_images=None, epochs=1, repeats=5, warmup=1),
    workflow=workflow.WorkflowSizes(repeats=5, warmup=1),
    gpu=gpu.GpuSizes(max_images=10_000, epochs=3),
)
# Smoke-run sizes: every code path runs, but the figures are not representative.
QUICK_SIZES = Sizes(
    delivery=delivery.DeliverySizes(max_images=300, min_seconds=0.1, repeats=2, warmup=1),
    build=build.BuildSizes(images=100, paper_pool=11_000, repeats=2, warmup=1),
    training=training.TrainingSizes(max_images=100, epochs=1, repeats=2, warmup=0),
    workflow=workflow.WorkflowSizes(repeats=1, warmup=0),
    gpu=gpu.GpuSizes(max_images=1000, epochs=2),
)


def parse_threads(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid --threads {text!r}: give e.g. 1,2") from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"invalid --threads {text!r}: give positive counts")
    return counts


def parse_only(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown benchmark(s) {unknown} in --only; choose from {', '.join(BENCHMARKS)}"
        )
    return names


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes and fewer repetitions: a smoke run of seconds")
    parser.add_argument("--end-to-end", action="store_true",
                        help="also run the whole default workflow on 2 cores (minutes)")
    parser.add_argument("--only", type=parse_only, default=list(BENCHMARKS),
                        help=f"comma-separated subset of {','.join(BENCHMARKS)} (default: all)")
    parser.add_argument("--threads", type=parse_threads, default=[1, 2],
                        help="torch thread counts for delivery and build, comma-separated; "
                        "training uses the largest (default: 1,2)")
    parser.add_argument("--data-root", type=Path, default=default_data_root(),
                        help="folder with MNIST/raw (and FashionMNIST/raw, KMNIST/raw for "
                        "--end-to-end) holding the official t10k files "
                        "(default: $NFT_TEST_DATA or ../shared/data)")
    parser.add_argument("--output", type=Path, default=REPO_ROOT / "benchmarks" / "README.md",
                        help="Markdown page to write (default: benchmarks/README.md)")
    parser.add_argument("--scratch", type=Path, default=None,
                        help="folder for temporary files, kept afterwards "
                        "(default: a temporary folder, deleted afterwards)")
    return parser.parse_args(argv)


def displayed_command(argv: list[str]) -> str:
    """Return this run's command line, with the interpreter relative to the working directory."""
    python = Path(sys.executable)
    try:
        python = python.relative_to(Path.cwd())
    except ValueError:
        pass
    return shlex.join([str(python), "-m", "benchmarks.run", *argv])


def run_benchmarks(args: argparse.Namespace, scratch: Path) -> list[Section]:
    sizes = QUICK_SIZES if args.quick else DEFAULT_SIZES
    settings = pipeline_settings()
    folders = ("MNIST", "FashionMNIST", "KMNIST") if args.end_to_end else ("MNIST",)
    data_root = check_data_root(args.data_root, folders)
    threads = args.threads
    runners = {
        "delivery": lambda: delivery.run(settings, data_root, scratch, threads, sizes.delivery),
        "build": lambda: build.run(settings, data_root, scratch, threads, sizes.build),
        "training": lambda: training.run(settings, data_root, scratch, max(threads),
                                         sizes.training),
        "workflow": lambda: workflow.run(data_root, scratch, sizes.workflow),
        "end-to-end": lambda: end_to_end.run(data_root, scratch),
        "gpu": lambda: gpu.run(settings, data_root, scratch, sizes.gpu),
    }
    selected = [name for name in TITLES if name in args.only or name == "end-to-end"]
    sections = []
    for name in selected:
        if name == "end-to-end" and not args.end_to_end:
            sections.append(Section(
                TITLES[name], "The default workflow run on 2 cores: wall time and peak memory.",
                skipped="pass --end-to-end to run it (it runs the whole default workflow).",
            ))
            continue
        log.info("benchmark %s", name)
        try:
            sections.append(runners[name]())
        except BenchmarkError as error:
            log.error("benchmark %s failed: %s", name, error)
            sections.append(Section(TITLES[name], "", skipped=f"failed: {error}"))
    return sections


def load_note(start: tuple[float, ...], end: tuple[float, ...]) -> str:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    text = (f"1-minute load average {start[0]:.2f} at the start and {end[0]:.2f} at the end, "
            f"on {cpus} CPUs.")
    if max(start[0], end[0]) > 0.5 * cpus:
        text += (" Other processes were running: absolute figures are noisy, and the "
                 "interleaved repetitions spread the noise over pipeline and reference alike.")
    return text


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False

    started = datetime.datetime.now(datetime.timezone.utc)
    start_load, start_time = load_average(), time.perf_counter()
    # Described before the run, so that the commit is the one the measured code came from.
    machine = machine_info()
    scratch = args.scratch or Path(tempfile.mkdtemp(prefix="nft-benchmarks-"))
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        sections = run_benchmarks(args, scratch)
    except BenchmarkError as error:
        log.error("%s", error)
        return 1
    finally:
        if args.scratch is None:
            shutil.rmtree(scratch, ignore_errors=True)
    duration = time.perf_counter() - start_time
    end_load = load_average()

    mode = "quick (smoke-run sizes; figures not representative)" if args.quick else "default"
    intro = [
        "Measurements of the pipeline against reference implementations, written by "
        "`benchmarks/run.py`; every run replaces this page. Ratios (pipeline / reference, "
        "measured on the same machine, with the same thread count, in interleaved "
        "repetitions) are the headline, because absolute rates depend on the machine. Each "
        "figure is the median of the timed repetitions after warm-up rounds, with the minimum "
        "and maximum; targets are checked against the median. A ratio's range divides the "
        "pipeline's slowest by the reference's fastest repetition, and the reverse.",
        "",
        "Run it with `make benchmark` (about 5 minutes on 2 cores; not part of `make test`). "
        "`make benchmark BENCH_ARGS=\"--end-to-end\"` adds the default workflow run, and "
        "`--quick` makes a smoke run of seconds. `python -m benchmarks.run --help` lists the "
        "options.",
    ]
    run_lines = [
        f"- Command: `{displayed_command(argv)}`",
        f"- Mode: {mode}",
        f"- Started: {started:%Y-%m-%d %H:%M} UTC; the suite took {duration / 60:.1f} min",
        f"- Load: {load_note(start_load, end_load)}",
        f"- Raw data: official test splits in `{args.data_root}`",
    ]
    page = render_page(intro, run_lines, machine, sections)
    write_page(args.output, page)
    log.info("wrote %s (%.1f min)", args.output, duration / 60)
    failed = [section.title for section in sections if (section.skipped or "").startswith("failed")]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
