"""Shared fixtures: the real test-split IDX files and small rotated datasets built from them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
# Official MNIST, Fashion-MNIST and KMNIST test splits in torchvision's layout (read-only).
SHARED_DATA = Path(os.environ.get("NFT_TEST_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "MNIST" / "raw" / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.fail(
            f"test data not found in {SHARED_DATA}; set NFT_TEST_DATA to a folder with "
            "MNIST/raw, FashionMNIST/raw and KMNIST/raw holding the official t10k files"
        )
    return SHARED_DATA


@pytest.fixture(scope="session")
def mnist_h5(shared_data, tmp_path_factory) -> Path:
    """A rotated MNIST file of 400 images (320/40/40), two copies each."""
    from stages.build_dataset import build
    from stages.check_raw import check_dataset
    from stages.h5data import write_rotated
    from stages.idx import get_dataset

    manifest = check_dataset(get_dataset("mnist"), str(shared_data))
    arrays, attrs = build(manifest, seed=0, views=2, fractions=(0.8, 0.1, 0.1),
                          max_images=400, interpolation="bilinear")
    path = tmp_path_factory.mktemp("data") / "mnist.h5"
    write_rotated(path, arrays, attrs)
    return path
