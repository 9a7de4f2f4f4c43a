"""Stages of the synthetic experiments: signal files, sequence models, training and metrics."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from stages import aggregate_synthetic, evaluate_sequence, generate_signals, train_sequence
from stages.models.sequence import SequenceConfig, SequenceNFT, build_sequence_model
from stages.nft.representations import so2_paired_representation
from stages.signal_data import read_signal_attrs, read_signals

GNFT_ARCHITECTURE = {
    "transition": "known", "latent_dim": 1, "action_dim": 32, "encoder_hidden": [16],
    "decoder_hidden": [16], "activation": "relu",
}


def optimisation(**overrides) -> dict:
    options = {"iterations": 20, "batch_size": 8, "lr": 1e-3, "lr_schedule": "step80_div15",
               "reconstruction_fraction": 1.0, "log_interval": 10}
    options.update(overrides)
    return options


@pytest.fixture(scope="module")
def e2_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("signals") / "e2.h5"
    generate_signals.main(["e2", "--seed", "3", "--num-data", "100", "--frames", "6",
                           "--out", str(path)])
    return path


def test_e1_file_attributes_and_splits(tmp_path):
    path = tmp_path / "e1.h5"
    generate_signals.main(["e1", "--freqseed", "2", "--num-data", "50", "--out", str(path)])
    attrs = read_signal_attrs(path)
    assert attrs["complete"] is True
    assert attrs["strong_frequencies"] == [40, 15, 45, 8, 22]
    assert attrs["weak_frequencies"] == [43, 18]
    assert attrs["split_sizes"] == {"train": 40, "val": 5, "test": 5}
    assert attrs["code_version"]
    splits = ("train", "val", "test")
    indices = np.concatenate([read_signals(path, split)["index"] for split in splits])
    assert sorted(indices.tolist()) == list(range(50))
    assert read_signals(path, "train")["sequences"].dtype == np.float32


def test_e1_rollout_file_pools_test_seeds(tmp_path):
    path = tmp_path / "rollout.h5"
    generate_signals.main(["e1-rollout", "--freqseed", "1", "--test-seeds", "1", "2",
                           "--num-data", "20", "--frames", "7", "--out", str(path)])
    test = read_signals(path, "test")
    assert test["sequences"].shape == (40, 7, 128)
    assert test["repeat"].tolist() == [1] * 20 + [2] * 20
    assert not np.allclose(test["coefficients"][:20], test["coefficients"][20:])


def test_e2_test_file_gives_dft_baseline(tmp_path):
    data, out = tmp_path / "test.h5", tmp_path / "dft.parquet"
    generate_signals.main(["e2-test", "--out", str(data)])
    evaluate_sequence.main(["dft", "--data", str(data), "--out", str(out)])
    values = pd.read_parquet(out).set_index("baseline")["value"]
    assert round(values["dft"], 4) == 8.0956
    assert round(values["dft_exact"], 3) == 5.877
    assert round(values["zero"], 2) == 51.80


def test_read_signals_rejects_too_many_frames(e2_file):
    from stages.common import StageError

    with pytest.raises(StageError, match="6 frames, 7 requested"):
        read_signals(e2_file, "train", 7)


def test_gnft_rollout_uses_true_shift():
    torch.manual_seed(0)
    model = build_sequence_model(GNFT_ARCHITECTURE)
    sequences = torch.randn(3, 6, 128)
    shifts = torch.tensor([0.3, 1.0, 2.5])
    out = model.predict(sequences, shifts, num_cond=4, reconstruct=True)
    expected_m = so2_paired_representation(shifts, 16)
    assert torch.allclose(out["transition"], expected_m)
    last = model.encode(sequences[:, 3])
    for step in range(2):
        last = last @ expected_m
        assert torch.allclose(out["predicted"][:, step], model.decode(last), atol=1e-5)
    other = model.predict(sequences, shifts + 0.5, num_cond=4, reconstruct=True)
    assert torch.allclose(other["reconstructed"], out["reconstructed"])
    assert not torch.allclose(other["predicted"], out["predicted"])


def test_loss_covers_all_frames_while_reconstructing():
    torch.manual_seed(0)
    model = SequenceNFT(SequenceConfig(encoder_hidden=[8], decoder_hidden=[8]))
    sequences = torch.randn(4, 3, 128)
    shifts = torch.zeros(4)
    with_reconstruction = model.sequence_loss(sequences, shifts, 2, reconstruct=True)
    without = model.sequence_loss(sequences, shifts, 2, reconstruct=False)
    mixed = (2 * with_reconstruction["reconstruction"] + with_reconstruction["prediction"]) / 3
    assert torch.allclose(with_reconstruction["loss"], mixed)
    assert torch.allclose(without["loss"], without["prediction"])
    assert torch.allclose(without["prediction"], with_reconstruction["prediction"])


def test_sequence_config_rejects_odd_block_dimension():
    with pytest.raises(ValueError, match="even action_dim"):
        SequenceConfig(transition="abelian", action_dim=9)


class PerfectModel:
    """Returns the input frames, so every reconstruction and prediction is exact."""

    def predict(self, sequences, shifts, num_cond, reconstruct):
        return {"reconstructed": sequences[:, :num_cond], "predicted": sequences[:, num_cond:]}


class OffsetModel:
    """Predicts the last frame as all zeros and reconstructs exactly."""

    def predict(self, sequences, shifts, num_cond, reconstruct):
        return {"reconstructed": sequences[:, :num_cond],
                "predicted": torch.zeros_like(sequences[:, num_cond:])}


def test_e2_error_of_perfect_model_is_zero():
    arrays = {"sequences": np.random.default_rng(0).normal(size=(40, 5, 128)).astype(np.float32),
              "shifts": np.zeros(40)}
    errors = evaluate_sequence.e2_test_errors(PerfectModel(), arrays, torch.device("cpu"))
    assert errors == {"test_sse": 0.0, "test_sse_reconstruction": 0.0, "test_sse_prediction": 0.0}


def test_e2_error_averages_batches_unweighted():
    # 17 sequences: a batch of 16 with zero frames and a last batch of one with frame 4 = 1.
    sequences = np.zeros((17, 5, 128), dtype=np.float32)
    sequences[16, 4] = 1.0
    arrays = {"sequences": sequences, "shifts": np.zeros(17)}
    errors = evaluate_sequence.e2_test_errors(OffsetModel(), arrays, torch.device("cpu"))
    assert errors["test_sse_prediction"] == pytest.approx(128 / 2)
    assert errors["test_sse"] == pytest.approx(128 / 5 / 2)
    assert errors["test_sse_reconstruction"] == 0.0


@pytest.mark.parametrize(
    "schedule, fraction, multiplier",
    [
        ("step80_div15", 0.79, 1.0),
        ("step80_div15", 0.8, 1 / 15),
        ("step40_div5_step80_div15", 0.4, 1 / 5),
        ("step40_div5_step80_div15", 0.9, 1 / 15),
        ("step80_div3", 0.85, 1 / 3),
        ("constant", 0.99, 1.0),
    ],
)
def test_learning_rate_schedules(schedule, fraction, multiplier):
    options = optimisation(iterations=1000, lr=0.3, lr_schedule=schedule)
    rate = train_sequence.learning_rate(int(fraction * 1000), options)
    assert rate == pytest.approx(0.3 * multiplier)


def run_training(data, out_dir, noise_std="0.1", seed="1") -> tuple[dict, pd.DataFrame]:
    model, metrics = out_dir / "model.pt", out_dir / "metrics.parquet"
    train_sequence.main([
        "--data", str(data), "--frames", "6", "--cond-frames", "4",
        "--architecture", json.dumps(GNFT_ARCHITECTURE),
        "--optimisation", json.dumps(optimisation()), "--noise-std", noise_std,
        "--seed", seed, "--device", "cpu", "--out-model", str(model), "--out-metrics", str(metrics),
    ])
    return torch.load(model, weights_only=True), pd.read_parquet(metrics)


def test_training_is_reproducible_and_logged(e2_file, tmp_path):
    first, metrics = run_training(e2_file, tmp_path / "a")
    second, _ = run_training(e2_file, tmp_path / "b")
    for key, value in first["state_dict"].items():
        assert torch.equal(value, second["state_dict"][key]), key
    assert metrics.iteration.tolist() == [10, 20]
    assert list(metrics.columns) == list(train_sequence.METRICS_SCHEMA)
    assert metrics.lr.tolist() == pytest.approx([1e-3, 1e-3 / 15])
    assert first["noise_std"] == pytest.approx(0.1)


def test_training_noise_changes_weights(e2_file, tmp_path):
    noisy, _ = run_training(e2_file, tmp_path / "a", noise_std="0.1")
    clean, _ = run_training(e2_file, tmp_path / "b", noise_std="0")
    weights = "encoder.0.weight"
    assert not torch.equal(noisy["state_dict"][weights], clean["state_dict"][weights])


def test_e1_table_counts_recovered_strong_frequencies():
    frequency = np.arange(65)
    character = np.zeros(65)
    character[[37, 43, 12, 8]] = 2.0  # four of the strong frequencies of freqseed 1
    character[50] = 1.5
    spectra = pd.DataFrame({"freqseed": 1, "seed": 1, "frequency": frequency,
                            "character": character, "ground_truth": 0.0, "observed_fft": 0.0})
    rollouts = pd.DataFrame({"freqseed": 1, "seed": 1, "step": [1, 2], "sse_mean": [0.1, 0.4],
                             "sse_std": 0.0, "zero_sse_mean": 40.0, "num_sequences": 10})
    table = aggregate_synthetic.e1_table(spectra, rollouts, [1, 2, 5])
    row = table.iloc[0]
    assert row.strong_recovered == 4
    assert row.top_peaks.split()[:4] == ["8", "12", "37", "43"]
    assert row.top_peaks.split()[4] == "50"
    assert row.rollout_sse_step2 == pytest.approx(0.4)
    assert np.isnan(row.rollout_sse_step5)
