"""Run the Snakemake workflow on a copy of the repository with a tiny configuration."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
COPIED = ("workflow", "stages", "profiles", "config.yaml", "pyproject.toml")


def copy_repository(target: Path) -> Path:
    """Copy what the workflow needs into ``target``; stages run from there, not the install."""
    target.mkdir(parents=True, exist_ok=True)
    for name in COPIED:
        source = REPO_ROOT / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, target / name)
    return target


def tiny_config(data_root: str | Path, **overrides) -> dict:
    """A complete configuration that runs every image rule in about a minute on 2 CPU cores.

    Runs replace config.yaml with it (``--replace-workflow-config``), so the tests do not
    depend on the models and sizes of the demo configuration; the schema fills every key left
    out. A data_root relative to the working directory keeps copies of a finished run valid.
    """
    config = {
        "data_root": str(data_root),
        "download": False,
        "datasets": {"mnist": "in_domain", "fashion_mnist": "out_of_domain",
                     "kmnist": "out_of_domain"},
        "rotation": {"max_images": 500},
        "seeds": [0],
        "training": {"epochs": 1, "batch_size": 64},
        "models": {
            "gnft": {"kind": "gnft", "architecture": {"latent_dim": 32, "max_frequency": 8}},
            "autoencoder": {"kind": "autoencoder", "architecture": {"latent_size": 544}},
            "steerable_c8": {
                "kind": "steerable_cnn",
                "architecture": {"rotations": 8, "fields": [2, 4, 4], "kernel_sizes": [3, 3, 3]},
            },
        },
        "probe": {"max_iter": 300},
        "e1": {"enabled": False},
        "e2": {"enabled": False},
    }
    config.update(overrides)
    return config


def write_config(workdir: Path, config: dict, name: str = "tiny.yaml") -> Path:
    path = workdir / name
    path.write_text(yaml.safe_dump(config))
    return path


def workflow_env() -> dict[str, str]:
    """The environment of a workflow run: the venv's python first on PATH runs the stages."""
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return env


def snakemake_command(workdir: Path, *args: str, configfile: str = "tiny.yaml") -> list[str]:
    # --configfile takes several values, so it comes first; later flags in args override
    # the defaults before them, and targets in args follow a single-valued flag.
    return [
        sys.executable, "-m", "snakemake", "--configfile", configfile,
        "--replace-workflow-config", "--cores", "2", "--workflow-profile", "profiles/default",
        *args,
    ]


def snakemake(workdir: Path, *args: str, configfile: str = "tiny.yaml",
              check: bool = True) -> subprocess.CompletedProcess:
    """Run snakemake in ``workdir`` with the local profile and a tiny config."""
    command = snakemake_command(workdir, *args, configfile=configfile)
    result = subprocess.run(command, cwd=workdir, env=workflow_env(), capture_output=True,
                            text=True)
    if check and result.returncode != 0:
        raise AssertionError(
            f"snakemake {' '.join(args)} failed ({result.returncode}):\n"
            f"{result.stdout[-4000:]}\n{result.stderr[-8000:]}"
        )
    return result


def output_mtimes(workdir: Path) -> dict[str, int]:
    """Modification times (ns) of every workflow output under results/."""
    return {
        str(path.relative_to(workdir)): path.stat().st_mtime_ns
        for path in (workdir / "results").rglob("*")
        if path.is_file()
    }


def changed(before: dict[str, int], after: dict[str, int]) -> set[str]:
    return {path for path in after if before.get(path) != after[path]}
