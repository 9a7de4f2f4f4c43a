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
    """A configuration that runs every rule in about a minute on 2 CPU cores.

    A data_root relative to the working directory keeps copies of a finished run up to date.
    """
    config = {
        "data_root": str(data_root),
        "download": False,
        "rotation": {"max_images": 500},
        "training": {"epochs": 1, "batch_size": 64},
        "models": {
            "steerable_c8": {
                "architecture": {"fields": [2, 4, 4], "kernel_sizes": [3, 3, 3]},
                "optimisation": {"epochs": 1},
            }
        },
        "probe": {"max_iter": 300},
    }
    config.update(overrides)
    return config


def write_config(workdir: Path, config: dict, name: str = "tiny.yaml") -> Path:
    path = workdir / name
    path.write_text(yaml.safe_dump(config))
    return path


def snakemake(workdir: Path, *args: str, configfile: str = "tiny.yaml",
              check: bool = True) -> subprocess.CompletedProcess:
    """Run snakemake in ``workdir`` with the local profile; the venv's python runs the stages."""
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    # --configfile takes several values, so it comes first; later flags in args override
    # the defaults before them, and targets in args follow a single-valued flag.
    command = [
        sys.executable, "-m", "snakemake", "--configfile", configfile, "--cores", "2",
        "--workflow-profile", "profiles/default", *args,
    ]
    result = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True)
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
