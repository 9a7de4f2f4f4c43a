"""Bad inputs, each with an error message that names the value and says what to do.

Config cases run ``snakemake -n`` on a workflow copy (the error must come before any job runs);
stage cases call the stage command lines directly. No case may delete an existing output.
"""

from __future__ import annotations

import gzip
import json
import shutil

import h5py
import numpy as np
import pandas as pd
import pytest

from stages import aggregate, evaluate, train
from stages.check_raw import check_dataset
from stages.common import StageError, pick_device, set_threads
from stages.h5data import load_split
from stages.idx import get_dataset, read_images
from stages.models import build_model
from tests.workflow_helpers import copy_repository, snakemake, tiny_config, write_config

CONFIG_CASES = [
    # (case id, change to the tiny config, texts the error must contain)
    ("negative epochs", {"training": {"epochs": -3}}, ["-3", "epochs"]),
    ("lr of wrong type", {"training": {"lr": "fast"}}, ["'fast'", "lr"]),
    ("fractions not summing to 1", {"rotation": {"fractions": [0.8, 0.3, 0.1]}},
     ["invalid rotation.fractions [0.8, 0.3, 0.1]"]),
    ("fraction out of range", {"rotation": {"fractions": [1.2, -0.1, -0.1]}}, ["1.2", "fractions"]),
    ("unknown model kind", {"models": {"gnft": {"kind": "vae"}}}, ["'vae'", "kind"]),
    ("unknown dataset", {"datasets": {"cifar": "in_domain"}}, ["'cifar'"]),
    ("no in-domain dataset",
     {"datasets": {"mnist": "out_of_domain", "fashion_mnist": "out_of_domain",
                   "kmnist": "out_of_domain"}}, ["0 in_domain datasets"]),
    ("empty seed list", {"seeds": []}, ["seeds", "[]"]),
    ("negative seed", {"seeds": [-1]}, ["-1", "seeds"]),
    ("zero views", {"rotation": {"views": 0}}, ["views", "0"]),
    ("unknown interpolation", {"rotation": {"interpolation": "cubic"}}, ["'cubic'"]),
    ("unknown device", {"device": "tpu"}, ["'tpu'", "device"]),
    ("zero probe C", {"probe": {"C": 0}}, ["C", "0"]),
    ("unknown variant", {"variants": ["blurred"]}, ["'blurred'"]),
    ("tuning an unknown model", {"tune": {"enabled": True, "models": ["resnet"]}},
     ["['resnet']", "tune.models"]),
    ("unknown scale", {"scale": "huge"}, ["'huge'", "scale"]),
    ("unknown top-level key", {"epochs": 5}, ["'epochs'"]),
    ("subset too small", {"rotation": {"max_images": 5}}, ["5", "max_images"]),
]


def merged(base: dict, change: dict) -> dict:
    result = json.loads(json.dumps(base))
    for key, value in change.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict) and key != "datasets":
            result[key] = merged(result[key], value)
        else:
            result[key] = value
    return result


@pytest.fixture(scope="module")
def config_workdir(tmp_path_factory):
    return copy_repository(tmp_path_factory.mktemp("config_cases"))


