"""Helpers shared by every stage: logging, atomic writes, seeding, threads and devices."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import random
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from stages import __version__

log = logging.getLogger("stages")


class StageError(Exception):
    """An error a user can fix; stages print its message without a traceback and exit 1."""


def parse_json_arg(text: str, name: str) -> dict:
    """Parse the JSON object given to the command-line option ``--<name>``."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise StageError(f"invalid JSON in --{name}: {error}: {text!r}") from error
    if not isinstance(value, dict):
        raise StageError(f"--{name} must be a JSON object, got {text!r}")
    return value


def setup_logging() -> None:
    """Send log lines with timestamps to stderr, which the workflow redirects to the rule's log."""
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%Y-%m-%d %H:%M:%S",
        stream=sys.stderr,
    )


def exit_on_sigterm(signum, frame) -> None:
    """Turn SIGTERM (a scheduler's kill) into SystemExit, so temporary files are cleaned up."""
    log.error("received signal %d, stopping", signum)
    sys.exit(128 + signum)


def run_main(main, argv: list[str] | None = None) -> None:
    """Run a stage's ``main`` and turn a StageError into a one-line message and exit code 1."""
    setup_logging()
    signal.signal(signal.SIGTERM, exit_on_sigterm)
    try:
        main(argv)
    except StageError as error:
        log.error("%s", error)
        sys.exit(1)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` and rename it into place only on success.

    A killed or failing writer leaves at most a ``.tmp-<pid>`` file, never a file under the
    final name, so Snakemake and readers never see a half-written output.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_json(path: str | os.PathLike, data: object) -> None:
    """Write ``data`` as sorted, indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def file_digests(path: str | os.PathLike) -> dict[str, str]:
    """Return the MD5 and SHA-256 hex digests of a file."""
    md5, sha256 = hashlib.md5(), hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            md5.update(block)
            sha256.update(block)
    return {"md5": md5.hexdigest(), "sha256": sha256.hexdigest()}


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch, and return a torch generator for data order."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator


def set_threads(threads: int) -> None:
    """Limit torch's intra-op threads to what the workflow gave the job."""
    if threads < 1:
        raise StageError(f"invalid --threads {threads}: give a positive number of threads")
    torch.set_num_threads(threads)


def pick_device(requested: str = "auto") -> torch.device:
    """Return CUDA when available (or requested) and the CPU otherwise."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise StageError(f"device {requested!r} requested but CUDA is not available; use auto or cpu")
    return torch.device(requested)


def code_version() -> str:
    """Return the package version, used as the code-version attribute of outputs."""
    return __version__
