"""Rolling training checkpoints that resume a killed run only when nothing relevant changed.

A checkpoint contains the model, optimiser and RNG states, the finished epochs' metrics and a
fingerprint of the run: its parameters, a SHA-256 of the data file and of every source file of
the ``stages`` package. A run resumes from a checkpoint only when the fingerprints match;
otherwise it starts fresh. Checkpoints hold plain types and tensors only, so they load with
``torch.load(path, weights_only=True)``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from pathlib import Path

import numpy as np
import torch

from stages.common import atomic_path

log = logging.getLogger("stages.checkpoint")

PACKAGE_ROOT = Path(__file__).resolve().parent


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def code_sha256() -> str:
    """SHA-256 over the relative paths and contents of every stages/**/*.py file."""
    digest = hashlib.sha256()
    for path in sorted(PACKAGE_ROOT.rglob("*.py")):
        digest.update(str(path.relative_to(PACKAGE_ROOT)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def run_fingerprint(parameters: dict, data_path: str | Path) -> str:
    """Fingerprint of a run: its parameters (key order ignored), data file and code."""
    content = {
        "parameters": parameters,
        "data_sha256": file_sha256(data_path),
        "code_sha256": code_sha256(),
    }
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def capture_rng(generator: torch.Generator) -> dict:
    """Return every RNG state a training loop draws from, as plain types and tensors."""
    kind, keys, position, has_gauss, cached = np.random.get_state()
    python_version, python_state, gauss = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "generator": generator.get_state(),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(position), int(has_gauss),
                  float(cached)],
        "python": [python_version, list(python_state), gauss],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict, generator: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    generator.set_state(state["generator"])
    kind, keys, position, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, cached))
    python_version, python_state, gauss = state["python"]
    random.setstate((python_version, tuple(python_state), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save(path: Path, state: dict) -> None:
    """Write a checkpoint atomically, so a kill while saving keeps the previous one."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_matching(path: Path, fingerprint: str) -> dict | None:
    """Return the checkpoint at ``path`` if it exists and has ``fingerprint``, else None."""
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unreadable checkpoint means a fresh start
        log.warning("ignoring unreadable checkpoint %s (%s); starting fresh", path, error)
        return None
    if state.get("fingerprint") != fingerprint:
        log.info("checkpoint %s belongs to another configuration or code; starting fresh", path)
        return None
    return state
