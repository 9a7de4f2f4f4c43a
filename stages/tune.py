"""Search a model's hyperparameters with Optuna and write the best ones.

Usage: python -m stages.tune --data mnist.h5 --kind gnft --architecture '{...}'
       --optimisation '{...}' --trials 40 --epochs 5 --seed 0
       --storage results/tune/gnft/mnist/study.sqlite3 --out results/tune/gnft/mnist/best.json

Each trial trains the model with sampled parameters for ``--epochs`` epochs and scores the
linear probe (fitted on the train split) on the validation split; the study maximises that
accuracy with Optuna's TPE sampler. The study lives in an SQLite file, so a search that was
interrupted resumes and runs only the trials still missing.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import optuna
import torch

from stages.common import StageError, pick_device, run_main, seed_everything, set_threads, write_json
from stages.evaluate import extract_features, first_copies, probe_accuracy
from stages.h5data import RotatedViews, load_split
from stages.models import build_model
from stages.train import check_optimisation, parse_json_arg, train

log = logging.getLogger("stages.tune")

# Search spaces of the authors' rotated-MNIST study; lr and weight decay apply to every kind.
# Each entry: parameter -> (distribution, arguments), with distributions int, log and choice.
COMMON_SPACE = {"lr": ("log", 1e-6, 1e-2), "weight_decay": ("log", 1e-8, 1e-1)}
ARCHITECTURE_SPACES = {
    "gnft": {
        "latent_dim": ("int", 16, 256),
        "max_frequency": ("int", 1, 12),
        "alignment_weight": ("choice", [0.0, 1.0]),
    },
    "msp": {"latent_dim": ("int", 16, 256), "action_dim": ("int", 1, 40)},
    "contrastive": {"head_dim": ("int", 32, 256), "temperature": ("log", 1e-6, 1.0)},
}


def suggest(trial: optuna.Trial, name: str, spec: tuple):
    kind, *args = spec
    if kind == "int":
        return trial.suggest_int(name, *args)
    if kind == "log":
        return trial.suggest_float(name, *args, log=True)
    return trial.suggest_categorical(name, args[0])


def sample_parameters(trial: optuna.Trial, kind: str) -> tuple[dict, dict]:
    """Return the (architecture, optimisation) parameters a trial samples."""
    optimisation = {name: suggest(trial, name, spec) for name, spec in COMMON_SPACE.items()}
    architecture = {
        name: suggest(trial, name, spec) for name, spec in ARCHITECTURE_SPACES.get(kind, {}).items()
    }
    return architecture, optimisation


def objective_factory(args, base_architecture: dict, base_optimisation: dict, device):
    train_set = RotatedViews(args.data, "train", args.occlusion)
    val_set = RotatedViews(args.data, "val", args.occlusion)
    train_split, val_split = load_split(args.data, "train"), load_split(args.data, "val")

    def objective(trial: optuna.Trial) -> float:
        architecture, optimisation = sample_parameters(trial, args.kind)
        architecture = {**base_architecture, **architecture}
        options = {**base_optimisation, **optimisation, "epochs": args.epochs}
        generator = seed_everything(args.seed + trial.number)
        model = build_model(args.kind, architecture)
        try:
            train(model, train_set, val_set, options, generator, device)
        except StageError as error:
            log.warning("trial %d failed: %s", trial.number, error)
            raise optuna.TrialPruned(str(error)) from error
        model.eval()
        train_features = extract_features(model, first_copies(train_split, args.occlusion), device)
        val_features = extract_features(model, first_copies(val_split, args.occlusion), device)
        scores = {
            name: probe_accuracy(train_features[name], train_split["labels"], val_features[name],
                                 val_split["labels"], args.probe_c, args.probe_max_iter)[1]
            for name in sorted(train_features)
        }
        trial.set_user_attr("scores", scores)
        log.info("trial %d: %s -> %s", trial.number, json.dumps(trial.params), scores)
        return max(scores.values())

    return objective


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--kind", required=True)
    parser.add_argument("--architecture", default="{}")
    parser.add_argument("--optimisation", required=True)
    parser.add_argument("--trials", type=int, required=True, help="total trials of the study")
    parser.add_argument("--epochs", type=int, required=True, help="training epochs per trial")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--probe-c", type=float, default=0.1)
    parser.add_argument("--probe-max-iter", type=int, default=1000)
    parser.add_argument("--occlusion", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--storage", required=True, type=Path, help="SQLite file of the study")
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)

    if args.trials < 1 or args.epochs < 1:
        raise StageError(f"invalid --trials {args.trials} or --epochs {args.epochs}: both must be >= 1")
    architecture = parse_json_arg(args.architecture, "architecture")
    optimisation = check_optimisation(parse_json_arg(args.optimisation, "optimisation"))
    set_threads(args.threads)
    device = pick_device(args.device)
    args.storage.parent.mkdir(parents=True, exist_ok=True)
    study = optuna.create_study(
        study_name=f"{args.kind}-{args.data.stem}",
        storage=f"sqlite:///{args.storage}",
        load_if_exists=True,
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=args.seed),
    )
    done = sum(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    remaining = max(0, args.trials - done)
    log.info("study %s: %d trials complete, running %d more", args.storage, done, remaining)
    if remaining:
        torch.manual_seed(args.seed)
        study.optimize(objective_factory(args, architecture, optimisation, device),
                       n_trials=remaining)
    if not any(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials):
        raise StageError(f"no trial of {args.storage} completed; see the log for their errors")
    best = study.best_trial
    tuned_architecture = {k: v for k, v in best.params.items() if k not in COMMON_SPACE}
    tuned_optimisation = {k: v for k, v in best.params.items() if k in COMMON_SPACE}
    write_json(args.out, {
        "architecture": tuned_architecture,
        "optimisation": tuned_optimisation,
        "value": best.value,
        "trial": best.number,
        "completed_trials": sum(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials),
    })
    log.info("best trial %d: %.4f with %s", best.number, best.value, best.params)


if __name__ == "__main__":
    run_main(main)
