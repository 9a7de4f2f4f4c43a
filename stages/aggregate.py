"""Combine per-job evaluation Parquet files into result tables and plots.

Usage: python -m stages.aggregate --inputs a.parquet b.parquet ... --model-kinds '{"gnft": "gnft"}'
       --out-dir results/tables

Writes, atomically:
- ``results.parquet`` and ``results.csv``: every evaluation row (long format);
- ``summary.csv``: per model, feature, training variant, dataset and metric, the mean, standard
  deviation (ddof 1), seed count and 95% confidence interval of the mean (Student t);
- ``summary.md``: test probe accuracy and equivariance errors as mean ± std [95% CI];
- ``reproduction.csv`` and ``reproduction.md``: each of the paper's claims with our numbers
  and a verdict (see stages/claims.py);
- ``probe_accuracy.png``: test probe accuracy per model, one bar per dataset and variant;
- ``indomain_vs_ood.png``: in-domain against mean out-of-domain accuracy per model.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy import stats  # noqa: E402

from stages.claims import reproduction_table  # noqa: E402
from stages.common import StageError, atomic_path, run_main  # noqa: E402
from stages import tables  # noqa: E402

log = logging.getLogger("stages.aggregate")

GROUP_KEYS = ["train_dataset", "model", "feature", "dataset", "domain", "split", "metric"]
OCCLUDED_SUFFIX = "_occluded"


def read_results(paths: list[Path]) -> pd.DataFrame:
    """Concatenate evaluation files, checking that each has the expected columns."""
    frames = [tables.read_parquet(path, tables.EVALUATION) for path in sorted(set(paths))]
    if not frames:
        raise StageError("no evaluation files given; check the models and datasets in config.yaml")
    results = pd.concat(frames, ignore_index=True)
    return results.sort_values(GROUP_KEYS + ["seed"], ignore_index=True)


def summarise(results: pd.DataFrame) -> pd.DataFrame:
    """Return mean, std, seed count and the 95% t interval of the mean per group."""
    summary = results.groupby(GROUP_KEYS, observed=True, dropna=False)["value"].agg(
        mean="mean", std="std", seeds="count"
    ).reset_index()
    seeds = summary["seeds"].to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        half = stats.t.ppf(0.975, np.maximum(seeds - 1, 1)) * summary["std"] / np.sqrt(seeds)
    half = half.where(seeds > 1)
    summary["ci95_low"] = summary["mean"] - half
    summary["ci95_high"] = summary["mean"] + half
    return summary


def format_cell(row, scale: float, digits: int) -> str:
    """'mean ± std [low, high]' scaled; one seed has no spread, so it reads 'mean (n=1)'."""
    mean = scale * row["mean"]
    if row["seeds"] < 2:
        return f"{mean:.{digits}f} (n=1)"
    return (f"{mean:.{digits}f} ± {scale * row['std']:.{digits}f} "
            f"[{scale * row['ci95_low']:.{digits}f}, {scale * row['ci95_high']:.{digits}f}]")


def accuracy_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Test probe accuracy (%) per variant, model and feature; one column per dataset."""
    rows = summary[(summary.metric == "probe_accuracy") & (summary.split == "test")].copy()
    rows["cell"] = [format_cell(row, 100, 1) for _, row in rows.iterrows()]
    table = rows.pivot_table(index=["train_dataset", "model", "feature"], columns="dataset",
                             values="cell", aggfunc="first")
    return table.reset_index()


def equivariance_table(summary: pd.DataFrame) -> pd.DataFrame:
    rows = summary[summary.metric.str.startswith("equivariance_error")].copy()
    rows["cell"] = [format_cell(row, 1, 4) for _, row in rows.iterrows()]
    return rows.pivot_table(index=["train_dataset", "model", "dataset"], columns="metric",
                            values="cell", aggfunc="first").reset_index()


def save_figure(fig, path: Path) -> None:
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)


