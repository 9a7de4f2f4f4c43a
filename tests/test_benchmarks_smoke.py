"""Smoke runs of the benchmark suite (benchmarks/run.py) with --quick sizes.

These check that the suite runs and writes its page; they assert no timing target, because
the figures depend on the machine and its load.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import torch

from tests.conftest import REPO_ROOT

RATIO = re.compile(r"^(\d+\.\d+)x \(range (\d+\.\d+)-(\d+\.\d+)x\)$")
SECONDS = re.compile(r"^(\d+\.\d+) s \(range (\d+\.\d+)-(\d+\.\d+) s\)$")


def run_suite(data_root, output, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "benchmarks.run", "--quick", "--data-root", str(data_root),
               "--output", str(output), *args]
    return subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True)


def summary_rows(page: str) -> dict[str, list[tuple[str, str]]]:
    """Map each benchmark title of the summary table to its (figure, measured) cells."""
    section = page.split("## Summary", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, list[tuple[str, str]]] = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 5 or cells[0] in ("Benchmark", "---"):
            continue
        rows.setdefault(cells[0], []).append((cells[1], cells[2]))
    return rows


def test_quick_suite_writes_page(shared_data, tmp_path):
    output = tmp_path / "page.md"
    result = run_suite(shared_data, output, "--only", "delivery,build,training,gpu")
    assert result.returncode == 0, result.stderr[-4000:]
    page = output.read_text()
    for heading in ("# Benchmarks", "## Run", "## Machine", "## Summary", "## 1. Data delivery",
                    "## 2. Dataset build", "## 3. Training overhead", "## 5. End to end",
                    "## 6. GPU training"):
        assert f"\n{heading}\n" in f"\n{page}", heading
    assert "-m benchmarks.run --quick" in page
    assert "| CPU |" in page
    assert "Not run: pass --end-to-end" in page

    rows = summary_rows(page)
    for title in ("1. Data delivery", "2. Dataset build", "3. Training overhead"):
        ratios = [RATIO.match(measured) for figure, measured in rows[title]
                  if "speed-up" in figure or "/" in figure]
        assert ratios, f"no ratio rows for {title}: {rows[title]}"
        for match in ratios:
            assert match is not None, rows[title]
            low, median, high = float(match[2]), float(match[1]), float(match[3])
            assert 0 < low <= median <= high
    assert len(rows["1. Data delivery"]) == 2  # one row per thread count (1 and 2)
    assert any("paper-scale build" in figure for figure, _ in rows["2. Dataset build"])


@pytest.mark.workflow
def test_quick_workflow_overhead(shared_data, tmp_path):
    output = tmp_path / "page.md"
    result = run_suite(shared_data, output, "--only", "workflow")
    assert result.returncode == 0, result.stderr[-4000:]
    page = output.read_text()
    assert "\n## 4. Workflow overhead\n" in page
    rows = summary_rows(page)["4. Workflow overhead"]
    assert [figure.split(",")[0] for figure, _ in rows] == ["dry run (-n)", "no-op run"]
    for figure, measured in rows:
        jobs = int(re.search(r"(\d+) jobs", figure)[1])
        assert jobs > 100, figure  # the paper-scale DAG, not an empty one
        assert SECONDS.match(measured), measured


def test_gpu_benchmark_on_cpu(shared_data, tmp_path):
    """The GPU benchmark's code path, run on the CPU with a tiny dataset."""
    from benchmarks import gpu
    from benchmarks.data import pipeline_settings

    section = gpu.run(pipeline_settings(), shared_data, tmp_path,
                      gpu.GpuSizes(max_images=200, epochs=1), device=torch.device("cpu"))
    assert section.skipped is None
    assert [row.figure.split(" ")[0] for row in section.summary] == ["training", "projected"]
    assert re.match(r"^\d+\.\d+ h per model and seed$", section.summary[1].value)
    assert all(series.median > 0 for series in section.series)
