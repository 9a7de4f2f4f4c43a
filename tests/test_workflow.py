"""Whole-workflow runs on real images with a tiny configuration, and reruns of stale jobs."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time

import pandas as pd
import pytest

from tests.workflow_helpers import (
    changed,
    copy_repository,
    output_mtimes,
    snakemake,
    snakemake_command,
    tiny_config,
    workflow_env,
    write_config,
)

pytestmark = pytest.mark.workflow

MODELS = ("autoencoder", "gnft", "steerable_c8")
DATASETS = ("fashion_mnist", "kmnist", "mnist")


@pytest.fixture(scope="module")
def finished_run(shared_data, tmp_path_factory):
    """A workflow copy whose tiny run has finished, with its own copy of the raw files."""
    workdir = copy_repository(tmp_path_factory.mktemp("finished"))
    data_root = workdir / "data"
    shutil.copytree(shared_data, data_root, ignore=shutil.ignore_patterns("README.md"))
    for path in data_root.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    write_config(workdir, tiny_config("data"))
    snakemake(workdir)
    return workdir


@pytest.fixture
def workdir(finished_run, tmp_path):
    """A private copy of the finished run (timestamps and Snakemake metadata kept)."""
    target = tmp_path / "run"
    shutil.copytree(finished_run, target, symlinks=True)
    return target


def test_tables_have_row_per_model_and_dataset(finished_run):
    results = pd.read_parquet(finished_run / "results/tables/results.parquet")
    accuracy = results[(results.metric == "probe_accuracy") & (results.split == "test")]
    pairs = set(zip(accuracy.model, accuracy.dataset))
    assert pairs == {(model, dataset) for model in MODELS for dataset in DATASETS}
    for name in ("results.csv", "summary.csv", "summary.md", "probe_accuracy.png"):
        assert (finished_run / "results/tables" / name).stat().st_size > 0


def test_in_domain_probe_above_chance(finished_run):
    results = pd.read_parquet(finished_run / "results/tables/results.parquet")
    in_domain = results[
        (results.metric == "probe_accuracy") & (results.split == "test")
        & (results.dataset == "mnist")
    ]
    for row in in_domain.itertuples():
        assert row.value > 0.2, (row.model, row.feature, row.value)


def test_equivariant_models_report_error(finished_run):
    results = pd.read_parquet(finished_run / "results/tables/results.parquet")
    errors = results[results.metric == "equivariance_error"]
    assert set(errors.model) == {"gnft", "steerable_c8"}
    assert set(errors[errors.model == "gnft"].dataset) == set(DATASETS)
    assert (errors.value > 0).all()


def test_training_metrics_and_log(finished_run):
    run = finished_run / "results/train/gnft/mnist/seed0"
    metrics = pd.read_parquet(run / "metrics.parquet")
    assert list(metrics.epoch) == [1]
    assert {"train_loss", "val_loss", "samples_per_s", "elapsed_s"} <= set(metrics.columns)
    log = (finished_run / "logs/train_model/gnft/mnist/seed0.log").read_text()
    assert "epoch 1/1 train_loss" in log
    assert "samples/s" in log


def test_second_run_does_nothing(workdir):
    before = output_mtimes(workdir)
    result = snakemake(workdir)
    assert "Nothing to be done" in result.stdout + result.stderr
    assert changed(before, output_mtimes(workdir)) == set()


def test_hyperparameter_change_reruns_only_that_model(workdir):
    config = tiny_config("data")
    config["models"]["gnft"]["architecture"]["max_frequency"] = 4
    write_config(workdir, config)
    before = output_mtimes(workdir)
    snakemake(workdir)
    rerun = changed(before, output_mtimes(workdir))
    expected = {
        "results/train/gnft/mnist/seed0/model.pt",
        "results/train/gnft/mnist/seed0/metrics.parquet",
        *(f"results/eval/gnft/mnist/seed0/{d}.parquet" for d in DATASETS),
    }
    assert expected <= rerun
    touched_outside = {
        path for path in rerun - expected
        if not path.startswith(("results/tables/", "results/benchmarks/"))
    }
    assert touched_outside == set()


def test_stage_source_edit_reruns_its_jobs(workdir):
    with open(workdir / "stages/aggregate.py", "a") as handle:
        handle.write("\n# edited\n")
    before = output_mtimes(workdir)
    snakemake(workdir)
    rerun = changed(before, output_mtimes(workdir))
    tables = {path for path in before if path.startswith("results/tables/")}
    assert len(tables) == 8
    assert {path for path in rerun if not path.startswith("results/benchmarks/")} == tables


def test_shared_stage_code_edit_reruns_downstream(workdir):
    with open(workdir / "stages/evaluate.py", "a") as handle:
        handle.write("\n# edited\n")
    before = output_mtimes(workdir)
    snakemake(workdir)
    rerun = changed(before, output_mtimes(workdir))
    assert {f"results/eval/{m}/mnist/seed0/{d}.parquet" for m in MODELS for d in DATASETS} <= rerun
    assert not any(path.startswith(("results/train/", "results/datasets/")) for path in rerun)


def test_raw_file_change_reruns_its_branch(workdir):
    labels = workdir / "data/KMNIST/raw/t10k-labels-idx1-ubyte.gz"
    original = labels.read_bytes()
    labels.write_bytes(original[:-10] + bytes(10))
    before = output_mtimes(workdir)
    failed = snakemake(workdir, "--retries", "0", check=False)
    assert failed.returncode != 0
    log = (workdir / "logs/check_raw/kmnist.log").read_text()
    assert "checksum mismatch for data/KMNIST/raw/t10k-labels-idx1-ubyte.gz" in log
    assert "expected 7320c461ea6c1c855c0b718fb2a4b134" in log
    # Nothing of the other datasets was touched or lost.
    kept = {path for path in before if "kmnist" not in path and "tables" not in path}
    assert all((workdir / path).exists() for path in kept)
    assert not changed(before, output_mtimes(workdir)) & kept

    labels.write_bytes(original)
    before = output_mtimes(workdir)
    snakemake(workdir)
    rerun = changed(before, output_mtimes(workdir))
    assert "results/datasets/kmnist.h5" in rerun
    assert {f"results/eval/{m}/mnist/seed0/kmnist.parquet" for m in MODELS} <= rerun
    assert "results/datasets/mnist.h5" not in rerun
    assert not any(path.startswith("results/train/") for path in rerun)


def test_report_holds_tables_and_plot(workdir):
    snakemake(workdir, "--report", "report.html")
    html = (workdir / "report.html").read_text(errors="replace")
    assert "probe_accuracy.png" in html
    assert "summary.csv" in html


def test_default_config_is_valid(workdir):
    shutil.copy(workdir / "config.yaml", workdir / "default.yaml")
    result = snakemake(workdir, "-n", "--config", f"data_root={workdir / 'data'}",
                       "download=False", configfile="default.yaml")
    assert "train_model" in result.stdout + result.stderr


def test_invalid_config_value_is_named(workdir):
    config = tiny_config("data")
    config["training"]["epochs"] = -3
    write_config(workdir, config, "bad.yaml")
    result = snakemake(workdir, "-n", configfile="bad.yaml", check=False)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "-3" in output
    assert "epochs" in output


def test_fractions_not_summing_to_one_are_named(workdir):
    config = tiny_config("data")
    config["rotation"]["fractions"] = [0.8, 0.3, 0.1]
    write_config(workdir, config, "bad.yaml")
    result = snakemake(workdir, "-n", configfile="bad.yaml", check=False)
    assert result.returncode != 0
    assert "invalid rotation.fractions [0.8, 0.3, 0.1]" in result.stdout + result.stderr


def wait_for(path, timeout=300):
    deadline = time.time() + timeout
    while not path.exists() and time.time() < deadline:
        time.sleep(0.2)
    return path.exists()


def find_stage_process(module: str, workdir) -> int | None:
    """PID of a running ``python -m <module>`` whose working directory is ``workdir``."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            arguments = open(f"/proc/{entry}/cmdline", "rb").read().split(b"\0")
            cwd = os.readlink(f"/proc/{entry}/cwd")
        except OSError:
            continue
        if module.encode() in arguments and cwd == str(workdir):
            return int(entry)
    return None


