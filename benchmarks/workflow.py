"""Workflow overhead: Snakemake's dry run and no-op run on a finished paper-scale tree.

A scratch copy of the repository gets every output of the paper-scale DAG: empty placeholder
files for the paths that ``snakemake --summary`` lists, then ``snakemake --touch``, which
updates their times in DAG order and records their metadata. The measured commands must
report that nothing is to be done; otherwise the benchmark fails instead of timing real work.
"""

from __future__ import annotations

import logging
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from benchmarks.data import BenchmarkError
from benchmarks.report import Section, SummaryRow
from benchmarks.timing import REPO_ROOT, Series, measure

log = logging.getLogger("benchmarks")

COPIED = ("workflow", "stages", "profiles", "config.yaml", "pyproject.toml")
NOTHING_TO_DO = "Nothing to be done"
TARGET_SECONDS = 5.0


@dataclass(frozen=True)
class WorkflowSizes:
    repeats: int
    warmup: int


def copy_repository(target: Path) -> Path:
    """Copy what the workflow reads into ``target``, keeping file times (as cp -a does)."""
    target.mkdir(parents=True, exist_ok=True)
    for name in COPIED:
        source = REPO_ROOT / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, target / name)
    return target


def snakemake_environment() -> dict[str, str]:
    """Return os.environ with this interpreter's bin folder first on PATH, as jobs need."""
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return env


def snakemake_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "snakemake", *args]


def children_cpu_seconds() -> float:
    """Return the user + system CPU seconds of this process's finished children."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_snakemake(workdir: Path, args: list[str]) -> tuple[str, float]:
    """Run Snakemake in ``workdir``; return its stdout and stderr, and its CPU seconds.

    Raises BenchmarkError when Snakemake fails.
    """
    cpu_before = children_cpu_seconds()
    result = subprocess.run(
        snakemake_command(*args), cwd=workdir, env=snakemake_environment(),
        capture_output=True, text=True,
    )
    cpu_seconds = children_cpu_seconds() - cpu_before
    output = result.stdout + result.stderr
    if result.returncode != 0:
        raise BenchmarkError(
            f"snakemake {' '.join(args)} failed with exit code {result.returncode} in "
            f"{workdir}:\n{output[-4000:]}"
        )
    return output, cpu_seconds


def prepare_finished_tree(workdir: Path, config_args: list[str]) -> int:
    """Create every output of the DAG in ``workdir`` and return the DAG's number of jobs."""
    profile = ["--cores", "2", "--workflow-profile", "profiles/default"]
    planned, _ = run_snakemake(workdir, ["-n", *profile, "--config", *config_args])
    totals = re.findall(r"^total\s+(\d+)\s*$", planned, flags=re.MULTILINE)
    if not totals:
        raise BenchmarkError(f"snakemake -n printed no job count:\n{planned[-2000:]}")
    summary, _ = run_snakemake(workdir, ["--summary", *profile, "--config", *config_args])
    outputs = [line.split("\t", 1)[0] for line in summary.splitlines() if "\t" in line]
    outputs = [path for path in outputs if path and path != "output_file"]
    if not outputs:
        raise BenchmarkError(f"snakemake --summary listed no output files:\n{summary[-2000:]}")
    for relative in outputs:
        path = workdir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    # Placeholders made within the same second can already look up to date, so --touch
    # updates only the stale part of the DAG. The timed runs check that nothing is left.
    run_snakemake(workdir, ["--touch", *profile, "--config", *config_args])
    return int(totals[-1])


