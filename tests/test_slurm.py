"""The SLURM profile (profiles/slurm) on a real SLURM cluster: submission, reruns, failures,
the resources that reach sbatch, and config defaults inside the jobs.

Needs a running cluster with a default partition, an account for the current user and a
generic resource "gpu" on its node: scripts/slurm-up.sh starts one on localhost (CI does so in
.ci/run). Without one, every test here is skipped. The tests run the profile unchanged except
for its SITE-SPECIFIC partition and account, so jobs go through `apptainer exec` as on a real
cluster. Because no container runtime is available here, a stand-in `apptainer` program on
PATH records each call and runs the job's command on the host.
"""

from __future__ import annotations

import getpass
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from tests.workflow_helpers import (
    REPO_ROOT,
    changed,
    copy_repository,
    output_mtimes,
    tiny_config,
)

pytestmark = pytest.mark.slurm

# Seconds before the plugin's first status query and between Snakemake's status rounds.
STATUS_POLL_SECONDS = "2"
# Upper bound for one Snakemake run on the test cluster. A run that takes longer is stopped.
RUN_TIMEOUT_SECONDS = 600
# The plugin's log line for each submission, with the SLURM job id.
SUBMITTED_PATTERN = r"has been submitted with SLURM jobid (\d+)"
REMOTE_RULES = {"build_dataset", "train_model", "evaluate_model"}
GPU_RULES = {"train_model", "evaluate_model"}
SACCT_FIELDS = ("JobID", "JobName", "State", "ReqCPUS", "ReqMem", "Timelimit", "ReqTRES",
                "Comment")

APPTAINER_STAND_IN = """#!{python}
# Stand-in for apptainer: records each call in $NFT_APPTAINER_LOG, then does the minimum.
import json, os, sys

args = sys.argv[1:]
if args == ["--version"]:
    print("apptainer version 1.3.4")
    sys.exit(0)
with open(os.environ["NFT_APPTAINER_LOG"], "a") as log:
    call = {{"argv": args, "slurm_job_id": os.environ.get("SLURM_JOB_ID")}}
    log.write(json.dumps(call) + "\\n")
if args[0] == "pull":
    # Snakemake pulls into its image folder, and an empty file serves as the image.
    open(args[args.index("--name") + 1], "w").close()
    sys.exit(0)
if "exec" in args:
    # Snakemake's call ends with: IMAGE SHELL -c COMMAND.
    os.execvp(args[-3], args[-3:])
sys.exit(f"apptainer stand-in: unsupported call {{args}}")
"""


