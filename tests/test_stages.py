"""Stage command lines on a small real rotated-MNIST file: train, evaluate, tune, aggregate."""

from __future__ import annotations

import json

import optuna
import pandas as pd
import pytest
import torch

from stages import aggregate, evaluate, train, tune
from stages.claims import reproduction_table
from stages.common import StageError
from stages.models import MODEL_KINDS

SMALL = {
    "gnft": {"latent_dim": 4, "max_frequency": 2},
    "msp": {"latent_dim": 4, "action_dim": 3},
    "autoencoder": {"latent_size": 16},
    "invariant_autoencoder": {"latent_size": 16},
    "supervised": {"latent_size": 16},
    "contrastive": {"latent_size": 16, "head_dim": 8},
    "steerable_cnn": {"rotations": 4, "fields": [2, 2, 4], "kernel_sizes": [3, 3, 3]},
}
OPTIONS = {"epochs": 1, "batch_size": 64, "lr": 1e-3, "weight_decay": 0.0}


def train_small(mnist_h5, tmp_path, kind, *extra):
    model, metrics = tmp_path / f"{kind}.pt", tmp_path / f"{kind}.parquet"
    train.main([
        "--data", str(mnist_h5), "--kind", kind, "--architecture", json.dumps(SMALL[kind]),
        "--optimisation", json.dumps(OPTIONS), "--seed", "0", "--device", "cpu",
        "--out-model", str(model), "--out-metrics", str(metrics), *extra,
    ])
    return model, metrics


def evaluate_small(mnist_h5, model, out, *extra):
    evaluate.main([
        "--model", str(model), "--data", str(mnist_h5), "--model-name", "m",
        "--train-dataset", "mnist", "--dataset", "mnist", "--domain", "in_domain",
        "--seed", "0", "--device", "cpu", "--probe-max-iter", "200", "--out", str(out), *extra,
    ])
    return pd.read_parquet(out)


@pytest.mark.parametrize("kind", sorted(MODEL_KINDS))
def test_every_kind_trains_and_evaluates(mnist_h5, tmp_path, kind):
    model, metrics = train_small(mnist_h5, tmp_path, kind)
    assert len(pd.read_parquet(metrics)) == 1
    saved = torch.load(model, weights_only=True)
    assert saved["kind"] == kind
    assert saved["architecture"] == SMALL[kind]
    results = evaluate_small(mnist_h5, model, tmp_path / "eval.parquet")
    accuracy = results[(results.metric == "probe_accuracy") & (results.split == "test")]
    assert len(accuracy) >= 1
    assert accuracy.value.between(0, 1).all()
    assert list(results.columns) == evaluate.RESULT_COLUMNS


def test_occluded_training_and_probe(mnist_h5, tmp_path):
    model, _ = train_small(mnist_h5, tmp_path, "gnft", "--occlusion")
    assert torch.load(model, weights_only=True)["occlusion"] is True
    plain = evaluate_small(mnist_h5, model, tmp_path / "plain.parquet")
    occluded = evaluate_small(mnist_h5, model, tmp_path / "occluded.parquet", "--occlusion")
    key = (plain.metric == "probe_accuracy") & (plain.split == "train")
    assert not plain[key].value.equals(occluded[key].value)


def test_probe_deterministic_for_seed(mnist_h5, tmp_path):
    model, _ = train_small(mnist_h5, tmp_path, "autoencoder")
    first = evaluate_small(mnist_h5, model, tmp_path / "a.parquet")
    second = evaluate_small(mnist_h5, model, tmp_path / "b.parquet")
    pd.testing.assert_frame_equal(first, second)


def test_training_is_repeatable_on_cpu(mnist_h5, tmp_path):
    _, first = train_small(mnist_h5, tmp_path / "a", "gnft")
    _, second = train_small(mnist_h5, tmp_path / "b", "gnft")
    columns = ["train_loss", "val_loss"]
    pd.testing.assert_frame_equal(pd.read_parquet(first)[columns], pd.read_parquet(second)[columns])


def test_invalid_optimisation_is_named(mnist_h5, tmp_path):
    with pytest.raises(StageError, match=r"missing \['lr'\]"):
        train.main([
            "--data", str(mnist_h5), "--kind", "gnft", "--seed", "0",
            "--optimisation", json.dumps({"epochs": 1, "batch_size": 8, "weight_decay": 0}),
            "--out-model", str(tmp_path / "m.pt"), "--out-metrics", str(tmp_path / "m.parquet"),
        ])