class TimedCommand:
    """Callable that runs one Snakemake command and records its CPU seconds.

    With ``expect_no_op``, it raises BenchmarkError unless Snakemake had nothing to do.
    """

    def __init__(self, workdir: Path, args: list[str], expect_no_op: bool = True) -> None:
        self.workdir, self.args, self.expect_no_op = workdir, args, expect_no_op
        self.cpu_seconds: list[float] = []

    def __call__(self) -> None:
        output, cpu_seconds = run_snakemake(self.workdir, self.args)
        self.cpu_seconds.append(cpu_seconds)
        if self.expect_no_op and NOTHING_TO_DO not in output:
            raise BenchmarkError(
                f"snakemake {' '.join(self.args)} was expected to have nothing to do, but "
                f"reported:\n{output[-3000:]}"
            )

    def median_cpu_seconds(self, warmup: int) -> float:
        return statistics.median(self.cpu_seconds[warmup:])


def run(data_root: Path, scratch: Path, sizes: WorkflowSizes) -> Section:
    workdir = copy_repository(scratch / "workflow-copy")
    config_args = ["scale=paper", f"data_root={data_root}", "download=False"]
    log.info("workflow overhead: preparing a finished paper-scale tree in %s", workdir)
    jobs = prepare_finished_tree(workdir, config_args)

    profile = ["--cores", "2", "--workflow-profile", "profiles/default"]
    commands = {
        "dry run (-n)": TimedCommand(workdir, ["-n", *profile, "--config", *config_args]),
        "no-op run": TimedCommand(workdir, [*profile, "--config", *config_args]),
        "start only": TimedCommand(workdir, ["--version"], expect_no_op=False),
    }
    log.info("workflow overhead: timing %d-job dry run and no-op run", jobs)
    times = measure(commands, sizes.repeats, sizes.warmup)

    labels = {}
    for name, command in commands.items():
        shown = " ".join(command.args).replace(f"data_root={data_root}", "data_root=DATA_ROOT")
        labels[name] = f"`snakemake {shown}`"
    labels["start only"] += " (interpreter start and import only)"
    series = {name: Series(labels[name], times[name].seconds) for name in commands}
    cpu = {name: command.median_cpu_seconds(sizes.warmup) for name, command in commands.items()}
    section = Section(
        title="4. Workflow overhead",
        description=(
            "Wall time of Snakemake with nothing stale, on the paper-scale configuration "
            f"(`--config scale=paper`, every experiment and seed: {jobs} jobs including "
            "`all`). It runs in a scratch copy of the repository whose outputs were created "
            "as empty files and then brought up to date with `snakemake --touch`. Each timed "
            f"command must print '{NOTHING_TO_DO}'. DATA_ROOT is the raw-data folder under "
            "Run, and downloads are off."
        ),
        series=list(series.values()),
    )

    start = series["start only"]
    for name in ("dry run (-n)", "no-op run"):
        wall = series[name]
        section.summary.append(SummaryRow(
            f"{name}, {jobs} jobs",
            f"{wall.median:.2f} s (range {wall.minimum:.2f}-{wall.maximum:.2f} s)",
            f"<= {TARGET_SECONDS:g} s", wall.median <= TARGET_SECONDS,
        ))
        section.notes.append(
            f"{name}: median CPU time (user + system) {cpu[name]:.2f} s for a median wall "
            f"time of {wall.median:.2f} s."
        )
        if wall.median > TARGET_SECONDS:
            section.notes.append(missed_reason(name, wall, start, cpu[name]))
    section.notes.append(
        f"Starting Python and importing Snakemake alone (`--version`) takes {start.median:.2f} s "
        f"of wall time and {cpu['start only']:.2f} s of CPU time."
    )
    return section


def missed_reason(name: str, wall: Series, start: Series, cpu_seconds: float) -> str:
    """Explain a missed target from the start-up time and the command's CPU time."""
    reason = (
        f"Target missed for the {name}: {wall.median:.2f} s, of which "
        f"{start.median:.2f} s is starting Python and importing Snakemake."
    )
    if cpu_seconds <= TARGET_SECONDS:
        return reason + (
            f" The command needed {cpu_seconds:.2f} s of CPU time, so the rest of the "
            "wall time was spent waiting for a CPU or for I/O."
        )
    return reason + " The rest is parsing the workflow and checking the jobs' files and metadata."
