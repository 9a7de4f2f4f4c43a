# Helpers shared by the rule modules: config resolution and validation, wildcard values, the
# parameters each job receives, and the stage source files each job depends on.
import ast
import copy
import json
import math
import os
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate



def merge_into(base, overlay):
    """Recursively merge the mapping ``overlay`` into ``base`` (overlay wins)."""
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge_into(base[key], value)
        else:
            base[key] = copy.deepcopy(value)


def resolve_config(config):
    """Apply the paper block when scale is paper, then validate and fill defaults."""
    if config.get("scale") == "paper":
        merge_into(config, config.get("paper") or {})
    validate(config, "../schemas/config.schema.yaml", set_default=True)
    fractions = config["rotation"]["fractions"]
    if not math.isclose(sum(fractions), 1.0, abs_tol=1e-9):
        raise WorkflowError(
            f"invalid rotation.fractions {fractions} in config: the train, val and test "
            f"fractions sum to {sum(fractions)}, they must sum to 1"
        )
    unknown = sorted(set(config["tune"]["models"]) - set(config["models"]))
    if config["tune"]["enabled"] and unknown:
        raise WorkflowError(
            f"tune.models names {unknown}, which are not in models ({sorted(config['models'])}); "
            "list only configured model names"
        )
    in_domain = [name for name, role in config["datasets"].items() if role == "in_domain"]
    if len(in_domain) != 1:
        raise WorkflowError(
            f"datasets in config name {len(in_domain)} in_domain datasets ({in_domain}); "
            "mark exactly one dataset as in_domain (it trains the models)"
        )
    return in_domain[0]


TRAIN_DATASET = resolve_config(config)
OCCLUDED_SUFFIX = "_occluded"
# Training data variants: the in-domain dataset as built, and with occluded copies.
TRAIN_VARIANTS = [
    TRAIN_DATASET + (OCCLUDED_SUFFIX if variant == "occluded" else "")
    for variant in config["variants"]
]
DATASETS = sorted(config["datasets"])
MODELS = sorted(config["models"])
SEEDS = config["seeds"]
DATA_ROOT = config["data_root"]

# Raw files per dataset, as torchvision names them; checksums live in stages/idx.py.
RAW_FOLDERS = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST", "kmnist": "KMNIST"}
RAW_FILES = [
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
]

TABLES = multiext(
    "results/tables/",
    "results.parquet",
    "results.csv",
    "summary.csv",
    "summary.md",
    "reproduction.csv",
    "reproduction.md",
    "probe_accuracy.png",
    "indomain_vs_ood.png",
)


wildcard_constraints:
    dataset="|".join(DATASETS),
    train_dataset="|".join(TRAIN_VARIANTS),
    model="|".join(MODELS),
    seed=r"\d+",


def raw_dir(dataset):
    return f"{DATA_ROOT}/{RAW_FOLDERS[dataset]}/raw"


def raw_inputs(wildcards):
    """Raw files of a dataset: all of them with downloads on, else those already present."""
    paths = [f"{raw_dir(wildcards.dataset)}/{name}" for name in RAW_FILES]
    if config["download"]:
        return paths
    return [path for path in paths if Path(path).is_file()]


def stage_code(module):
    """Return the source files of ``stages.<module>`` and every stages module it imports.

    Listing them as inputs makes a job stale when the code it runs changes.
    """
    root = Path(workflow.basedir).parent
    seen, pending = set(), [f"stages.{module}"]
    while pending:
        name = pending.pop()
        path = root / Path(*name.split("."))
        path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
        if name in seen or not path.is_file():
            continue
        seen.add(name)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("stages"):
                pending.append(node.module)
                pending.extend(f"{node.module}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.Import):
                pending.extend(a.name for a in node.names if a.name.startswith("stages"))
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                # Modules imported by name at run time, e.g. the model registry's entries.
                if node.value.startswith("stages.") and " " not in node.value:
                    pending.append(node.value)
        parent = name.rpartition(".")[0]
        if parent:
            pending.append(parent)
    paths = []
    for name in sorted(seen):
        path = root / Path(*name.split("."))
        path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
        paths.append(str(path.relative_to(root)))
    return paths


def folder_dataset(wildcards):
    return {folder: key for key, folder in RAW_FOLDERS.items()}[wildcards.folder]


def dataset_domain(wildcards):
    return config["datasets"][wildcards.dataset]


def scaled_by_attempt(base):
    """A resource callable that grows with each retry: base, 2 x base, ..."""

    def resource(wildcards, attempt):
        return base * attempt

    return resource


def visible_gpu_count():
    """Count the NVIDIA GPUs the driver lists on this host; CUDA_VISIBLE_DEVICES may hide them.

    Reads /proc/driver/nvidia/gpus (one folder per GPU) instead of importing torch, which
    would slow down every workflow parse. Returns 0 without the NVIDIA kernel driver.
    """
    gpus = Path("/proc/driver/nvidia/gpus")
    count = len(list(gpus.iterdir())) if gpus.is_dir() else 0
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        # CUDA stops at the first invalid entry, so "-1" or "" hides every GPU.
        entries = visible.split(",")
        usable = 0
        while usable < len(entries) and entries[usable].strip() not in ("", "-1"):
            usable += 1
        count = min(count, usable)
    return count


# The `gpu` resource of the training and evaluation jobs. It is 0 with device cpu or when this
# host shows no GPU, so the gpu cap of profiles/default never holds back CPU-only runs. The
# SLURM profile sets gpu=1 for these rules itself, because a login node usually has no GPU.
GPU_PER_JOB = 0 if config["device"] == "cpu" or visible_gpu_count() == 0 else 1


def model_kind(wildcards):
    return config["models"][wildcards.model]["kind"]


def train_data(wildcards):
    """The HDF5 file a training variant reads (occlusion is applied when loading)."""
    return f"results/datasets/{wildcards.train_dataset.removesuffix(OCCLUDED_SUFFIX)}.h5"


def occlusion_flag(wildcards):
    return "--occlusion" if wildcards.train_dataset.endswith(OCCLUDED_SUFFIX) else ""


def tuned_parameters(wildcards):
    """The tuned parameters file of a model when tuning is on, else nothing."""
    if config["tune"]["enabled"] and wildcards.model in config["tune"]["models"]:
        return f"results/tune/{wildcards.model}/{wildcards.train_dataset}/best.json"
    return []


def tuned_flag(wildcards, input):
    return f"--tuned {input.tuned}" if input.tuned else ""


def model_config(wildcards):
    return config["models"][wildcards.model]


def model_architecture(wildcards):
    """The model's architecture as canonical JSON (sorted keys, so key order never matters)."""
    return json.dumps(model_config(wildcards).get("architecture", {}), sort_keys=True)


def model_optimisation(wildcards):
    options = dict(config["training"])
    options.update(model_config(wildcards).get("optimisation", {}))
    return json.dumps(options, sort_keys=True)


def model_kinds_json(wildcards):
    kinds = {name: model["kind"] for name, model in config["models"].items()}
    return json.dumps(kinds, sort_keys=True)


def evaluation_files(wildcards=None):
    return expand(
        "results/eval/{model}/{train_dataset}/seed{seed}/{dataset}.parquet",
        model=MODELS,
        train_dataset=TRAIN_VARIANTS,
        seed=SEEDS,
        dataset=DATASETS,
    )
