"""The container recipes and how jobs get the container.

Docker and Apptainer cannot run in the test environment, so these tests check the recipes as
text, recompute the image tag, and ask Snakemake (dry run, --sdm apptainer) which jobs it would
run in the container. A stand-in `apptainer` program passes Snakemake's version check.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from scripts.container_tag import RECIPE_FILES, TAGGED_FILES, recipe_tag
from tests.workflow_helpers import REPO_ROOT, copy_repository, tiny_config, write_config

DOCKERFILE = REPO_ROOT / "containers/Dockerfile"
APPTAINER_DEF = REPO_ROOT / "containers/nft-pipeline.def"
LOCAL_RULES = {"all", "download_raw", "check_raw", "aggregate_results"}
GPU_RULES = {"train_model", "evaluate_model"}

# Prints one JSON line per job of a dry run: rule, container image and whether it is local.
# Snakemake's CLI prints no container per job, so this reads the DAG through its Python API
# (`_workflow` and `_localrules` are internal attributes of snakemake 9.27).
JOB_CONTAINERS_SCRIPT = """
import json, sys
from pathlib import Path
from snakemake.api import SnakemakeApi
from snakemake.settings.types import (ConfigSettings, DeploymentMethod, DeploymentSettings,
                                      OutputSettings, Quietness, ResourceSettings)

with SnakemakeApi(OutputSettings(quiet={Quietness.ALL})) as api:
    workflow_api = api.workflow(
        resource_settings=ResourceSettings(cores=1),
        config_settings=ConfigSettings(configfiles=[Path(sys.argv[1]).absolute()]),
        deployment_settings=DeploymentSettings(deployment_method={DeploymentMethod.APPTAINER}),
        snakefile=Path("workflow/Snakefile").absolute(),
        workdir=Path(".").absolute(),
    )
    workflow_api.dag().execute_workflow(executor="dryrun")
    workflow = workflow_api._workflow
    for job in workflow.dag.jobs:
        # Local under a cluster executor: marked localrule, or a rule without a command.
        local = job.rule.name in workflow._localrules or job.rule.norun
        print(json.dumps({"rule": job.rule.name, "local": local,
                          "container": job.container_img_url}))
"""


def recipe_commands(text: str) -> list[str]:
    """Shell commands of a recipe, one string per command, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", text)
    return [line.strip() for line in text.splitlines() if line.strip() and not
            line.strip().startswith("#")]


def pip_installs(text: str) -> list[str]:
    """Each `pip install ...` in a recipe, options and arguments as written."""
    installs = []
    for line in recipe_commands(text):
        for command in re.split(r"&&|;", line):
            match = re.search(r"\bpip install (.*)$", command.strip())
            if match:
                installs.append(match.group(1).strip())
    return installs


@pytest.fixture(scope="module")
def stand_in_path(tmp_path_factory) -> str:
    """PATH with a stand-in `apptainer` that only prints its version."""
    folder = tmp_path_factory.mktemp("apptainer-stand-in")
    program = folder / "apptainer"
    program.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = "--version" ]; then echo "apptainer version 1.3.4"; exit 0; fi\n'
        'echo "apptainer stand-in: unexpected call: $*" >&2\n'
        "exit 1\n"
    )
    program.chmod(0o755)
    return os.pathsep.join([str(folder), str(Path(sys.executable).parent),
                            os.environ.get("PATH", "")])


@pytest.fixture(scope="module")
def dry_run_dir(shared_data, tmp_path_factory) -> Path:
    workdir = copy_repository(tmp_path_factory.mktemp("containers"))
    write_config(workdir, tiny_config(str(shared_data)))
    return workdir


def configured_image() -> str:
    return yaml.safe_load((REPO_ROOT / "config.yaml").read_text())["container_image"]


@pytest.mark.parametrize("recipe", [DOCKERFILE, APPTAINER_DEF], ids=["docker", "apptainer"])
def test_recipe_installs_pinned_files(recipe):
    text = recipe.read_text()
    assert pip_installs(text) == [
        "-r /opt/nft-pipeline/requirements.txt",
        "--no-deps -r /opt/nft-pipeline/requirements-nodeps.txt",
    ]
    # The pinned files are copied in unchanged from the repository root.
    assert re.search(r"requirements\.txt\s.*?/opt/nft-pipeline/", text)
    assert re.search(r"requirements-nodeps\.txt\s.*?/opt/nft-pipeline/", text)
    # Python 3.11, as pyproject.toml requires, on a Debian 12 base.
    assert re.search(r"^(FROM|From:)\s*python:3\.11-slim-bookworm$", text, re.MULTILINE)


@pytest.mark.parametrize("recipe", [DOCKERFILE, APPTAINER_DEF], ids=["docker", "apptainer"])
def test_recipe_creates_escnn_cache_folder(recipe):
    # escnn creates its cache folder on import, which fails in a read-only image.
    assert 'python -c "import escnn.nn"' in recipe.read_text()


def test_makefile_installs_same_files():
    makefile = (REPO_ROOT / "Makefile").read_text()
    assert "pip install --quiet -r requirements.txt" in makefile
    assert "pip install --quiet --no-deps -r requirements-nodeps.txt" in makefile


def test_image_tag_matches_recipes():
    tag = recipe_tag()
    for name in TAGGED_FILES:
        text = (REPO_ROOT / name).read_text()
        tags = re.findall(r"/nft-pipeline:([0-9a-f]+)\b", text)
        assert tags == [tag], (
            f"{name} names image tag(s) {tags}, but {', '.join(RECIPE_FILES)} hash to {tag}; "
            "run `python scripts/container_tag.py --update`"
        )


def test_schema_default_image_is_config_image():
    schema = yaml.safe_load((REPO_ROOT / "workflow/schemas/config.schema.yaml").read_text())
    assert schema["properties"]["container_image"]["default"] == configured_image()


def test_image_tag_changes_with_recipe(tmp_path):
    for name in RECIPE_FILES:
        target = tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((REPO_ROOT / name).read_bytes())
    original = recipe_tag(tmp_path)
    assert original == recipe_tag()
    for name in RECIPE_FILES:
        path = tmp_path / name
        content = path.read_bytes()
        path.write_bytes(content + b"\n# changed\n")
        assert recipe_tag(tmp_path) != original, name
        path.write_bytes(content)


def test_dry_run_names_image(dry_run_dir, stand_in_path):
    env = dict(os.environ, PATH=stand_in_path)
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--cores", "2", "--sdm", "apptainer",
         "--workflow-profile", "profiles/default", "--configfile", "tiny.yaml"],
        cwd=dry_run_dir, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    output = result.stdout + result.stderr
    assert f"Singularity image {configured_image()} will be pulled." in output


def test_container_only_for_cluster_jobs(dry_run_dir, stand_in_path):
    env = dict(os.environ, PATH=stand_in_path)
    result = subprocess.run(
        [sys.executable, "-c", JOB_CONTAINERS_SCRIPT, "tiny.yaml"],
        cwd=dry_run_dir, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    jobs = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    rules = {job["rule"] for job in jobs}
    assert GPU_RULES <= rules
    assert {"check_raw", "aggregate_results", "all"} <= rules
    image = configured_image()
    for job in jobs:
        if job["rule"] in LOCAL_RULES:
            assert job["local"], job
            assert job["container"] is None, job
        else:
            assert not job["local"], job
            assert job["container"] == image, job
