"""Inputs of the benchmarks: pipeline settings from config.yaml and rotated-MNIST files.

Only the official test splits (10,000 images per dataset) are expected offline, so the
paper-scale pool of 70,000 MNIST images is simulated by tiling the test images (see
``write_tiled_mnist``).
"""

from __future__ import annotations

import copy
import gzip
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from benchmarks.timing import REPO_ROOT

MNIST_TEST_IMAGES = "t10k-images-idx3-ubyte.gz"
MNIST_TEST_LABELS = "t10k-labels-idx1-ubyte.gz"
PAPER_POOL_SIZE = 70_000
IDX_IMAGE_MAGIC = 2051
IDX_LABEL_MAGIC = 2049


class BenchmarkError(Exception):
    """A benchmark cannot run (missing data, failed command); the message says what to do."""


@dataclass(frozen=True)
class PipelineSettings:
    """The config.yaml values that the benchmarks reproduce (demo scale unless stated)."""

    views: int
    fractions: tuple[float, float, float]
    interpolation: str
    seed: int
    batch_size: int
    lr: float
    weight_decay: float
    gnft_architecture: dict
    paper_batch_size: int
    paper_epochs: int
    paper_lr: float
    paper_weight_decay: float
    demo_max_images: int | None  # rotation.max_images of the demo scale (None: all images)
    demo_train_rows: int  # training split of the demo scale
    paper_train_rows: int  # training split of the paper scale's 70,000 images


def merge_into(base: dict, overlay: dict) -> None:
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge_into(base[key], value)
        else:
            base[key] = copy.deepcopy(value)


def pipeline_settings(config_path: Path = REPO_ROOT / "config.yaml") -> PipelineSettings:
    """Read the rotation, training and g-NFT settings, and the paper-scale overrides."""
    config = yaml.safe_load(config_path.read_text())
    paper = copy.deepcopy(config)
    merge_into(paper, config.get("paper") or {})
    gnft = [model for model in config["models"].values() if model["kind"] == "gnft"]
    if not gnft:
        raise BenchmarkError(f"{config_path} configures no model of kind gnft")
    return PipelineSettings(
        views=config["rotation"]["views"],
        fractions=tuple(config["rotation"]["fractions"]),
        interpolation=config["rotation"]["interpolation"],
        seed=config["rotation"]["seed"],
        batch_size=config["training"]["batch_size"],
        lr=config["training"]["lr"],
        weight_decay=config["training"]["weight_decay"],
        gnft_architecture=dict(gnft[0].get("architecture", {})),
        paper_batch_size=paper["training"]["batch_size"],
        paper_epochs=paper["training"]["epochs"],
        paper_lr=paper["training"]["lr"],
        paper_weight_decay=paper["training"]["weight_decay"],
        demo_max_images=config["rotation"]["max_images"],
        demo_train_rows=train_rows(config["rotation"], PAPER_POOL_SIZE),
        paper_train_rows=train_rows(paper["rotation"], PAPER_POOL_SIZE),
    )


def train_rows(rotation: dict, pool_size: int) -> int:
    """Training rows of a rotation setting, given the pooled image count when uncapped."""
    images = rotation["max_images"] or pool_size
    return round(rotation["fractions"][0] * min(images, pool_size))


def default_data_root() -> Path:
    """NFT_TEST_DATA when set, else ../shared/data beside the repository (as the tests use)."""
    return Path(os.environ.get("NFT_TEST_DATA", REPO_ROOT.parent / "shared" / "data"))


def check_data_root(data_root: Path, folders: tuple[str, ...] = ("MNIST",)) -> Path:
    """Return ``data_root`` made absolute, after checking that the test splits are there."""
    for folder in folders:
        for name in (MNIST_TEST_IMAGES, MNIST_TEST_LABELS):
            path = data_root / folder / "raw" / name
            if not path.is_file():
                raise BenchmarkError(
                    f"raw file {path} not found; pass --data-root (or set NFT_TEST_DATA) to a "
                    "folder with MNIST/raw, FashionMNIST/raw and KMNIST/raw holding the "
                    "official t10k files"
                )
    return data_root.resolve()


def mnist_manifest(data_root: Path) -> dict:
    """The check_raw manifest of MNIST in ``data_root`` (checksums verified)."""
    from stages.check_raw import check_dataset
    from stages.idx import get_dataset

    return check_dataset(get_dataset("mnist"), str(data_root))


def write_idx(path: Path, array: np.ndarray, magic: int) -> None:
    """Write a uint8 array as a gzip-compressed IDX file (big-endian int32 header)."""
    header = np.array([magic, *array.shape], dtype=">i4").tobytes()
    with gzip.open(path, "wb", compresslevel=6) as handle:
        handle.write(header)
        handle.write(np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def write_tiled_mnist(data_root: Path, folder: Path, pool_size: int) -> dict:
    """Write a manifest whose pooled MNIST splits hold ``pool_size`` images.

    The official test split is used as it is, and a ``train`` split of pool_size - 10,000
    images is made by repeating the test images. The manifest has the layout of
    stages.check_raw's, with the real digests of the tiled files (they do not match the
    published checksums, so check_raw itself would reject them).
    """
    from stages.common import file_digests
    from stages.idx import read_images, read_labels

    raw = data_root / "MNIST" / "raw"
    images = read_images(raw / MNIST_TEST_IMAGES)
    labels = read_labels(raw / MNIST_TEST_LABELS)
    if pool_size <= len(images):
        raise BenchmarkError(f"pool size {pool_size} must exceed the {len(images)} test images")
    tiled_count = pool_size - len(images)
    repeats = -(-tiled_count // len(images))
    tiled_images = np.tile(images, (repeats, 1, 1))[:tiled_count]
    tiled_labels = np.tile(labels, repeats)[:tiled_count]
    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        "train-images-idx3-ubyte.gz": folder / "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz": folder / "train-labels-idx1-ubyte.gz",
        MNIST_TEST_IMAGES: raw / MNIST_TEST_IMAGES,
        MNIST_TEST_LABELS: raw / MNIST_TEST_LABELS,
    }
    write_idx(paths["train-images-idx3-ubyte.gz"], tiled_images, IDX_IMAGE_MAGIC)
    write_idx(paths["train-labels-idx1-ubyte.gz"], tiled_labels, IDX_LABEL_MAGIC)
    files = {
        name: {"path": str(path), "bytes": path.stat().st_size, **file_digests(path)}
        for name, path in paths.items()
    }
    return {"dataset": "mnist", "splits": ["train", "test"], "files": files}


def write_rotated_mnist(manifest: dict, settings: PipelineSettings, path: Path,
                        max_images: int | None, interpolation: str | None = None) -> Path:
    """Build a rotated MNIST file with the dataset stage's own functions."""
    from stages.build_dataset import build
    from stages.h5data import write_rotated

    arrays, attrs = build(
        manifest, settings.seed, settings.views, settings.fractions, max_images,
        interpolation or settings.interpolation,
    )
    write_rotated(path, arrays, attrs)
    return path
