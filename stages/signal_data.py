"""The HDF5 format of the synthetic 1D signal sets: writing, checking and reading it.

A file contains one group per split (``train``, ``val``, ``test``), each with

- ``sequences``: float32 (n, T, N), T frames of N = 128 samples, frame t shifted t times;
- ``shifts``: float64 (n,), the shift theta of each sequence in radians;
- ``coefficients``: float64 (n, K), the coefficient of each of the K frequencies;
- ``index``: int64 (n,), the sequence's position in the generated set;
- ``repeat``: int64 (n,), the test seed that generated the sequence (E1 rollout sets only).

File attributes record the experiment, the generation parameters, the frequencies, the split
sizes, the code version and ``complete = True``, written last, so a reader can reject a file
whose writer never finished.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np

from stages.common import StageError, atomic_path, code_version

FORMAT_VERSION = 1
SEQUENCE_DTYPE = np.float32


def write_signals(path: str | Path, groups: dict[str, dict[str, np.ndarray]], attrs: dict) -> None:
    """Write groups of arrays and the attributes to ``path`` atomically.

    List and dict attributes are stored as JSON text. ``format_version``, ``code_version``
    and, last of all, ``complete`` are added here.
    """
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as handle:
        for name, arrays in groups.items():
            group = handle.create_group(name)
            for key, array in arrays.items():
                group.create_dataset(key, data=array)
        for key, value in attrs.items():
            if isinstance(value, (dict, list, tuple)):
                value = json.dumps(value)
            handle.attrs[key] = value
        handle.attrs["format_version"] = FORMAT_VERSION
        handle.attrs["code_version"] = code_version()
        handle.attrs["complete"] = True


def open_signals(path: str | Path) -> h5py.File:
    """Open a signal file read-only after checking that it is finished and of this format."""
    path = Path(path)
    if not path.is_file():
        raise StageError(f"signal file {path} not found; run the workflow to generate it")
    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise StageError(
            f"cannot open signal file {path} ({error}); delete it and rerun"
        ) from error
    if not handle.attrs.get("complete", False):
        handle.close()
        raise StageError(f"signal file {path} was never finished; delete it and rerun")
    if handle.attrs.get("format_version") != FORMAT_VERSION:
        version = handle.attrs.get("format_version")
        handle.close()
        raise StageError(
            f"signal file {path} has format version {version}, this code reads "
            f"{FORMAT_VERSION}; delete it and rerun to regenerate it"
        )
    return handle


def read_signal_attrs(path: str | Path) -> dict:
    """Return the attributes of a finished signal file, JSON-valued ones decoded."""
    with open_signals(path) as handle:
        attrs = {}
        for key, value in handle.attrs.items():
            if isinstance(value, str) and value[:1] in "[{":
                value = json.loads(value)
            elif isinstance(value, np.generic):
                value = value.item()
            attrs[key] = value
        return attrs


def read_signals(
    path: str | Path, split: str, num_frames: int | None = None
) -> dict[str, np.ndarray]:
    """Read one split into memory, keeping the first ``num_frames`` frames if given.

    Raises StageError for a missing or empty split and for a file with fewer frames than
    requested.
    """
    with open_signals(path) as handle:
        if split not in handle:
            raise StageError(f"signal file {path} has no split {split!r}; it has {sorted(handle)}")
        group = handle[split]
        arrays = {key: group[key][()] for key in group}
    available = arrays["sequences"].shape[1]
    if num_frames is not None:
        if num_frames > available:
            raise StageError(
                f"{path} has sequences of {available} frames, {num_frames} requested; "
                "raise the frames of the generated data"
            )
        arrays["sequences"] = arrays["sequences"][:, :num_frames]
    if len(arrays["sequences"]) == 0:
        raise StageError(
            f"split {split!r} of {path} is empty; raise the sequence count or its fraction"
        )
    return arrays


def split_indices(num_data: int, fractions: list[float], seed: int) -> dict[str, np.ndarray]:
    """Return sorted train, val and test indices drawn from a seeded permutation.

    The permutation comes from numpy.random.default_rng(seed), so it leaves NumPy's legacy
    global RNG, which generates the signals, untouched. Sizes are floor(fraction * n) for
    train and val, and test takes the rest.
    """
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-9:
        raise StageError(
            f"invalid split fractions {fractions}: give three non-negative numbers summing to 1"
        )
    order = np.random.default_rng(seed).permutation(num_data)
    num_train = int(fractions[0] * num_data)
    num_val = int(fractions[1] * num_data)
    boundary = num_train + num_val
    parts = (order[:num_train], order[num_train:boundary], order[boundary:])
    return {name: np.sort(part) for name, part in zip(("train", "val", "test"), parts)}
