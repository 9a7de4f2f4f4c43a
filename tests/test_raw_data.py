import shutil

import numpy as np
import pytest

from stages.check_raw import check_dataset
from stages.check_raw import main as check_raw_main
from stages.common import StageError
from stages.idx import get_dataset, read_images, read_labels

MNIST_TEST_MD5 = "9fb629c4189551a2d022fa330f9573f3"


@pytest.fixture
def mnist_copy(shared_data, tmp_path):
    """A writable data_root holding a copy of the MNIST test files."""
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for path in (shared_data / "MNIST" / "raw").glob("t10k-*.gz"):
        shutil.copy(path, raw / path.name)
    return tmp_path


def test_reads_real_mnist_test_split(shared_data):
    raw = shared_data / "MNIST" / "raw"
    images = read_images(raw / "t10k-images-idx3-ubyte.gz")
    labels = read_labels(raw / "t10k-labels-idx1-ubyte.gz")
    assert images.shape == (10000, 28, 28)
    assert images.dtype == np.uint8
    assert labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert np.bincount(labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.mark.parametrize("dataset", ["mnist", "fashion_mnist", "kmnist"])
def test_test_split_verifies(shared_data, dataset):
    manifest = check_dataset(get_dataset(dataset), str(shared_data))
    assert manifest["splits"] == ["test"]
    assert len(manifest["files"]) == 2


def test_missing_file_error_names_file_and_checksum(mnist_copy):
    (mnist_copy / "MNIST" / "raw" / "t10k-images-idx3-ubyte.gz").unlink()
    with pytest.raises(StageError) as error:
        check_dataset(get_dataset("mnist"), str(mnist_copy))
    message = str(error.value)
    assert "t10k-images-idx3-ubyte.gz" in message
    assert MNIST_TEST_MD5 in message
    assert "download: true" in message


def test_empty_folder_lists_expected_files(tmp_path):
    with pytest.raises(StageError) as error:
        check_dataset(get_dataset("kmnist"), str(tmp_path))
    message = str(error.value)
    assert "no raw files of dataset 'kmnist'" in message
    assert "train-images-idx3-ubyte.gz" in message
    assert "5c965bf0a639b31b8f53240b1b52f4d7" in message


def test_corrupt_file_error_names_checksums(mnist_copy):
    path = mnist_copy / "MNIST" / "raw" / "t10k-images-idx3-ubyte.gz"
    data = bytearray(path.read_bytes())
    data[5000] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(StageError) as error:
        check_dataset(get_dataset("mnist"), str(mnist_copy))
    message = str(error.value)
    assert f"checksum mismatch for {path}" in message
    assert f"expected {MNIST_TEST_MD5}" in message


def test_cli_exits_with_message_not_traceback(mnist_copy, tmp_path, capsys):
    (mnist_copy / "MNIST" / "raw" / "t10k-labels-idx1-ubyte.gz").write_bytes(b"not gzip")
    from stages.common import run_main

    with pytest.raises(SystemExit) as exit_info:
        run_main(check_raw_main, ["--dataset", "mnist", "--data-root", str(mnist_copy),
                                  "--out", str(tmp_path / "m.json")])
    assert exit_info.value.code == 1
    assert not (tmp_path / "m.json").exists()


def test_unknown_dataset_lists_known_ones():
    with pytest.raises(StageError, match="unknown dataset 'cifar'.*fashion_mnist, kmnist, mnist"):
        get_dataset("cifar")
