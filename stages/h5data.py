"""The rotated-image HDF5 format: writing, checking and reading it.

One file per dataset, with one group per split (``train``, ``val``, ``test``), each holding

- ``images``: uint8 (N, V, H, W), V rotated copies of every image;
- ``angles``: float32 (N, V), the rotation of each copy in radians, counter-clockwise positive;
- ``labels``: int64 (N,);
- ``source_index``: int64 (N,), the image's position in the pooled raw splits;
- ``canonical``: uint8 (N, H, W), the unrotated image (for models that rotate on the fly).

File attributes record how it was made (seed, split sizes, rotation convention, interpolation,
source checksums, code version) and ``complete = True``, written last, so readers can reject a
file that was never finished. Readers open the file in the process that uses it, never before a
fork.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import torch
from torch.utils.data import Dataset

from stages.common import StageError, atomic_path

FORMAT_VERSION = 1
SPLITS = ("train", "val", "test")
ARRAYS = ("images", "angles", "labels", "source_index", "canonical")
# Occlusion: rows and columns [0, 14) are zeroed, leaving the bottom-right 14 x 14 quadrant.
OCCLUDED_ROWS = slice(0, 14)
OCCLUDED_COLS = slice(0, 14)


def occlude(images: torch.Tensor) -> torch.Tensor:
    """Zero the top-left quadrant of every copy but the last; images (B, V, 1, H, W).

    The occluder is fixed in image coordinates (it does not rotate with the content), and the
    last copy stays whole so that models can learn to predict the unoccluded image.
    """
    images = images.clone()
    images[:, :-1, ..., OCCLUDED_ROWS, OCCLUDED_COLS] = 0
    return images


def write_rotated(path: str | Path, splits: dict[str, dict[str, np.ndarray]], attrs: dict) -> None:
    """Write split arrays and attributes to ``path`` atomically (chunked, gzip-compressed)."""
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as handle:
        for name, arrays in splits.items():
            group = handle.create_group(name)
            n = len(arrays["labels"])
            for key, array in arrays.items():
                chunk_rows = max(1, min(n, 1024))
                group.create_dataset(
                    key,
                    data=array,
                    chunks=(chunk_rows,) + array.shape[1:] if n else None,
                    compression="gzip" if n else None,
                    compression_opts=1 if n else None,
                )
        for key, value in attrs.items():
            handle.attrs[key] = json.dumps(value) if isinstance(value, (dict, list)) else value
        handle.attrs["format_version"] = FORMAT_VERSION
        handle.attrs["complete"] = True


def read_attrs(path: str | Path) -> dict:
    """Return a finished file's attributes, JSON-valued ones decoded."""
    with open_checked(path) as handle:
        attrs = {}
        for key, value in handle.attrs.items():
            if isinstance(value, str) and value[:1] in "[{":
                value = json.loads(value)
            elif isinstance(value, np.generic):
                value = value.item()
            attrs[key] = value
        return attrs


def open_checked(path: str | Path) -> h5py.File:
    """Open a dataset file read-only after checking that it is finished and of this format."""
    path = Path(path)
    if not path.is_file():
        raise StageError(f"dataset file {path} not found; run the workflow to build it")
    try:
        # Finished files are never modified, so readers need no HDF5 file lock (which fails on
        # some NFS and Lustre mounts).
        handle = h5py.File(path, "r", locking=False)
    except OSError as error:
        raise StageError(
            f"cannot open dataset file {path} ({error}); it is damaged, so delete it and rerun"
        ) from error
    if not handle.attrs.get("complete", False):
        handle.close()
        raise StageError(f"dataset file {path} was never finished; delete it and rerun")
    version = handle.attrs.get("format_version")
    if version != FORMAT_VERSION:
        handle.close()
        raise StageError(
            f"dataset file {path} has format version {version}, this code reads "
            f"{FORMAT_VERSION}; delete it and rerun to rebuild it"
        )
    return handle


def load_split(path: str | Path, split: str, limit: int | None = None) -> dict[str, np.ndarray]:
    """Read one split into memory: images, angles, labels and source_index."""
    if split not in SPLITS:
        raise StageError(f"unknown split {split!r}; use one of {SPLITS}")
    with open_checked(path) as handle:
        group = handle[split]
        rows = slice(None) if limit is None else slice(0, limit)
        arrays = {key: group[key][rows] for key in ARRAYS}
    if len(arrays["labels"]) == 0:
        raise StageError(f"split {split!r} of {path} is empty; raise max_images or the fractions")
    check_arrays(path, split, arrays)
    return arrays


def check_arrays(path: str | Path, split: str, arrays: dict[str, np.ndarray]) -> None:
    """Reject arrays whose shape, dtype or values do not match the format."""
    images, angles = arrays["images"], arrays["angles"]
    where = f"split {split!r} of {path}"
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != images.shape[-2]:
        raise StageError(
            f"{where}: images have dtype {images.dtype} and shape {images.shape}, expected uint8 "
            "(N, V, H, H); rebuild the file with stages.build_dataset"
        )
    if angles.shape != images.shape[:2]:
        raise StageError(f"{where}: angles have shape {angles.shape}, expected {images.shape[:2]}")
    if not np.isfinite(angles).all():
        raise StageError(f"{where}: angles contain NaN or infinity; rebuild the file")
    n = len(images)
    for key in ("labels", "source_index", "canonical"):
        if len(arrays[key]) != n:
            raise StageError(f"{where}: {key} has {len(arrays[key])} rows, images have {n}")


class RotatedViews(Dataset):
    """Batches of one split as dicts of tensors, indexed by a list of rows.

    ``images`` (B, V, 1, H, W) and ``canonical`` (B, 1, H, W) are floats in [0, 1], ``angles``
    (B, V) radians and ``labels`` (B,). With ``occlusion`` every copy but the last is occluded
    (see ``occlude``). The split is read into memory the first time a batch is requested, in the
    process that requests it, so every DataLoader worker opens the file itself.
    """

    def __init__(self, path: str | Path, split: str, occlusion: bool = False) -> None:
        self.path, self.split, self.occlusion = Path(path), split, occlusion
        with open_checked(self.path) as handle:
            self.length = len(handle[split]["labels"])
        self._arrays: dict[str, np.ndarray] | None = None

    def __len__(self) -> int:
        return self.length

    def arrays(self) -> dict[str, np.ndarray]:
        if self._arrays is None:
            self._arrays = load_split(self.path, self.split)
        return self._arrays

    def __getitem__(self, index) -> dict[str, torch.Tensor]:
        arrays = self.arrays()
        images = torch.from_numpy(arrays["images"][index]).float().div_(255).unsqueeze(-3)
        if self.occlusion:
            images = occlude(images)
        return {
            "images": images,
            "angles": torch.from_numpy(arrays["angles"][index]),
            "labels": torch.as_tensor(arrays["labels"][index]),
            "canonical": torch.from_numpy(arrays["canonical"][index]).float().div_(255).unsqueeze(-3),
        }
