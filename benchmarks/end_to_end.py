"""End to end: wall time and peak memory of the default workflow run on 2 CPU cores.

Runs ``snakemake --cores 2 --workflow-profile profiles/default`` (what ``make run CORES=2``
runs) in a scratch copy of the repository, with ``data_root`` at the offline test splits and
downloads off. Memory is measured twice: ``/usr/bin/time -v`` reports the maximum resident set
size of the largest single process, and a sampler adds up the resident (RSS) and proportional
(PSS) set sizes of the whole process tree every 0.5 s. Summed RSS counts shared pages (the
torch libraries) once per process, so it overstates the tree's use; summed PSS splits them.
"""

from __future__ import annotations

import csv
import logging
import os
import re
import shutil
import subprocess
import threading
import time
from collections import defaultdict
from pathlib import Path

import psutil

from benchmarks.data import BenchmarkError
from benchmarks.report import Section, SummaryRow
from benchmarks.timing import Series
from benchmarks.workflow import copy_repository, snakemake_command, snakemake_environment

log = logging.getLogger("benchmarks")

CORES = 2
TARGET_SECONDS = 15 * 60
TARGET_BYTES = 4 * 2**30
SAMPLE_SECONDS = 0.5
TIME_BINARY = "/usr/bin/time"


class TreeMemorySampler(threading.Thread):
    """Poll a process and its descendants and keep the peak sums of their RSS and PSS."""

    def __init__(self, pid: int, interval: float = SAMPLE_SECONDS) -> None:
        super().__init__(daemon=True)
        self.root = psutil.Process(pid)
        self.interval = interval
        self.stop_event = threading.Event()
        self.peak_rss = 0
        self.peak_pss = 0
        self.peak_processes = 0
        self.samples = 0

    def sample(self) -> None:
        try:
            processes = [self.root, *self.root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        rss = pss = 0
        for process in processes:
            try:
                info = process.memory_full_info()
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
            rss += info.rss
            pss += getattr(info, "pss", info.rss)
        self.peak_rss = max(self.peak_rss, rss)
        self.peak_pss = max(self.peak_pss, pss)
        self.peak_processes = max(self.peak_processes, len(processes))
        self.samples += 1

    def run(self) -> None:
        while not self.stop_event.is_set():
            self.sample()
            self.stop_event.wait(self.interval)

    def stop(self) -> None:
        self.stop_event.set()
        self.join()


def parse_time_report(text: str) -> dict[str, str]:
    """Parse the 'Name: value' lines of GNU time's verbose report into a dict."""
    report = {}
    for line in text.splitlines():
        name, separator, value = line.strip().rpartition(": ")
        if separator:
            report[name] = value
    return report


def cpu_pinning() -> list[str]:
    """Return a taskset prefix that limits the run to CORES CPUs when the machine has more."""
    usable = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(usable) <= CORES or shutil.which("taskset") is None:
        return []
    return ["taskset", "-c", ",".join(str(cpu) for cpu in usable[:CORES])]


def rule_seconds(workdir: Path) -> dict[str, tuple[float, float]]:
    """Sum the wall and CPU seconds per rule in the Snakemake benchmark files of the run.

    Only rules with a ``benchmark:`` directive have such files.
    """
    wall: dict[str, float] = defaultdict(float)
    cpu: dict[str, float] = defaultdict(float)
    root = workdir / "results" / "benchmarks"
    for path in root.rglob("*.tsv"):
        rule = path.relative_to(root).parts[0]
        with open(path) as handle:
            for row in csv.DictReader(handle, delimiter="\t"):
                wall[rule] += float(row["s"])
                cpu[rule] += float(row.get("cpu_time") or 0.0)
    return {rule: (wall[rule], cpu[rule]) for rule in wall}


def run(data_root: Path, scratch: Path) -> Section:
    if not Path(TIME_BINARY).is_file():
        raise BenchmarkError(f"{TIME_BINARY} (GNU time) not found; install the 'time' package")
    workdir = copy_repository(scratch / "end-to-end-copy")
    args = ["--cores", str(CORES), "--workflow-profile", "profiles/default",
            "--config", f"data_root={data_root}", "download=False"]
    time_report = scratch / "end-to-end-time.txt"
    output_log = scratch / "end-to-end-snakemake.log"
    command = [TIME_BINARY, "-v", "-o", str(time_report), *cpu_pinning(),
               *snakemake_command(*args)]
    log.info("end to end: %s (in %s)", " ".join(command), workdir)
    with open(output_log, "w") as output:
        start = time.perf_counter()
        process = subprocess.Popen(command, cwd=workdir, env=snakemake_environment(),
                                   stdout=output, stderr=subprocess.STDOUT)
        sampler = TreeMemorySampler(process.pid)
        sampler.start()
        returncode = process.wait()
        elapsed = time.perf_counter() - start
        sampler.stop()
    if returncode != 0:
        tail = output_log.read_text()[-4000:]
        raise BenchmarkError(f"the end-to-end run failed with exit code {returncode}:\n{tail}")
    if not (workdir / "results" / "tables" / "summary.md").is_file():
        raise BenchmarkError("the end-to-end run finished without results/tables/summary.md")
    report = parse_time_report(time_report.read_text())
    largest_kib = int(report.get("Maximum resident set size (kbytes)", "0"))
    jobs = re.findall(r"(\d+) of (\d+) steps", output_log.read_text())

    wall = Series("wall time of the whole run", [elapsed])
    job_count = jobs[-1][1] if jobs else "an unknown number of"
    placement = f"pinned to {CORES} CPUs with taskset" if cpu_pinning() else "on this machine"
    shown = " ".join(args).replace(f"data_root={data_root}", "data_root=DATA_ROOT")
    section = Section(
        title="5. End to end",
        description=(
            f"One run of `snakemake {shown}` (the default configuration, {job_count} jobs; "
            "DATA_ROOT is the raw-data folder under Run) in a scratch copy of the repository, "
            f"{placement}, under "
            "`/usr/bin/time -v`, with the process tree's memory sampled every "
            f"{SAMPLE_SECONDS:g} s. One run, so no median."
        ),
        series=[wall],
    )
    gib = 2**30
    section.summary += [
        SummaryRow("wall time", f"{elapsed / 60:.1f} min", f"<= {TARGET_SECONDS / 60:g} min",
                   elapsed <= TARGET_SECONDS),
        SummaryRow("peak memory, process tree summed RSS", f"{sampler.peak_rss / gib:.2f} GiB",
                   f"<= {TARGET_BYTES / gib:g} GiB", sampler.peak_rss <= TARGET_BYTES),
        SummaryRow("peak memory, process tree summed PSS", f"{sampler.peak_pss / gib:.2f} GiB"),
        SummaryRow("peak memory, largest process (time -v)", f"{largest_kib / 2**20:.2f} GiB"),
    ]
    cpu_seconds = float(report.get("User time (seconds)", "0")) + float(
        report.get("System time (seconds)", "0")
    )
    cpu_share = report.get("Percent of CPU this job got", "unknown")
    section.notes.append(
        f"CPU time of the whole process tree (user + system, from time -v): {cpu_seconds:.0f} s "
        f"over {elapsed:.0f} s of wall time, {cpu_share} of one CPU on average (at most "
        f"{CORES * 100}% with {CORES} cores)."
    )
    totals = sorted(rule_seconds(workdir).items(), key=lambda item: -item[1][0])
    if totals:
        listed = ", ".join(
            f"{rule} {wall_s:.0f} s wall / {cpu_s:.0f} s CPU" for rule, (wall_s, cpu_s) in totals
        )
        section.notes.append(
            f"Job time summed per rule, from the Snakemake benchmark files: {listed}."
        )
    section.notes.append(
        f"{sampler.samples} memory samples; at most {sampler.peak_processes} processes at once."
    )
    if elapsed > TARGET_SECONDS:
        estimate = cpu_seconds / CORES
        section.notes.append(
            f"Target missed: the run took {elapsed / 60:.1f} min. Spread perfectly over "
            f"{CORES} idle cores, the CPU time it used would take {estimate / 60:.1f} min. "
            "This is an estimate of the wall time without other load, and it may be high "
            "because waiting threads can spin and add CPU time on a busy machine."
        )
    if sampler.peak_rss > TARGET_BYTES:
        section.notes.append(
            f"Target missed for summed RSS ({sampler.peak_rss / gib:.2f} GiB): it counts the "
            f"shared library pages of every process; summed PSS is {sampler.peak_pss / gib:.2f} "
            "GiB."
        )
    return section