@pytest.mark.workflow
@pytest.mark.parametrize("case, change, expected", CONFIG_CASES, ids=[c[0] for c in CONFIG_CASES])
def test_invalid_config(config_workdir, case, change, expected):
    write_config(config_workdir, merged(tiny_config("data"), change), "bad.yaml")
    result = snakemake(config_workdir, "-n", configfile="bad.yaml", check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0, case
    for text in expected:
        assert text in output, (case, text, output[-3000:])
    assert not (config_workdir / "results").exists()


# Stage cases -----------------------------------------------------------------------------


@pytest.fixture
def data_copy(mnist_h5, tmp_path):
    path = tmp_path / "mnist.h5"
    shutil.copy(mnist_h5, path)
    return path


def edit_h5(path, edit):
    with h5py.File(path, "r+") as handle:
        edit(handle)


def replace_dataset(handle, name, data):
    del handle[name]
    handle.create_dataset(name, data=data)


H5_CASES = [
    ("never finished", lambda h: h.attrs.__setitem__("complete", False), "was never finished"),
    ("older format version", lambda h: h.attrs.__setitem__("format_version", 0),
     "has format version 0"),
    ("float images", lambda h: replace_dataset(h, "train/images",
                                               h["train/images"][:].astype(np.float32)),
     "images have dtype float32"),
    ("non-square images", lambda h: replace_dataset(h, "train/images", h["train/images"][..., :27]),
     "expected uint8 (N, V, H, H)"),
    ("NaN angles", lambda h: replace_dataset(
        h, "train/angles", np.where(np.arange(h["train/angles"].size).reshape(
            h["train/angles"].shape) == 3, np.nan, h["train/angles"][:])),
     "angles contain NaN or infinity"),
    ("labels of other length", lambda h: replace_dataset(h, "train/labels", h["train/labels"][:-1]),
     "labels has"),
]


@pytest.mark.parametrize("case, edit, expected", H5_CASES, ids=[c[0] for c in H5_CASES])
def test_invalid_dataset_file(data_copy, case, edit, expected):
    edit_h5(data_copy, edit)
    with pytest.raises(StageError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        load_split(data_copy, "train")


def test_truncated_dataset_file(data_copy):
    data_copy.write_bytes(data_copy.read_bytes()[: data_copy.stat().st_size // 2])
    with pytest.raises(StageError, match="it is damaged, so delete it and rerun"):
        load_split(data_copy, "train")


def test_missing_dataset_file(tmp_path):
    with pytest.raises(StageError, match="not found; run the workflow"):
        load_split(tmp_path / "absent.h5", "train")


def test_labels_file_read_as_images(shared_data):
    with pytest.raises(StageError, match="not an IDX file with magic number 2051"):
        read_images(shared_data / "MNIST/raw/t10k-labels-idx1-ubyte.gz")


def test_truncated_idx_payload(tmp_path, shared_data):
    source = shared_data / "MNIST/raw/t10k-images-idx3-ubyte.gz"
    with gzip.open(source) as handle:
        data = handle.read()
    truncated = tmp_path / "short.gz"
    with gzip.open(truncated, "wb") as handle:
        handle.write(data[:5000])
    with pytest.raises(StageError, match="but its header announces shape"):
        read_images(truncated)


def test_half_split_present(tmp_path, shared_data):
    raw = tmp_path / "MNIST/raw"
    raw.mkdir(parents=True)
    shutil.copy(shared_data / "MNIST/raw/t10k-images-idx3-ubyte.gz", raw)
    with pytest.raises(StageError, match="missing raw file .*t10k-labels-idx1-ubyte.gz"):
        check_dataset(get_dataset("mnist"), str(tmp_path))


def train_args(data, tmp_path, **changes):
    options = {"epochs": 1, "batch_size": 32, "lr": 1e-3, "weight_decay": 0.0}
    options.update(changes.pop("options", {}))
    args = {
        "--data": str(data), "--kind": "autoencoder", "--seed": "0",
        "--architecture": json.dumps({"latent_size": 8}), "--optimisation": json.dumps(options),
        "--device": "cpu", "--out-model": str(tmp_path / "m.pt"),
        "--out-metrics": str(tmp_path / "m.parquet"),
    }
    args.update(changes)
    return [item for pair in args.items() for item in pair]


def test_empty_validation_split(shared_data, tmp_path):
    from stages import build_dataset

    out = tmp_path / "tiny.h5"
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps(check_dataset(get_dataset("mnist"), str(shared_data))))
    build_dataset.main(["--manifest", str(manifest), "--out", str(out), "--max-images", "20",
                        "--fractions", "1", "0", "0"])
    with pytest.raises(StageError, match="0 validation images"):
        train.main(train_args(out, tmp_path))
    assert not (tmp_path / "m.pt").exists()


def test_invalid_json_architecture(mnist_h5, tmp_path):
    with pytest.raises(StageError, match="invalid JSON in --architecture"):
        train.main(train_args(mnist_h5, tmp_path, **{"--architecture": "{latent_size: 8"}))


def test_zero_threads(mnist_h5, tmp_path):
    with pytest.raises(StageError, match="invalid --threads 0"):
        train.main(train_args(mnist_h5, tmp_path, **{"--threads": "0"}))


def test_unknown_architecture_parameter():
    with pytest.raises(StageError, match=r"unknown architecture parameter\(s\) \['depth'\]"):
        build_model("autoencoder", {"depth": 3})


def test_cuda_requested_without_gpu():
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present, so requesting CUDA is valid")
    with pytest.raises(StageError, match="device 'cuda' requested but CUDA is not available"):
        pick_device("cuda")


def test_damaged_model_file(mnist_h5, tmp_path):
    model = tmp_path / "model.pt"
    model.write_bytes(b"not a torch file")
    with pytest.raises(StageError, match=f"cannot load model file {model}"):
        evaluate.main(["--model", str(model), "--data", str(mnist_h5), "--model-name", "m",
                       "--train-dataset", "mnist", "--dataset", "mnist", "--domain",
                       "in_domain", "--seed", "0", "--out", str(tmp_path / "e.parquet")])
    assert model.read_bytes() == b"not a torch file"


def test_result_file_with_other_schema(tmp_path):
    other = tmp_path / "old.parquet"
    pd.DataFrame({"model": ["gnft"], "accuracy": [0.9]}).to_parquet(other)
    with pytest.raises(StageError, match="written by another version of the pipeline"):
        aggregate.main(["--inputs", str(other), "--out-dir", str(tmp_path / "tables")])
    assert other.exists()
    assert not (tmp_path / "tables").exists()


def test_negative_probe_c(mnist_h5, tmp_path):
    with pytest.raises(StageError, match="invalid --probe-c -1.0"):
        evaluate.main(["--model", "unused.pt", "--data", str(mnist_h5), "--model-name", "m",
                       "--train-dataset", "mnist", "--dataset", "mnist", "--domain",
                       "in_domain", "--seed", "0", "--probe-c", "-1",
                       "--out", str(tmp_path / "e.parquet")])


def test_bad_input_table_size():
    stage_cases = [name for name in globals() if name.startswith("test_") and name not in (
        "test_invalid_config", "test_invalid_dataset_file", "test_bad_input_table_size")]
    assert len(CONFIG_CASES) + len(H5_CASES) + len(stage_cases) >= 30


def test_set_threads_rejects_negative():
    with pytest.raises(StageError, match="give a positive number of threads"):
        set_threads(-2)