def run_command(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def require_cluster() -> tuple[str, str]:
    """Return the default partition and the user's account; skip when no cluster runs."""
    if shutil.which("sinfo") is None:
        pytest.skip("sinfo is not on PATH (no SLURM client). Start a cluster with "
                    "scripts/slurm-up.sh")
    nodes = run_command("sinfo", "-h", "-o", "%t %G %P")
    if nodes.returncode != 0:
        pytest.skip(f"no SLURM cluster responds (sinfo: {nodes.stderr.strip()}). Start one "
                    "with scripts/slurm-up.sh")
    rows = [line.split() for line in nodes.stdout.splitlines() if line.strip()]
    if not any(state in ("idle", "mix") for state, *_ in rows):
        pytest.skip(f"no idle SLURM node (sinfo: {nodes.stdout.strip()})")
    if not any("gpu" in gres for _, gres, *_ in rows):
        pytest.skip("no SLURM node offers the generic resource gpu, which "
                    "scripts/slurm-up.sh configures")
    defaults = [partition for *_, partition in rows if partition.endswith("*")]
    if not defaults:
        pytest.skip("the SLURM cluster has no default partition")
    accounts = run_command("sacctmgr", "-n", "-P", "list", "association",
                           f"user={getpass.getuser()}", "format=account")
    account = next((line for line in accounts.stdout.split() if line), None)
    if accounts.returncode != 0 or account is None:
        pytest.skip(f"no SLURM account for user {getpass.getuser()} (sacctmgr: "
                    f"{accounts.stderr.strip()})")
    return defaults[0].rstrip("*"), account


def stop_run(process: subprocess.Popen) -> tuple[str, str]:
    """Stop a Snakemake run, cancel the SLURM jobs it submitted and return its output."""
    # On SIGTERM Snakemake cancels its jobs, but with plugin 2.6.1 it does not always exit.
    process.terminate()
    try:
        stdout, stderr = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        stdout, stderr = process.communicate()
    job_ids = re.findall(SUBMITTED_PATTERN, stdout + stderr)
    if job_ids:
        run_command("scancel", *job_ids)
    return stdout, stderr


@dataclass
class ClusterRun:
    """One Snakemake run through the SLURM profile and what it left behind."""

    result: subprocess.CompletedProcess
    apptainer_calls: list[dict] = field(default_factory=list)

    @property
    def output(self) -> str:
        return self.result.stdout + self.result.stderr

    @property
    def slurm_job_ids(self) -> list[str]:
        """SLURM ids of the jobs this run submitted, in submission order."""
        return re.findall(SUBMITTED_PATTERN, self.output)


@dataclass
class Workdir:
    path: Path
    stand_in_dir: Path

    def run(self, *args: str, check: bool = True) -> ClusterRun:
        """Run Snakemake with the SLURM profile here and return what it submitted."""
        calls_log = self.path / "apptainer-calls.jsonl"
        calls_log.unlink(missing_ok=True)

        env = dict(os.environ)
        env["PATH"] = os.pathsep.join(
            [str(self.stand_in_dir), str(Path(sys.executable).parent), env.get("PATH", "")])
        env["NFT_APPTAINER_LOG"] = str(calls_log)
        command = [
            sys.executable, "-m", "snakemake", "--workflow-profile", "profiles/slurm",
            "--slurm-init-seconds-before-status-checks", STATUS_POLL_SECONDS,
            "--seconds-between-status-checks", STATUS_POLL_SECONDS, *args,
        ]

        process = subprocess.Popen(command, cwd=self.path, env=env, text=True,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            stdout, stderr = process.communicate(timeout=RUN_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            stdout, stderr = stop_run(process)
            raise AssertionError(
                f"snakemake {' '.join(args)} timed out after {RUN_TIMEOUT_SECONDS}s:\n"
                f"{stdout[-4000:]}\n{stderr[-8000:]}")

        result = subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
        if check and result.returncode != 0:
            raise AssertionError(
                f"snakemake {' '.join(args)} failed ({result.returncode}):\n"
                f"{stdout[-4000:]}\n{stderr[-8000:]}")

        calls = []
        if calls_log.exists():
            calls = [json.loads(line) for line in calls_log.read_text().splitlines()]
        return ClusterRun(result, calls)

    def edit_config(self, edit) -> None:
        path = self.path / "config.yaml"
        config = yaml.safe_load(path.read_text())
        edit(config)
        path.write_text(yaml.safe_dump(config))

    def edit_profile(self, edit) -> None:
        path = self.path / "profiles/slurm/config.yaml"
        profile = yaml.safe_load(path.read_text())
        edit(profile)
        path.write_text(yaml.safe_dump(profile))


def cluster_config() -> dict:
    """The tiny configuration, cut to one dataset and two small models (five SLURM jobs).

    It replaces config.yaml instead of extending it, so every key it leaves out (the probe's
    C, the rotation's views and seed, the optimiser, device, container_image) gets the
    schema's default.
    """
    config = tiny_config("data", datasets={"mnist": "in_domain"})
    config["models"] = {
        "gnft": {"kind": "gnft", "architecture": {"latent_dim": 8, "max_frequency": 2}},
        "autoencoder": {"kind": "autoencoder", "architecture": {"latent_size": 64}},
    }
    return config


def schema_properties() -> dict:
    schema = yaml.safe_load((REPO_ROOT / "workflow/schemas/config.schema.yaml").read_text())
    return schema["properties"]


def sacct_rows(job_ids: list[str]) -> dict[str, dict[str, str]]:
    """Accounting records of the given SLURM jobs (allocations only), by job id."""
    result = run_command("sacct", "-X", "-n", "-P", "-j", ",".join(job_ids),
                         "-o", ",".join(SACCT_FIELDS))
    assert result.returncode == 0, result.stderr
    rows = [dict(zip(SACCT_FIELDS, line.split("|"))) for line in result.stdout.splitlines()]
    return {row["JobID"]: row for row in rows}


def minutes(timelimit: str) -> int:
    """Convert sacct's [D-]HH:MM:SS time limit to minutes."""
    days, _, clock = timelimit.rpartition("-")
    hours, mins, _ = (int(part) for part in clock.split(":"))
    return int(days or 0) * 1440 + hours * 60 + mins


def megabytes(memory: str) -> int:
    """Convert sacct's ReqMem (for example 4000M or 4G) to MB."""
    scale = {"K": 1 / 1024, "M": 1, "G": 1024, "T": 1024 * 1024}
    return round(float(memory[:-1]) * scale[memory[-1]])


def rule_of(row: dict[str, str]) -> str:
    """The rule name in the plugin's job comment: rule_<rule>[_wildcards_<values>]."""
    return re.match(r"rule_(.+?)(?:_wildcards_.*)?$", row["Comment"]).group(1)


def planned_jobs(output: str) -> dict[str, dict[str, str]]:
    """Resources of each remote job in a dry run, keyed by the plugin's job comment."""
    jobs = {}
    for block in re.split(r"\n(?=rule |localrule )", output):
        header = re.match(r"rule (\w+):", block)
        if not header or header.group(1) not in REMOTE_RULES:
            continue
        wildcards = re.search(r"^\s+wildcards: (.*)$", block, re.MULTILINE)
        values = [item.split("=", 1)[1] for item in wildcards.group(1).split(", ")]
        resources = re.search(r"^\s+resources: (.*)$", block, re.MULTILINE).group(1)
        comment = f"rule_{header.group(1)}_wildcards_{'_'.join(values)}"
        jobs[comment] = dict(item.split("=", 1) for item in resources.split(", "))
    return jobs


@pytest.fixture(scope="module")
def cluster():
    return require_cluster()


@pytest.fixture(scope="module")
def stand_in_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("apptainer-stand-in")
    program = folder / "apptainer"
    program.write_text(APPTAINER_STAND_IN.format(python=sys.executable))
    program.chmod(0o755)
    return folder


@pytest.fixture(scope="module")
def finished(cluster, stand_in_dir, shared_data, tmp_path_factory):
    """A workflow copy whose run through the SLURM profile finished, with its dry-run plan."""
    partition, account = cluster
    workdir = Workdir(copy_repository(tmp_path_factory.mktemp("slurm-run")), stand_in_dir)
    data_root = workdir.path / "data"
    shutil.copytree(shared_data, data_root, ignore=shutil.ignore_patterns("README.md"))
    for path in data_root.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    (workdir.path / "config.yaml").write_text(yaml.safe_dump(cluster_config()))

    def fill_site_specific(profile):
        profile["default-resources"]["slurm_partition"] = partition
        profile["default-resources"]["slurm_account"] = account

    workdir.edit_profile(fill_site_specific)
    # In a dry run Snakemake caps threads at --cores (1 by default), but a real run through
    # the plugin does not, so the plan is made with more cores than any rule declares.
    plan = workdir.run("--dry-run", "--cores", "64")
    jobs = planned_jobs(plan.output)
    node_memory = max(int(mb) for mb in run_command("sinfo", "-h", "-o", "%m").stdout.split())
    largest = max(int(resources["mem_mb"]) for resources in jobs.values())
    if largest > node_memory:
        pytest.fail(f"the largest job requests {largest} MB, but the SLURM node has only "
                    f"{node_memory} MB, so it would wait forever")
    run = workdir.run()
    return workdir, planned_jobs(plan.output), run


def test_remote_jobs_are_slurm_jobs(finished):
    workdir, plan, run = finished
    rows = sacct_rows(run.slurm_job_ids)
    assert sorted(rows) == sorted(run.slurm_job_ids)
    assert sorted(row["Comment"] for row in rows.values()) == sorted(plan)
    for row in rows.values():
        assert row["State"] == "COMPLETED", row
        assert row["JobName"].startswith("nft_"), row
    assert (workdir.path / "results/tables/results.parquet").is_file()


def test_local_rules_run_on_submit_host(finished):
    _, _, run = finished
    rules = {rule_of(row) for row in sacct_rows(run.slurm_job_ids).values()}
    assert rules == REMOTE_RULES
    assert "localrule check_raw:" in run.output
    assert "localrule aggregate_results:" in run.output


def test_jobs_run_in_configured_container(finished):
    _, _, run = finished
    image = schema_properties()["container_image"]["default"]
    pulls = [call for call in run.apptainer_calls if call["argv"][0] == "pull"]
    execs = [call for call in run.apptainer_calls if "exec" in call["argv"]]
    assert [call["argv"][-1] for call in pulls] == [image]
    # Every SLURM job ran its command through apptainer, once, with the GPU option.
    assert sorted(call["slurm_job_id"] for call in execs) == sorted(run.slurm_job_ids)
    for call in execs:
        assert "--nv" in call["argv"]
        assert not re.search(r"stages\.(check_raw|aggregate|fetch_raw)\b", call["argv"][-1])


def test_sbatch_gets_declared_resources(finished):
    _, plan, run = finished
    rows = sacct_rows(run.slurm_job_ids)
    for row in rows.values():
        planned = plan[row["Comment"]]
        assert int(row["ReqCPUS"]) == int(planned["cpus_per_task"]), row
        assert megabytes(row["ReqMem"]) == int(planned["mem_mb"]), row
        assert minutes(row["Timelimit"]) == int(planned["runtime"]), row
        if rule_of(row) in GPU_RULES:
            assert planned["gpu"] == "1", planned
            assert "gres/gpu=1" in row["ReqTRES"], row
        else:
            assert "gres/gpu" not in row["ReqTRES"], row


def test_schema_defaults_reach_cluster_jobs(finished):
    _, _, run = finished
    defaults = schema_properties()
    commands = {call["argv"][-1] for call in run.apptainer_calls if "exec" in call["argv"]}
    build = [command for command in commands if "stages.build_dataset" in command]
    train = [command for command in commands if "stages.train" in command]
    evaluate = [command for command in commands if "stages.evaluate" in command]
    assert len(build) == 1
    assert len(train) == 2
    assert len(evaluate) == 2
    rotation = defaults["rotation"]["properties"]
    assert f"--views {rotation['views']['default']}" in build[0]
    assert f"--interpolation {rotation['interpolation']['default']}" in build[0]
    optimiser = defaults["training"]["properties"]
    for command in train:
        assert f'"lr": {optimiser["lr"]["default"]}' in command
        assert f'"weight_decay": {optimiser["weight_decay"]["default"]}' in command
        assert f"--device {defaults['device']['default']}" in command
    for command in evaluate:
        assert f"--probe-c {defaults['probe']['properties']['C']['default']}" in command


@pytest.fixture(scope="module")
def changed_run(finished, tmp_path_factory):
    """A copy of the finished run, rerun after two config edits: a changed g-NFT parameter
    (its training and evaluation are stale) and a new model whose training always fails.

    One run covers both cases because each run on the cluster costs a minute or more.
    """
    workdir, _, _ = finished
    target = tmp_path_factory.mktemp("slurm-changed") / "run"
    shutil.copytree(workdir.path, target, symlinks=True)
    workdir = Workdir(target, workdir.stand_in_dir)

    def edit_models(config):
        config["models"]["gnft"]["architecture"]["latent_dim"] = 6
        config["models"]["broken"] = {"kind": "autoencoder",
                                      "architecture": {"no_such_option": 1}}

    def small_training_memory(profile):
        # The rule's 4000 MB per attempt would outgrow a small test node on the second
        # attempt, so this keeps the growth per attempt at a size every node has.
        profile["set-resources"]["train_model"]["mem_mb"] = "500*attempt"

    workdir.edit_config(edit_models)
    workdir.edit_profile(small_training_memory)
    before = output_mtimes(workdir.path)
    run = workdir.run(check=False)
    return workdir, before, run


def test_changed_parameter_reruns_stale_jobs(changed_run):
    workdir, before, run = changed_run
    rows = sacct_rows(run.slurm_job_ids).values()
    completed = sorted(row["Comment"] for row in rows if row["State"] == "COMPLETED")
    assert completed == [
        "rule_evaluate_model_wildcards_gnft_mnist_0_mnist",
        "rule_train_model_wildcards_gnft_mnist_0",
    ]
    others = {row["Comment"] for row in rows if row["State"] != "COMPLETED"}
    assert others == {"rule_train_model_wildcards_broken_mnist_0"}
    rerun = changed(before, output_mtimes(workdir.path))
    assert "results/train/gnft/mnist/seed0/model.pt" in rerun
    assert "results/eval/gnft/mnist/seed0/mnist.parquet" in rerun
    untouched = [path for path in before
                 if "/gnft/" not in path and not path.startswith("results/benchmarks/")]
    assert "results/train/autoencoder/mnist/seed0/model.pt" in untouched
    assert "results/datasets/mnist.h5" in untouched
    assert not rerun & set(untouched)


def test_failing_job_retried_then_reported(finished, changed_run):
    _, plan, _ = finished
    workdir, before, run = changed_run
    runtime = int(plan["rule_train_model_wildcards_gnft_mnist_0"]["runtime"])
    retries = yaml.safe_load((REPO_ROOT / "profiles/slurm/config.yaml").read_text())["retries"]
    assert run.result.returncode != 0
    rows = sacct_rows(run.slurm_job_ids)
    attempts = [rows[job_id] for job_id in run.slurm_job_ids
                if rows[job_id]["Comment"] == "rule_train_model_wildcards_broken_mnist_0"]
    # One SLURM job per attempt, with memory and time limits growing per attempt.
    assert len(attempts) == retries + 1
    for attempt, row in enumerate(attempts, start=1):
        assert row["State"] == "FAILED", row
        assert megabytes(row["ReqMem"]) == 500 * attempt, row
        assert minutes(row["Timelimit"]) == runtime * attempt, row
    last_id = attempts[-1]["JobID"]
    assert f"SLURM-job '{last_id}' failed, SLURM status is: 'FAILED'" in run.output
    assert "Error in rule train_model" in run.output
    assert "unknown architecture parameter(s) ['no_such_option']" in run.output
    assert "Exiting because a job execution failed" in run.output
    # The tables need the broken model's evaluation, so they are not rebuilt. Every output
    # that existed before the run is still there.
    assert "results/tables/results.parquet" not in changed(before, output_mtimes(workdir.path))
    assert all((workdir.path / path).is_file() for path in before)