def test_interrupted_run_completes_identically(finished_run, tmp_path):
    workdir = tmp_path / "interrupted"
    shutil.copytree(finished_run, workdir, symlinks=True)
    shutil.rmtree(workdir / "results")
    shutil.rmtree(workdir / "logs")
    command = snakemake_command(workdir)
    process = subprocess.Popen(command, cwd=workdir, env=workflow_env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert wait_for(workdir / "results/datasets/mnist.h5")
    time.sleep(3)
    process.send_signal(signal.SIGINT)  # Ctrl+C
    process.wait(timeout=120)
    assert not (workdir / "results/tables/results.csv").exists()
    snakemake(workdir)
    for name in ("results.csv", "summary.csv", "reproduction.csv"):
        assert (workdir / "results/tables" / name).read_bytes() == (
            finished_run / "results/tables" / name
        ).read_bytes(), name


def test_killed_job_is_retried(finished_run, tmp_path):
    workdir = tmp_path / "killed_job"
    shutil.copytree(finished_run, workdir, symlinks=True)
    # Snakemake does not remake a missing intermediate file while the files made from it
    # are present, so remove the g-NFT chain down to the tables.
    for folder in ("results/train/gnft", "results/eval/gnft", "results/tables"):
        shutil.rmtree(workdir / folder)
    process = subprocess.Popen(snakemake_command(workdir), cwd=workdir, env=workflow_env(),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    # Kill the training process itself, as a scheduler's wall-time limit would.
    deadline, victim = time.time() + 120, None
    while victim is None and time.time() < deadline:
        victim = find_stage_process("stages.train", workdir)
        time.sleep(0.1)
    assert victim is not None
    os.kill(victim, signal.SIGKILL)
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 0, output[-3000:]
    assert (workdir / "results/train/gnft/mnist/seed0/model.pt").exists()
    assert (workdir / "results/tables/results.csv").read_bytes() == (
        finished_run / "results/tables/results.csv"
    ).read_bytes()
