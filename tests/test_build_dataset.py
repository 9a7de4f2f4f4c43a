import math

import h5py
import numpy as np
import pytest
import torch

from stages.build_dataset import build, split_sizes
from stages.check_raw import check_dataset
from stages.common import StageError
from stages.h5data import load_split, read_attrs, write_rotated
from stages.idx import get_dataset, read_images
from stages.rotation import rotate


@pytest.fixture(scope="module")
def manifest(shared_data):
    return check_dataset(get_dataset("mnist"), str(shared_data))


def build_small(manifest, seed=0, max_images=200, views=3):
    return build(manifest, seed=seed, views=views, fractions=(0.8, 0.1, 0.1),
                 max_images=max_images, interpolation="bilinear")


def test_split_sizes_follow_fractions():
    assert split_sizes(1000, (0.8, 0.1, 0.1)) == {"train": 800, "val": 100, "test": 100}
    assert sum(split_sizes(997, (0.8, 0.1, 0.1)).values()) == 997


def test_fractions_must_sum_to_one():
    with pytest.raises(StageError, match=r"invalid split fractions \[0.8, 0.3, 0.1\]"):
        split_sizes(100, (0.8, 0.3, 0.1))


def test_splits_are_disjoint_and_sized(manifest):
    arrays, attrs = build_small(manifest)
    sizes = {name: len(split["labels"]) for name, split in arrays.items()}
    assert sizes == {"train": 160, "val": 20, "test": 20}
    assert attrs["split_sizes"] == sizes
    indices = [set(split["source_index"].tolist()) for split in arrays.values()]
    assert not indices[0] & indices[1]
    assert not indices[0] & indices[2]
    assert not indices[1] & indices[2]


def test_same_seed_same_dataset(manifest):
    first, _ = build_small(manifest, seed=3)
    second, _ = build_small(manifest, seed=3)
    for split in first:
        for key in first[split]:
            assert np.array_equal(first[split][key], second[split][key])


def test_other_seed_other_split(manifest):
    first, _ = build_small(manifest, seed=3)
    second, _ = build_small(manifest, seed=4)
    assert not np.array_equal(first["train"]["source_index"], second["train"]["source_index"])


def test_angles_uniform_radians(manifest):
    arrays, _ = build_small(manifest, max_images=2000)
    angles = arrays["train"]["angles"]
    assert angles.shape == (1600, 3)
    assert angles.min() >= 0
    assert angles.max() < 2 * math.pi
    # Uniform on [0, 2 pi): mean pi, and more than a quarter turn in each quadrant.
    assert abs(angles.mean() - math.pi) < 0.1
    assert np.histogram(angles, bins=4, range=(0, 2 * math.pi))[0].min() > 0.2 * angles.size


def test_stored_copies_are_rotated_sources(manifest):
    arrays, _ = build_small(manifest)
    originals = read_images(manifest["files"]["t10k-images-idx3-ubyte.gz"]["path"])
    split = arrays["test"]
    for row in range(3):
        source = torch.from_numpy(originals[split["source_index"][row]]).float()[None, None]
        for view in range(3):
            angle = torch.tensor([float(split["angles"][row, view])])
            expected = rotate(source, angle).round().clamp(0, 255)[0, 0].numpy()
            assert np.abs(split["images"][row, view] - expected).max() <= 1


def test_hdf5_round_trip_with_attributes(manifest, tmp_path):
    arrays, attrs = build_small(manifest)
    path = tmp_path / "mnist.h5"
    write_rotated(path, arrays, attrs)
    stored = read_attrs(path)
    assert stored["seed"] == 0
    assert stored["split_sizes"] == {"train": 160, "val": 20, "test": 20}
    assert stored["interpolation"] == "bilinear"
    assert stored["rotation_convention"].startswith("counter-clockwise positive, radians")
    assert stored["source_checksums"]["t10k-images-idx3-ubyte.gz"]["md5"] == (
        "9fb629c4189551a2d022fa330f9573f3"
    )
    assert stored["code_version"]
    assert stored["complete"] is True
    train = load_split(path, "train")
    assert np.array_equal(train["images"], arrays["train"]["images"])
    assert np.array_equal(train["angles"], arrays["train"]["angles"])
    with h5py.File(path) as handle:
        assert handle["train/images"].compression == "gzip"
        assert handle["train/images"].chunks is not None


def test_unfinished_file_is_rejected(manifest, tmp_path):
    path = tmp_path / "partial.h5"
    with h5py.File(path, "w") as handle:
        handle.create_dataset("train/labels", data=np.zeros(3))
    with pytest.raises(StageError, match="was never finished"):
        load_split(path, "train")


def test_no_temporary_file_left_behind(manifest, tmp_path):
    arrays, attrs = build_small(manifest)
    write_rotated(tmp_path / "mnist.h5", arrays, attrs)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mnist.h5"]