def run_tune(mnist_h5, tmp_path, trials):
    out = tmp_path / "best.json"
    tune.main([
        "--data", str(mnist_h5), "--kind", "autoencoder",
        "--architecture", json.dumps(SMALL["autoencoder"]),
        "--optimisation", json.dumps(OPTIONS), "--trials", str(trials), "--epochs", "1",
        "--probe-max-iter", "100", "--device", "cpu",
        "--storage", str(tmp_path / "study.sqlite3"), "--out", str(out),
    ])
    return json.loads(out.read_text())


def load_study(tmp_path):
    return optuna.load_study(study_name="autoencoder-mnist",
                             storage=f"sqlite:///{tmp_path / 'study.sqlite3'}")


def test_tune_resumes_half_finished_study(mnist_h5, tmp_path):
    run_tune(mnist_h5, tmp_path, trials=1)
    # A trial that a killed process left running does not count as done.
    load_study(tmp_path).ask()
    best = run_tune(mnist_h5, tmp_path, trials=2)
    states = [trial.state for trial in load_study(tmp_path).trials]
    assert states.count(optuna.trial.TrialState.COMPLETE) == 2
    assert best["completed_trials"] == 2
    assert set(best["optimisation"]) == {"lr", "weight_decay"}
    assert 0 <= best["value"] <= 1


def test_tuned_parameters_reach_training(mnist_h5, tmp_path):
    tuned = tmp_path / "best.json"
    tuned.write_text(json.dumps({"architecture": {"latent_size": 12},
                                 "optimisation": {"lr": 5e-4, "weight_decay": 0.01}}))
    model, _ = train_small(mnist_h5, tmp_path, "autoencoder", "--tuned", str(tuned))
    saved = torch.load(model, weights_only=True)
    assert saved["architecture"] == {"latent_size": 12}
    assert saved["optimisation"]["lr"] == 5e-4


def fake_summary_rows():
    rows = []
    accuracies = {"gnft": (0.9, 0.7), "autoencoder": (0.8, 0.6), "steerable": (0.95, 0.65)}
    for variant, drop in (("mnist", 0.0), ("mnist_occluded", 0.1)):
        for model, (inside, outside) in accuracies.items():
            model_drop = drop * (3 if model == "steerable" else 1)
            for dataset, value in (("mnist", inside), ("fashion_mnist", outside)):
                rows.append({"train_dataset": variant, "model": model, "feature": "latent",
                             "dataset": dataset,
                             "domain": "in_domain" if dataset == "mnist" else "out_of_domain",
                             "split": "test", "metric": "probe_accuracy", "seed": 0,
                             "value": value - model_drop})
    return pd.DataFrame(rows)


def test_reproduction_table_row_per_claim():
    summary = aggregate.summarise(fake_summary_rows())
    kinds = {"gnft": "gnft", "autoencoder": "autoencoder", "steerable": "steerable_cnn"}
    table = reproduction_table(summary, kinds, "mnist", "mnist", ["fashion_mnist"], "mnist_occluded")
    assert len(table) == 4
    verdicts = dict(zip(table.claim, table.verdict))
    assert verdicts["g-NFT's linear probe is competitive in-domain"] == "holds"
    assert verdicts["g-NFT's features transfer better out of domain (fashion_mnist) than the baselines"] == "holds"
    assert verdicts["under occlusion, steerable CNNs lose their advantage while g-NFT does not"] == "holds"
    assert verdicts["g-NFT's latent transforms linearly, Phi(g x) = Phi(x) M(g)"] == "not comparable"


def test_confidence_interval_of_two_seeds():
    rows = fake_summary_rows()
    second = rows.assign(seed=1, value=rows.value + 0.02)
    summary = aggregate.summarise(pd.concat([rows, second]))
    row = summary.iloc[0]
    # Two seeds: half-width = t(0.975, 1) * std / sqrt(2) = 12.706 * 0.01414 / 1.414.
    assert row["ci95_high"] - row["mean"] == pytest.approx(12.706 * 0.01, rel=1e-3)


def test_loader_workers_give_same_batches(mnist_h5):
    from stages.h5data import RotatedViews

    dataset = RotatedViews(mnist_h5, "train")
    batches = {}
    for workers in (0, 2):
        generator = torch.Generator().manual_seed(5)
        loader = train.make_loader(dataset, 64, True, generator, workers)
        batches[workers] = [batch["labels"] for batch in loader]
    assert len(batches[0]) == len(batches[2])
    assert all(torch.equal(a, b) for a, b in zip(batches[0], batches[2]))


def test_workers_open_the_file_themselves(mnist_h5):
    from stages.h5data import RotatedViews

    dataset = RotatedViews(mnist_h5, "train")
    # Nothing is loaded (and no file is open) before the first batch, so a fork copies none.
    assert dataset._arrays is None