def plot_accuracy(summary: pd.DataFrame, path: Path) -> None:
    rows = summary[(summary.metric == "probe_accuracy") & (summary.split == "test")]
    rows = rows.assign(label=rows.model + "\n" + rows.feature,
                       series=rows.dataset + " / " + rows.train_dataset)
    labels, series = sorted(rows.label.unique()), sorted(rows.series.unique())
    width = 0.8 / max(len(series), 1)
    fig, axis = plt.subplots(figsize=(max(6, 1.2 * len(labels)), 4.5))
    for offset, name in enumerate(series):
        part = rows[rows.series == name].set_index("label").reindex(labels)
        positions = [i + offset * width for i in range(len(labels))]
        axis.bar(positions, 100 * part["mean"], width, yerr=100 * part["std"].fillna(0.0),
                 label=name, capsize=2)
    axis.set_xticks([i + width * (len(series) - 1) / 2 for i in range(len(labels))], labels,
                    fontsize=7)
    axis.set_ylabel("test probe accuracy (%)")
    axis.set_ylim(0, 100)
    axis.legend(title="dataset / training variant", fontsize=7)
    axis.set_title("Linear probe on frozen features (mean ± std over seeds)")
    save_figure(fig, path)


def plot_indomain_vs_ood(summary: pd.DataFrame, path: Path) -> None:
    rows = summary[(summary.metric == "probe_accuracy") & (summary.split == "test")]
    fig, axis = plt.subplots(figsize=(6, 5))
    for (variant, model, feature), part in rows.groupby(["train_dataset", "model", "feature"]):
        inside = part[part.domain == "in_domain"]["mean"]
        outside = part[part.domain == "out_of_domain"]["mean"]
        if inside.empty or outside.empty:
            continue
        marker = "s" if variant.endswith(OCCLUDED_SUFFIX) else "o"
        axis.scatter(100 * inside.mean(), 100 * outside.mean(), marker=marker)
        axis.annotate(f"{model}/{feature}", (100 * inside.mean(), 100 * outside.mean()),
                      fontsize=7, xytext=(3, 3), textcoords="offset points")
    axis.set_xlabel("in-domain test accuracy (%)")
    axis.set_ylabel("mean out-of-domain test accuracy (%)")
    axis.set_title("In-domain vs OOD probe accuracy (circles: rotated, squares: occluded)")
    save_figure(fig, path)


def write_outputs(results: pd.DataFrame, kinds: dict[str, str], out_dir: Path) -> None:
    summary = summarise(results)
    for name, frame in (("results", results), ("summary", summary)):
        with atomic_path(out_dir / f"{name}.csv") as tmp:
            frame.to_csv(tmp, index=False)
    tables.write_parquet(results, tables.EVALUATION, out_dir / "results.parquet")

    in_domain = sorted(results.loc[results.domain == "in_domain", "dataset"].unique())
    out_of_domain = sorted(results.loc[results.domain == "out_of_domain", "dataset"].unique())
    train_dataset = in_domain[0] if in_domain else ""
    claims = reproduction_table(summary, kinds, train_dataset, train_dataset, out_of_domain,
                                train_dataset + OCCLUDED_SUFFIX)
    with atomic_path(out_dir / "reproduction.csv") as tmp:
        claims.to_csv(tmp, index=False)
    with atomic_path(out_dir / "reproduction.md") as tmp:
        tmp.write_text("# The paper's rotated-MNIST claims against this run\n\n"
                       + claims.to_markdown(index=False) + "\n")

    markdown = [
        "# Rotated-image results",
        "",
        "## Test linear-probe accuracy (%): mean ± std [95% CI] over seeds",
        "",
        accuracy_table(summary).to_markdown(index=False),
        "",
    ]
    equivariance = equivariance_table(summary)
    if len(equivariance):
        markdown += [
            "## Latent equivariance error on the test split: mean ± std [95% CI] over seeds",
            "",
            "`equivariance_error` is ||Φ(x_b) − Φ(x_a)M(θ_b − θ_a)|| / ||Φ(x_b)||; "
            "`equivariance_error_identity` is the same with M = I. Steerable CNNs are measured "
            "on their invariant features, so for them M = I and both columns agree.",
            "",
            equivariance.to_markdown(index=False),
            "",
        ]
    with atomic_path(out_dir / "summary.md") as tmp:
        tmp.write_text("\n".join(markdown))
    plot_accuracy(summary, out_dir / "probe_accuracy.png")
    plot_indomain_vs_ood(summary, out_dir / "indomain_vs_ood.png")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", nargs="+", required=True, type=Path)
    parser.add_argument("--model-kinds", default="{}", help="JSON: model name -> kind")
    parser.add_argument("--out-dir", required=True, type=Path)
    args = parser.parse_args(argv)
    results = read_results(args.inputs)
    write_outputs(results, json.loads(args.model_kinds), args.out_dir)
    log.info("combined %d files (%d rows) into %s", len(args.inputs), len(results), args.out_dir)


if __name__ == "__main__":
    run_main(main)
