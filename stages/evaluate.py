"""Evaluate a frozen encoder on one rotated dataset: linear probe and latent equivariance error.

Usage: python -m stages.evaluate --model model.pt --data fashion_mnist.h5 --model-name gnft
       --train-dataset mnist --dataset fashion_mnist --domain out_of_domain --seed 0
       --out eval.parquet [--probe-c 0.1 --probe-max-iter 1000 --threads 2]

The probe standardises the features of the first rotated copy of each image (StandardScaler
fitted on the train split), fits a scikit-learn logistic regression on the dataset's train split
and scores it on its test split. For models with an equivariant latent the relative error
||Phi(x_b) - Phi(x_a) M(theta_b - theta_a)|| / ||Phi(x_b)|| is averaged over the test split,
next to the same error with M = identity as a scale of reference.
"""

from __future__ import annotations

import argparse
import logging
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from stages import tables
from stages.common import StageError, pick_device, run_main, set_threads
from stages.h5data import OCCLUDED_COLS, OCCLUDED_ROWS, load_split
from stages.models import build_model
from stages.nft.representations import act

log = logging.getLogger("stages.evaluate")

FEATURE_BATCH = 1000
RESULT_COLUMNS = tables.EVALUATION.names


def load_model(path: Path, device: torch.device):
    """Rebuild a trained model from its saved file and put it in eval mode."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, pickle.UnpicklingError) as error:
        raise StageError(f"cannot load model file {path}: {error}; delete it and rerun") from error
    model = build_model(checkpoint["kind"], checkpoint["architecture"])
    model.load_state_dict(checkpoint["state_dict"])
    return model.to(device).eval(), checkpoint


def to_images(array: np.ndarray, device: torch.device) -> torch.Tensor:
    """uint8 images (N, H, W) -> float (N, 1, H, W) in [0, 1]."""
    return torch.from_numpy(array).float().div_(255).unsqueeze(1).to(device)


def first_copies(split: dict, occlusion: bool) -> np.ndarray:
    """Return the first rotated copy of every image (N, H, W), occluded as in training if requested."""
    images = split["images"][:, 0]
    if occlusion and split["images"].shape[1] > 1:
        images = images.copy()
        images[:, OCCLUDED_ROWS, OCCLUDED_COLS] = 0
    return images


@torch.no_grad()
def extract_features(model, images: np.ndarray, device: torch.device) -> dict[str, np.ndarray]:
    """Return each named feature of images (N, H, W) as float64 arrays (N, F)."""
    chunks: dict[str, list[np.ndarray]] = {}
    for start in range(0, len(images), FEATURE_BATCH):
        batch = to_images(images[start : start + FEATURE_BATCH], device)
        for name, value in model.features(batch).items():
            chunks.setdefault(name, []).append(value.double().cpu().numpy())
    return {name: np.concatenate(parts) for name, parts in chunks.items()}


def probe_accuracy(train_x, train_y, test_x, test_y, c: float, max_iter: int) -> tuple[float, float]:
    """Fit standardised logistic regression on train; return (train, test) accuracy."""
    probe = make_pipeline(
        StandardScaler(), LogisticRegression(C=c, max_iter=max_iter, random_state=0)
    )
    probe.fit(train_x, train_y)
    return probe.score(train_x, train_y), probe.score(test_x, test_y)


@torch.no_grad()
def equivariance_errors(model, split: dict, occlusion: bool, device: torch.device) -> dict[str, float]:
    """Mean relative latent error of predicting the last copy from the first, with M and with I."""
    if split["images"].shape[1] < 2:
        raise StageError("equivariance error needs at least two rotated copies per image (views >= 2)")
    first = first_copies(split, occlusion)
    errors, baseline = [], []
    for start in range(0, len(split["labels"]), FEATURE_BATCH):
        rows = slice(start, start + FEATURE_BATCH)
        z_a = model.latent(to_images(first[rows], device))
        z_b = model.latent(to_images(split["images"][rows, -1], device))
        angles = torch.from_numpy(split["angles"][rows]).to(device)
        predicted = act(z_a, model.relative(angles[:, 0], angles[:, -1]))
        norm = z_b.flatten(1).norm(dim=1)
        errors.append(((z_b - predicted).flatten(1).norm(dim=1) / norm).cpu())
        baseline.append(((z_b - z_a).flatten(1).norm(dim=1) / norm).cpu())
    return {
        "equivariance_error": torch.cat(errors).mean().item(),
        "equivariance_error_identity": torch.cat(baseline).mean().item(),
    }


def evaluate(model, data: Path, c: float, max_iter: int, occlusion: bool,
             device: torch.device) -> list[dict]:
    """Return result rows (split, feature, metric, value) for one model on one dataset."""
    train, test = load_split(data, "train"), load_split(data, "test")
    train_features = extract_features(model, first_copies(train, occlusion), device)
    test_features = extract_features(model, first_copies(test, occlusion), device)
    rows = [
        {"split": "train", "feature": "", "metric": "n_images", "value": len(train["labels"])},
        {"split": "test", "feature": "", "metric": "n_images", "value": len(test["labels"])},
    ]
    for name in sorted(train_features):
        train_acc, test_acc = probe_accuracy(
            train_features[name], train["labels"], test_features[name], test["labels"], c, max_iter
        )
        log.info("probe on %s features: train %.4f, test %.4f", name, train_acc, test_acc)
        rows.append({"split": "train", "feature": name, "metric": "probe_accuracy", "value": train_acc})
        rows.append({"split": "test", "feature": name, "metric": "probe_accuracy", "value": test_acc})
    if getattr(model, "equivariant_latent", False):
        for metric, value in equivariance_errors(model, test, occlusion, device).items():
            log.info("%s on test: %.4f", metric, value)
            rows.append({"split": "test", "feature": getattr(model, "latent_feature", "latent"),
                         "metric": metric, "value": value})
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, type=Path, help="model file from stages.train")
    parser.add_argument("--data", required=True, type=Path, help="dataset HDF5 file to probe on")
    parser.add_argument("--model-name", required=True, help="model name in the config")
    parser.add_argument("--train-dataset", required=True)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--domain", required=True, choices=["in_domain", "out_of_domain"])
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--probe-c", type=float, default=0.1, help="inverse L2 strength C")
    parser.add_argument("--probe-max-iter", type=int, default=1000)
    parser.add_argument("--occlusion", action="store_true",
                        help="occlude the first copy's top-left quadrant, as in training")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)

    if args.probe_c <= 0:
        raise StageError(f"invalid --probe-c {args.probe_c}: the inverse regularisation must be > 0")
    set_threads(args.threads)
    device = pick_device(args.device)
    torch.manual_seed(args.seed)
    model, _ = load_model(args.model, device)
    rows = evaluate(model, args.data, args.probe_c, args.probe_max_iter, args.occlusion, device)
    frame = pd.DataFrame(rows)
    for key in ("model_name", "train_dataset", "dataset", "domain", "seed"):
        frame[key.replace("model_name", "model")] = getattr(args, key)
    tables.write_parquet(frame, tables.EVALUATION, args.out)
    log.info("wrote %d rows to %s", len(frame), args.out)


if __name__ == "__main__":
    run_main(main)
