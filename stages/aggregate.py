"""Combine per-job evaluation Parquet files into result tables and a plot.

Usage: python -m stages.aggregate --inputs a.parquet b.parquet ... --out-dir results/tables

Writes, atomically:
- ``results.parquet`` and ``results.csv``: every evaluation row (long format);
- ``summary.csv`` and ``summary.md``: mean, standard deviation and seed count of every metric
  per model, feature and dataset, and the Markdown table of test probe accuracy (mean +/- std
  over seeds) with one column per dataset;
- ``probe_accuracy.png``: test probe accuracy per model and feature, one bar per dataset.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from stages.common import StageError, atomic_path, run_main  # noqa: E402
from stages.evaluate import RESULT_SCHEMA  # noqa: E402

log = logging.getLogger("stages.aggregate")

GROUP_KEYS = ["model", "feature", "train_dataset", "dataset", "domain", "split", "metric"]


def read_results(paths: list[Path]) -> pd.DataFrame:
    """Concatenate evaluation files, checking that each has the expected columns."""
    frames = []
    for path in sorted(paths):
        frame = pd.read_parquet(path)
        if list(frame.columns) != list(RESULT_SCHEMA):
            raise StageError(
                f"{path} has columns {list(frame.columns)}, expected {list(RESULT_SCHEMA)}; "
                "delete it and rerun its evaluation job"
            )
        frames.append(frame.astype(RESULT_SCHEMA))
    if not frames:
        raise StageError("no evaluation files given; check the models and datasets in config.yaml")
    return pd.concat(frames, ignore_index=True).sort_values(GROUP_KEYS + ["seed"], ignore_index=True)


def summarise(results: pd.DataFrame) -> pd.DataFrame:
    """Return mean, std (ddof 1; NaN for one seed) and seed count per group."""
    summary = results.groupby(GROUP_KEYS, observed=True, dropna=False)["value"].agg(
        mean="mean", std="std", seeds="count"
    )
    return summary.reset_index()


def format_cell(mean: float, std: float, seeds: int, digits: int) -> str:
    """'mean ± std (n=seeds)'; with one seed there is no spread to report."""
    if seeds < 2:
        return f"{mean:.{digits}f} (n=1)"
    return f"{mean:.{digits}f} ± {std:.{digits}f} (n={seeds})"


def accuracy_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Test probe accuracy in percent as 'mean ± std', models x datasets."""
    rows = summary[(summary.metric == "probe_accuracy") & (summary.split == "test")].copy()
    rows["cell"] = [
        format_cell(100 * m, 100 * s, n, 1) for m, s, n in zip(rows["mean"], rows["std"], rows["seeds"])
    ]
    table = rows.pivot_table(
        index=["model", "feature"], columns="dataset", values="cell", aggfunc="first"
    )
    return table.reset_index()


def equivariance_table(summary: pd.DataFrame) -> pd.DataFrame:
    rows = summary[summary.metric.str.startswith("equivariance_error")].copy()
    rows["cell"] = [
        format_cell(m, s, n, 4) for m, s, n in zip(rows["mean"], rows["std"], rows["seeds"])
    ]
    return rows.pivot_table(index=["model", "dataset"], columns="metric", values="cell",
                            aggfunc="first").reset_index()


def plot_accuracy(summary: pd.DataFrame, path: Path) -> None:
    rows = summary[(summary.metric == "probe_accuracy") & (summary.split == "test")]
    rows = rows.assign(label=rows.model + "\n" + rows.feature)
    labels = sorted(rows.label.unique())
    datasets = sorted(rows.dataset.unique())
    width = 0.8 / max(len(datasets), 1)
    fig, axis = plt.subplots(figsize=(max(6, 1.4 * len(labels)), 4))
    for offset, dataset in enumerate(datasets):
        part = rows[rows.dataset == dataset].set_index("label").reindex(labels)
        positions = [i + offset * width for i in range(len(labels))]
        axis.bar(positions, 100 * part["mean"], width, yerr=100 * part["std"].fillna(0.0),
                 label=dataset, capsize=3)
    axis.set_xticks([i + width * (len(datasets) - 1) / 2 for i in range(len(labels))], labels)
    axis.set_ylabel("test probe accuracy (%)")
    axis.set_ylim(0, 100)
    axis.legend(title="dataset")
    axis.set_title("Linear probe on frozen features (mean ± std over seeds)")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)


def write_outputs(results: pd.DataFrame, out_dir: Path) -> None:
    summary = summarise(results)
    with atomic_path(out_dir / "results.parquet") as tmp:
        results.to_parquet(tmp, index=False)
    with atomic_path(out_dir / "results.csv") as tmp:
        results.to_csv(tmp, index=False)
    with atomic_path(out_dir / "summary.csv") as tmp:
        summary.to_csv(tmp, index=False)
    markdown = [
        "# Rotated-image results",
        "",
        "## Test linear-probe accuracy (%), mean ± std over seeds",
        "",
        accuracy_table(summary).to_markdown(index=False),
        "",
    ]
    equivariance = equivariance_table(summary)
    if len(equivariance):
        markdown += [
            "## Latent equivariance error on the test split, mean ± std over seeds",
            "",
            "`equivariance_error` is ||Φ(x_b) − Φ(x_a)M(θ_b − θ_a)|| / ||Φ(x_b)||; "
            "`equivariance_error_identity` is the same with M = I.",
            "",
            equivariance.to_markdown(index=False),
            "",
        ]
    with atomic_path(out_dir / "summary.md") as tmp:
        tmp.write_text("\n".join(markdown))
    plot_accuracy(summary, out_dir / "probe_accuracy.png")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", nargs="+", required=True, type=Path)
    parser.add_argument("--out-dir", required=True, type=Path)
    args = parser.parse_args(argv)
    results = read_results(args.inputs)
    write_outputs(results, args.out_dir)
    log.info("combined %d files (%d rows) into %s", len(args.inputs), len(results), args.out_dir)


if __name__ == "__main__":
    run_main(main)
