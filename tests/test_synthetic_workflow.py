"""Whole-workflow run of the synthetic experiments E1 and E2 on a tiny configuration."""

from __future__ import annotations

import itertools
import re
import shutil

import pandas as pd
import pytest

from tests.workflow_helpers import copy_repository, snakemake, tiny_config, write_config

pytestmark = pytest.mark.workflow

TARGETS = ("results/tables/e1_peaks.md", "results/tables/e2_compression.md")
NOISE_STDS = [0.0, 0.1]
E2_MODELS = ("g_nft", "abel_g_nft")


def synthetic_config() -> dict:
    """E1 with one freqseed and E2 with two seeds, two noise levels and narrow MLPs."""
    small = {"latent_dim": 1, "action_dim": 32, "encoder_hidden": [32],
             "decoder_hidden": [32]}
    return tiny_config("data", **{
        "e1": {
            "enabled": True,
            "freqseeds": [1],
            "seeds": [1],
            "data": {"num_sequences": 200},
            "rollout": {"test_seeds": [1, 2], "num_sequences": 30, "frames": 8},
            "training": {"iterations": 40, "log_interval": 20, "lr": 0.001},
            "table_rollout_steps": [1, 6],
        },
        "e2": {
            "enabled": True,
            "seeds": [1, 2],
            "noise_stds": NOISE_STDS,
            "data": {"num_sequences": 100},
            "training": {"iterations": 30, "log_interval": 15},
            "models": {
                "g_nft": {"label": "g-NFT", "frames": 6, "cond_frames": 4,
                          "architecture": {"transition": "known", "activation": "relu", **small}},
                "abel_g_nft": {"label": "G-NFT (abelian)", "frames": 10, "cond_frames": 4,
                               "architecture": {"transition": "abelian", "activation": "tanh",
                                                **small},
                               "optimisation": {"iterations": 30}},
            },
        },
    })


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory):
    """A workflow copy in which the E1 and E2 tables have been built."""
    workdir = copy_repository(tmp_path_factory.mktemp("synthetic"))
    write_config(workdir, synthetic_config())
    snakemake(workdir, *TARGETS)
    return workdir


@pytest.fixture
def workdir(synthetic_run, tmp_path):
    """A private copy of the finished run (timestamps and Snakemake metadata kept)."""
    target = tmp_path / "run"
    shutil.copytree(synthetic_run, target, symlinks=True)
    return target


def test_e2_table_has_dft_row(synthetic_run):
    table = pd.read_csv(synthetic_run / "results/tables/e2_compression.csv").set_index("model")
    assert round(table.loc["dft", "test_sse_mean"], 4) == 8.0956
    assert round(table.loc["dft_exact", "test_sse_mean"], 3) == 5.877
    assert "8.0956" in (synthetic_run / "results/tables/e2_compression.md").read_text()


def test_e2_table_has_row_per_model_and_noise(synthetic_run):
    table = pd.read_csv(synthetic_run / "results/tables/e2_compression.csv")
    models = table[table.seeds > 0]
    assert set(zip(models.model, models.noise_std)) == set(itertools.product(E2_MODELS, NOISE_STDS))
    assert len(models) == len(E2_MODELS) * len(NOISE_STDS)
    assert (models.seeds == 2).all()
    assert models.test_sse_std.notna().all()


def test_e1_spectrum_covers_frequencies_0_to_64(synthetic_run):
    spectrum = pd.read_parquet(
        synthetic_run / "results/eval/e1/unft/freqseed1/seed1/spectrum.parquet"
    )
    assert spectrum.frequency.tolist() == list(range(65))
    assert str(spectrum.character.dtype) == "float64"
    peaks = spectrum.set_index("frequency").ground_truth
    assert peaks[37] == pytest.approx(2.0, abs=0.05)


def test_e1_table_and_plot(synthetic_run):
    table = pd.read_csv(synthetic_run / "results/tables/e1_peaks.csv")
    assert table.strong_frequencies.tolist() == ["37 43 12 8 63"]
    assert len(table.top_peaks[0].split()) == 5
    assert {"rollout_sse_step1", "rollout_sse_step6"} <= set(table.columns)
    rollout_file = synthetic_run / "results/eval/e1/unft/freqseed1/seed1/rollout.parquet"
    rollout = pd.read_parquet(rollout_file)
    assert rollout.step.tolist() == list(range(1, 7))
    assert (rollout.num_sequences == 60).all()
    assert (synthetic_run / "results/tables/e1_spectrum.png").stat().st_size > 0


def test_training_log_has_interval_lines(synthetic_run):
    log = (synthetic_run / "logs/train_sequence_model_e2/g_nft/sigma0.1/seed1.log").read_text()
    lines = re.findall(r"iteration \d+/30 train_loss .* samples/s \d+ elapsed", log)
    assert len(lines) == 2
    benchmarks = synthetic_run / "results/benchmarks/train_sequence_model_e2"
    assert (benchmarks / "g_nft/sigma0.1/seed1.tsv").is_file()


def planned_jobs(result) -> dict[str, int]:
    """Job counts per rule from the 'Job stats' table of a dry run."""
    text = result.stdout + result.stderr
    stats = text.split("Job stats:")[1].split("total")[0]
    return {name: int(count) for name, count in re.findall(r"^(\w+)\s+(\d+)$", stats, re.M)}


def test_hyperparameter_change_reruns_only_that_model(workdir):
    config = synthetic_config()
    config["e2"]["models"]["abel_g_nft"]["optimisation"]["lr"] = 0.0003
    write_config(workdir, config)
    jobs = planned_jobs(snakemake(workdir, *TARGETS, "--dry-run"))
    assert jobs == {
        "train_sequence_model_e2": 4,
        "evaluate_sequence_model_e2": 4,
        "aggregate_synthetic_e2": 1,
    }


def test_second_run_does_nothing(workdir):
    result = snakemake(workdir, *TARGETS)
    assert "Nothing to be done" in result.stdout + result.stderr
