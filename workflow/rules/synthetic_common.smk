# Helpers of the synthetic 1D experiments (E1: U-NFT spectra, E2: compression against the
# DFT): config checks, wildcard values, the JSON parameters each job receives, and the
# target lists. Uses `config` after resolve_config in common.smk has filled the defaults.
import json

from snakemake.exceptions import WorkflowError

E1 = config["e1"]
E2 = config["e2"]
E2_MODELS = list(E2["models"])


def check_synthetic_config():
    """Reject E1 and E2 settings that the schema cannot express."""
    for key, fractions in (("e1", E1["data"]["fractions"]), ("e2", E2["data"]["fractions"])):
        if abs(sum(fractions) - 1) > 1e-9:
            raise WorkflowError(
                f"invalid {key}.data.fractions {fractions}: the train, val and test fractions "
                f"sum to {sum(fractions)}, they must sum to 1"
            )
    for name, model in E2["models"].items():
        if not 1 <= model["cond_frames"] < model["frames"]:
            raise WorkflowError(
                f"e2.models.{name}: cond_frames {model['cond_frames']} must be at least 1 and "
                f"below frames {model['frames']}"
            )
    labels = [noise_label(sigma) for sigma in E2["noise_stds"]]
    if len(set(labels)) != len(labels):
        raise WorkflowError(f"e2.noise_stds {E2['noise_stds']} repeats a value; list each once")
    if E1["training"]["cond_frames"] >= E1["data"]["frames"]:
        raise WorkflowError(
            f"e1.training.cond_frames {E1['training']['cond_frames']} must be below "
            f"e1.data.frames {E1['data']['frames']}"
        )


def noise_label(sigma):
    """The path form of a noise level: 0, 0.01, 0.05, 0.1."""
    return f"{sigma:g}"


def canonical_json(value):
    """JSON with sorted keys, so that key order in config.yaml never reruns a job."""
    return json.dumps(value, sort_keys=True)


def fractions_arg(fractions):
    return " ".join(str(fraction) for fraction in fractions)


def e1_optimisation():
    options = dict(E1["training"])
    options.pop("cond_frames")
    return canonical_json(options)


def e2_model(wildcards):
    return E2["models"][wildcards.e2_model]


def e2_frames(wildcards):
    return e2_model(wildcards)["frames"]


def e2_cond_frames(wildcards):
    return e2_model(wildcards)["cond_frames"]


def e2_train_data(wildcards):
    """The training set of a seed, generated with as many frames as the model trains on."""
    return f"results/datasets/e2/seed{wildcards.seed}_frames{e2_frames(wildcards)}.h5"


def e2_architecture(wildcards):
    return canonical_json(e2_model(wildcards)["architecture"])


def e2_optimisation(wildcards):
    options = dict(E2["training"])
    options.update(e2_model(wildcards).get("optimisation", {}))
    return canonical_json(options)


def e2_labels_json():
    """Model name -> table label, in config order (the row order of the E2 table)."""
    return json.dumps({name: model["label"] for name, model in E2["models"].items()})


def e1_evaluation_files(kind):
    return expand(
        "results/eval/e1/unft/freqseed{freqseed}/seed{seed}/{kind}.parquet",
        freqseed=E1["freqseeds"],
        seed=E1["seeds"],
        kind=kind,
    )


def e2_evaluation_files():
    return expand(
        "results/eval/e2/{e2_model}/sigma{sigma}/seed{seed}.parquet",
        e2_model=E2_MODELS,
        sigma=[noise_label(sigma) for sigma in E2["noise_stds"]],
        seed=E2["seeds"],
    )


check_synthetic_config()

E1_TABLES = [
    "results/tables/e1_peaks.csv",
    "results/tables/e1_peaks.md",
    "results/tables/e1_spectrum.png",
]
E2_TABLES = ["results/tables/e2_compression.csv", "results/tables/e2_compression.md"]
# Targets of `rule all`; a disabled experiment adds nothing.
SYNTHETIC_TABLES = (E1_TABLES if E1["enabled"] else []) + (E2_TABLES if E2["enabled"] else [])


wildcard_constraints:
    freqseed=r"\d+",
    sigma=r"[0-9][0-9.e+-]*",
    e2_model="|".join(E2_MODELS),
