"""Build a dataset's rotated-image HDF5 file from its verified raw IDX files.

Usage: python -m stages.build_dataset --manifest results/raw/mnist.json --out mnist.h5
       [--seed 0] [--views 2] [--fractions 0.8 0.1 0.1] [--max-images N]
       [--interpolation bilinear]

The available official splits are pooled, an optional seeded subset is drawn, and the pool is
split 80/10/10 (by default) into train, validation and test. Every image gets ``views`` copies
rotated by angles drawn uniformly from [0, 2*pi), rotated in batches on the CPU.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import zlib

import numpy as np
import torch

from stages.common import StageError, code_version, run_main, set_threads
from stages.h5data import SPLITS, write_rotated
from stages.idx import SPLIT_PREFIXES, get_dataset, read_images, read_labels
from stages.rotation import INTERPOLATIONS, rotate

log = logging.getLogger("stages.build_dataset")

ROTATION_BATCH = 4096


def dataset_rng(seed: int, dataset_key: str) -> np.random.Generator:
    """Return the generator for one dataset; datasets built with one seed get distinct streams."""
    return np.random.default_rng([seed, zlib.crc32(dataset_key.encode())])


def split_sizes(n: int, fractions: tuple[float, float, float]) -> dict[str, int]:
    """Return train/val/test sizes that add up to ``n`` (test takes the rounding remainder)."""
    if len(fractions) != 3 or any(f < 0 for f in fractions) or not math.isclose(sum(fractions), 1.0):
        raise StageError(
            f"invalid split fractions {list(fractions)}: give three non-negative numbers "
            "(train, val, test) that sum to 1"
        )
    n_train = round(fractions[0] * n)
    n_val = round(fractions[1] * n)
    return {"train": n_train, "val": n_val, "test": n - n_train - n_val}


def rotate_uint8(images: np.ndarray, angles: np.ndarray, interpolation: str) -> np.ndarray:
    """Rotate uint8 images (N, H, W) by angles (N, V) into uint8 copies (N, V, H, W)."""
    n, views = angles.shape
    flat_images = np.repeat(images, views, axis=0)
    flat_angles = angles.reshape(-1)
    out = np.empty_like(flat_images)
    for start in range(0, len(flat_images), ROTATION_BATCH):
        stop = start + ROTATION_BATCH
        batch = torch.from_numpy(flat_images[start:stop]).unsqueeze(1)
        rotated = rotate(batch, torch.from_numpy(flat_angles[start:stop]), interpolation)
        out[start:stop] = rotated.squeeze(1).round_().clamp_(0, 255).to(torch.uint8).numpy()
    return out.reshape(n, views, *images.shape[1:])


def build(manifest: dict, seed: int, views: int, fractions, max_images: int | None,
          interpolation: str) -> tuple[dict, dict]:
    """Return the split arrays and file attributes of one dataset."""
    if views < 1:
        raise StageError(f"invalid views {views}: every image needs at least one rotated copy")
    if interpolation not in INTERPOLATIONS:
        raise StageError(f"invalid interpolation {interpolation!r}; use one of {INTERPOLATIONS}")
    dataset = get_dataset(manifest["dataset"])
    images, labels = [], []
    for split in manifest["splits"]:
        image_file, label_file = dataset.files(split)
        split_images = read_images(manifest["files"][image_file]["path"])
        split_labels = read_labels(manifest["files"][label_file]["path"])
        if len(split_images) != len(split_labels):
            raise StageError(
                f"invalid raw files: {image_file} contains {len(split_images)} images but {label_file} "
                f"{len(split_labels)} labels"
            )
        images.append(split_images)
        labels.append(split_labels)
    images, labels = np.concatenate(images), np.concatenate(labels).astype(np.int64)

    rng = dataset_rng(seed, dataset.key)
    order = rng.permutation(len(images))
    if max_images is not None:
        if max_images < 1:
            raise StageError(f"invalid max_images {max_images}: give a positive count or null")
        order = order[:max_images]
    sizes = split_sizes(len(order), tuple(fractions))
    angles = rng.uniform(0.0, 2 * math.pi, size=(len(order), views)).astype(np.float32)
    rotated = rotate_uint8(images[order], angles, interpolation)

    arrays, start = {}, 0
    for split in SPLITS:
        rows = slice(start, start + sizes[split])
        arrays[split] = {
            "images": rotated[rows],
            "angles": angles[rows],
            "labels": labels[order][rows],
            "source_index": order[rows].astype(np.int64),
            "canonical": images[order][rows],
        }
        start += sizes[split]
    attrs = {
        "dataset": dataset.key,
        "seed": seed,
        "views": views,
        "split_fractions": list(fractions),
        "split_sizes": sizes,
        "pooled_splits": manifest["splits"],
        "pooled_size": int(len(images)),
        "max_images": -1 if max_images is None else max_images,
        "rotation_convention": "counter-clockwise positive, radians, about the image centre, "
        "row 0 at the top",
        "angle_distribution": "uniform on [0, 2*pi)",
        "interpolation": interpolation,
        "source_checksums": {
            name: {"md5": info["md5"], "sha256": info["sha256"]}
            for name, info in manifest["files"].items()
        },
        "code_version": code_version(),
    }
    return arrays, attrs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", required=True, help="JSON written by stages.check_raw")
    parser.add_argument("--out", required=True, help="HDF5 file to write")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--views", type=int, default=2, help="rotated copies per image")
    parser.add_argument("--fractions", type=float, nargs=3, default=(0.8, 0.1, 0.1),
                        metavar=("TRAIN", "VAL", "TEST"))
    parser.add_argument("--max-images", type=int, default=None,
                        help="seeded subset of the pooled images (default: all)")
    parser.add_argument("--interpolation", default="bilinear", choices=INTERPOLATIONS)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)

    set_threads(args.threads)
    with open(args.manifest) as handle:
        manifest = json.load(handle)
    arrays, attrs = build(manifest, args.seed, args.views, args.fractions, args.max_images,
                          args.interpolation)
    write_rotated(args.out, arrays, attrs)
    log.info("%s: wrote %s with split sizes %s", attrs["dataset"], args.out, attrs["split_sizes"])


if __name__ == "__main__":
    run_main(main)
