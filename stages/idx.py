"""The raw datasets: where their IDX files live, their published checksums, and an IDX reader.

File names, MD5 checksums and download mirrors come from torchvision's dataset classes, so they
match what ``torchvision.datasets.MNIST`` and friends download. Files are read directly (not
through those classes) so that a folder with only the test files is usable.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torchvision import datasets as tv_datasets

from stages.common import StageError

IMAGE_MAGIC = 2051
LABEL_MAGIC = 2049

# The official split names and the file prefix each uses.
SPLIT_PREFIXES = {"train": "train", "test": "t10k"}


@dataclass(frozen=True)
class RawDataset:
    """One raw dataset: its key in the config, torchvision class and folder under data_root."""

    key: str
    torchvision_class: type

    @property
    def folder(self) -> str:
        return self.torchvision_class.__name__

    @property
    def mirrors(self) -> list[str]:
        return list(self.torchvision_class.mirrors)

    @property
    def md5(self) -> dict[str, str]:
        return dict(self.torchvision_class.resources)

    def files(self, split: str) -> tuple[str, str]:
        """Return the (images, labels) file names of an official split."""
        prefix = SPLIT_PREFIXES[split]
        return f"{prefix}-images-idx3-ubyte.gz", f"{prefix}-labels-idx1-ubyte.gz"

    def raw_dir(self, data_root: str | Path) -> Path:
        return Path(data_root) / self.folder / "raw"


CATALOG = {
    "mnist": RawDataset("mnist", tv_datasets.MNIST),
    "fashion_mnist": RawDataset("fashion_mnist", tv_datasets.FashionMNIST),
    "kmnist": RawDataset("kmnist", tv_datasets.KMNIST),
}


def get_dataset(key: str) -> RawDataset:
    """Look up a dataset by its config key, with an error that lists the known keys."""
    try:
        return CATALOG[key]
    except KeyError:
        known = ", ".join(sorted(CATALOG))
        raise StageError(f"unknown dataset {key!r}; known datasets: {known}") from None


def _read_idx(path: Path, magic: int, ndim: int) -> np.ndarray:
    try:
        with gzip.open(path, "rb") as handle:
            data = handle.read()
    except (OSError, EOFError) as error:
        raise StageError(f"cannot read IDX file {path}: {error}") from error
    header_bytes = 4 * (1 + ndim)
    header = np.frombuffer(data[:header_bytes], dtype=">i4")
    if len(header) != 1 + ndim or header[0] != magic:
        raise StageError(
            f"{path} is not an IDX file with magic number {magic} (header {header.tolist()})"
        )
    shape = tuple(int(n) for n in header[1:])
    payload = np.frombuffer(data, dtype=np.uint8, offset=header_bytes)
    if payload.size != int(np.prod(shape)):
        raise StageError(
            f"{path} contains {payload.size} bytes of data, but its header announces shape {shape}"
        )
    return payload.reshape(shape).copy()


def read_images(path: str | Path) -> np.ndarray:
    """Read a gzip-compressed IDX image file into a uint8 array of shape (N, H, W)."""
    return _read_idx(Path(path), IMAGE_MAGIC, 3)


def read_labels(path: str | Path) -> np.ndarray:
    """Read a gzip-compressed IDX label file into a uint8 array of shape (N,)."""
    return _read_idx(Path(path), LABEL_MAGIC, 1)
