"""Faults: stages killed at random moments, resumed training, repeatable outputs, threads."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import torch

from stages.check_raw import check_dataset
from stages.idx import get_dataset
from tests.workflow_helpers import REPO_ROOT, copy_repository, snakemake, tiny_config, write_config

OPTIONS = {"epochs": 3, "batch_size": 32, "lr": 1e-3, "weight_decay": 0.01}


def stage_command(name: str, *args: str) -> list[str]:
    return [sys.executable, "-m", f"stages.{name}", *args]


def run_stage(command: list[str], env: dict | None = None) -> None:
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True,
                            env={**os.environ, **(env or {})})
    assert result.returncode == 0, result.stderr[-3000:]


class Pipeline:
    """Stage commands of a small pipeline, with outputs under ``root``."""

    def __init__(self, root: Path, manifest: Path) -> None:
        self.root, self.manifest = root, manifest
        root.mkdir(parents=True, exist_ok=True)
        self.data = root / "mnist.h5"
        self.model, self.metrics = root / "model.pt", root / "metrics.parquet"
        self.evaluation = root / "eval.parquet"
        self.tables = root / "tables"

    def commands(self) -> dict[str, list[str]]:
        return {
            "build_dataset": stage_command(
                "build_dataset", "--manifest", str(self.manifest), "--out", str(self.data),
                "--max-images", "300"),
            "train": stage_command(
                "train", "--data", str(self.data), "--kind", "autoencoder", "--seed", "0",
                "--architecture", json.dumps({"latent_size": 16}),
                "--optimisation", json.dumps(OPTIONS), "--device", "cpu",
                "--out-model", str(self.model), "--out-metrics", str(self.metrics)),
            "evaluate": stage_command(
                "evaluate", "--model", str(self.model), "--data", str(self.data),
                "--model-name", "autoencoder", "--train-dataset", "mnist", "--dataset", "mnist",
                "--domain", "in_domain", "--seed", "0", "--device", "cpu",
                "--probe-max-iter", "200", "--out", str(self.evaluation)),
            "aggregate": stage_command(
                "aggregate", "--inputs", str(self.evaluation), "--out-dir", str(self.tables)),
        }

    def outputs(self, stage: str) -> list[Path]:
        return {
            "build_dataset": [self.data],
            "train": [self.model, self.metrics],
            "evaluate": [self.evaluation],
            "aggregate": [self.tables / "results.parquet", self.tables / "summary.csv"],
        }[stage]

    def run_all(self) -> None:
        for command in self.commands().values():
            run_stage(command)


def same_output(path: Path, reference: Path) -> bool:
    """Whether two stage outputs hold the same results (time columns of metrics excepted)."""
    if path.suffix == ".h5":
        with h5py.File(path) as a, h5py.File(reference) as b:
            return all(np.array_equal(a[f"{s}/{k}"][:], b[f"{s}/{k}"][:])
                       for s in ("train", "val", "test") for k in a[s])
    if path.suffix == ".pt":
        first = torch.load(path, weights_only=True)["state_dict"]
        second = torch.load(reference, weights_only=True)["state_dict"]
        return all(torch.equal(first[k], second[k]) for k in first)
    if path.name == "metrics.parquet":
        columns = ["epoch", "train_loss", "val_loss"]
        return pd.read_parquet(path)[columns].equals(pd.read_parquet(reference)[columns])
    return path.read_bytes() == reference.read_bytes()


@pytest.fixture(scope="module")
def manifest(shared_data, tmp_path_factory):
    path = tmp_path_factory.mktemp("manifest") / "mnist.json"
    path.write_text(json.dumps(check_dataset(get_dataset("mnist"), str(shared_data))))
    return path


@pytest.fixture(scope="module")
def reference(manifest, tmp_path_factory):
    pipeline = Pipeline(tmp_path_factory.mktemp("reference"), manifest)
    pipeline.run_all()
    return pipeline


def test_killed_stages_rerun_to_identical_results(reference, manifest, tmp_path):
    generator = random.Random(20261204)
    stages = ["build_dataset", "train", "evaluate", "aggregate"]
    signals = [signal.SIGKILL, signal.SIGTERM, signal.SIGINT]
    pipeline = Pipeline(tmp_path / "faulty", manifest)
    pipeline.run_all()
    for trial in range(20):
        stage = stages[trial % len(stages)]
        for path in pipeline.outputs(stage):
            path.unlink()
        process = subprocess.Popen(pipeline.commands()[stage], cwd=REPO_ROOT,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(generator.uniform(0.5, 6.0))
        process.send_signal(signals[trial % len(signals)])
        process.wait()
        for path, expected in zip(pipeline.outputs(stage), reference.outputs(stage)):
            # Killed or not, an output under its final name is always a finished one.
            assert not path.exists() or same_output(path, expected), (trial, stage, path)
        run_stage(pipeline.commands()[stage])
        for path, expected in zip(pipeline.outputs(stage), reference.outputs(stage)):
            assert same_output(path, expected), (trial, stage, path)


def test_resumed_training_equals_uninterrupted(reference, manifest, tmp_path):
    pipeline = Pipeline(tmp_path / "resumed", manifest)
    options = {**OPTIONS, "epochs": 8}
    command = stage_command(
        "train", "--data", str(reference.data), "--kind", "gnft", "--seed", "3",
        "--architecture", json.dumps({"latent_dim": 4, "max_frequency": 2}),
        "--optimisation", json.dumps(options), "--device", "cpu",
        "--out-model", str(pipeline.model), "--out-metrics", str(pipeline.metrics))
    straight = [part.replace(str(pipeline.root), str(tmp_path / "straight")) for part in command]
    run_stage(straight)

    checkpoint = pipeline.root / "checkpoint.pt"
    process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not checkpoint.exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert checkpoint.exists()
    assert not pipeline.model.exists()
    epochs_done = torch.load(checkpoint, weights_only=True)["epoch"]
    assert 1 <= epochs_done < options["epochs"]

    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"after epoch {epochs_done}" in result.stderr
    assert same_output(pipeline.model, tmp_path / "straight" / "model.pt")
    assert same_output(pipeline.metrics, tmp_path / "straight" / "metrics.parquet")
    assert not checkpoint.exists()


def test_checkpoint_of_other_configuration_is_ignored(reference, tmp_path):
    command = stage_command(
        "train", "--data", str(reference.data), "--kind", "autoencoder", "--seed", "0",
        "--architecture", json.dumps({"latent_size": 16}),
        "--optimisation", json.dumps({**OPTIONS, "epochs": 1}), "--device", "cpu",
        "--out-model", str(tmp_path / "model.pt"), "--out-metrics", str(tmp_path / "m.parquet"))
    torch.save({"fingerprint": "other", "epoch": 1}, tmp_path / "checkpoint.pt")
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "belongs to another configuration or code; starting fresh" in result.stderr


def test_two_runs_write_identical_files(reference, manifest, tmp_path):
    again = Pipeline(tmp_path / "again", manifest)
    commands = again.commands()
    run_stage(commands["build_dataset"])
    run_stage(commands["train"])
    # A different hash seed must not change any result.
    run_stage(commands["evaluate"], env={"PYTHONHASHSEED": "12345"})
    run_stage(commands["aggregate"], env={"PYTHONHASHSEED": "777"})
    assert same_output(again.data, reference.data)
    assert same_output(again.model, reference.model)
    assert again.evaluation.read_bytes() == reference.evaluation.read_bytes()
    for name in ("results.parquet", "results.csv", "summary.csv", "summary.md",
                 "reproduction.csv"):
        assert (again.tables / name).read_bytes() == (reference.tables / name).read_bytes(), name


@pytest.mark.workflow
def test_parallel_training_jobs_use_given_threads(shared_data, tmp_path):
    workdir = copy_repository(tmp_path / "threads")
    (workdir / "data").symlink_to(shared_data)
    config = tiny_config("data", seeds=[0])
    config["models"] = {name: {"kind": "autoencoder", "architecture": {"latent_size": 16}}
                        for name in ("ae_a", "ae_b", "ae_c")}
    write_config(workdir, config)
    targets = [f"results/train/{name}/mnist/seed0/model.pt" for name in ("ae_a", "ae_b", "ae_c")]
    snakemake(workdir, *targets, "--cores", "3", "--set-threads", "train_model=1")
    intervals = []
    for name in ("ae_a", "ae_b", "ae_c"):
        log = (workdir / f"logs/train_model/{name}/mnist/seed0.log").read_text()
        assert ", 1 threads," in log, log
        stamps = re.findall(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)", log, flags=re.MULTILINE)
        intervals.append((stamps[0], stamps[-1]))
    assert max(start for start, _ in intervals) <= min(end for _, end in intervals)
