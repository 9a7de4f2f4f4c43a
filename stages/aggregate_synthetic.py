"""Combine the E1 and E2 evaluation files into tables and the E1 spectrum plot.

Usage:
  python -m stages.aggregate_synthetic e1 --spectra s1.parquet ... --rollouts r1.parquet ...
         --rollout-steps 1 5 10 18 --out-dir results/tables
  python -m stages.aggregate_synthetic e2 --inputs g_nft/sigma0/seed1.parquet ...
         --dft dft.parquet --labels '{"g_nft": "g-NFT"}' --out-dir results/tables

E1 writes ``e1_peaks.csv`` and ``e1_peaks.md`` (per freqseed and seed: the true strong and
weak frequencies, the 5 largest values of the character spectrum P(f), how many strong
frequencies are among them, and the rollout SSE at the given steps) and ``e1_spectrum.png``
(P(f) with the ground-truth overlay, and beside it the mean |DFT| of the observed frame).

E2 writes ``e2_compression.csv`` and ``e2_compression.md``: the noise-free test error per
model and training noise sigma as mean and standard deviation (ddof 1) over seeds, and the
DFT-16 baselines of the same test set.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from stages.common import StageError, atomic_path, run_main  # noqa: E402
from stages.evaluate_sequence import (  # noqa: E402
    DFT_SCHEMA,
    E2_SCHEMA,
    ROLLOUT_SCHEMA,
    SPECTRUM_SCHEMA,
)
from stages.synthetic import e1_frequencies  # noqa: E402

log = logging.getLogger("stages.aggregate_synthetic")

NUM_STRONG = 5
NUM_PEAKS = 5
E2_METRICS = ("test_sse", "test_sse_reconstruction", "test_sse_prediction")
TABLE_COLUMNS = ["model", "label", "noise_std", "seeds"] + [
    f"{metric}_{stat}" for metric in E2_METRICS for stat in ("mean", "std")
]
BASELINE_LABELS = {
    "dft": "DFT-{bins}, authors' procedure (2 Re IFFT of bins 0..{last})",
    "dft_exact": "DFT-{bins}, exact real projection",
    "zero": "all-zero output (signal energy)",
}


def read_frames(paths: list[Path], schema: dict) -> pd.DataFrame:
    """Concatenate Parquet files, checking that each has exactly the expected columns."""
    frames = []
    for path in sorted(paths):
        frame = pd.read_parquet(path)
        if list(frame.columns) != list(schema):
            raise StageError(f"{path} has columns {list(frame.columns)}, expected {list(schema)}; "
                             "delete it and rerun its evaluation job")
        frames.append(frame.astype(schema))
    if not frames:
        raise StageError("no evaluation files given; check the e1 and e2 sections of config.yaml")
    return pd.concat(frames, ignore_index=True)


def write_table(frame: pd.DataFrame, markdown: str, out_dir: Path, name: str) -> None:
    with atomic_path(out_dir / f"{name}.csv") as tmp:
        frame.to_csv(tmp, index=False)
    with atomic_path(out_dir / f"{name}.md") as tmp:
        tmp.write_text(markdown)


def top_peaks(spectrum: pd.DataFrame) -> pd.DataFrame:
    """Select the NUM_PEAKS largest P(f) of one spectrum, ties broken by the lower frequency."""
    ordered = spectrum.sort_values(["character", "frequency"], ascending=[False, True])
    return ordered.head(NUM_PEAKS)


def e1_table(spectra: pd.DataFrame, rollouts: pd.DataFrame, steps: list[int]) -> pd.DataFrame:
    rows = []
    for (freqseed, seed), spectrum in spectra.groupby(["freqseed", "seed"], sort=True):
        frequencies = e1_frequencies(int(freqseed))
        strong, weak = frequencies[:NUM_STRONG], frequencies[NUM_STRONG:]
        peaks = top_peaks(spectrum)
        rollout = rollouts[(rollouts.freqseed == freqseed) & (rollouts.seed == seed)]
        row = {
            "freqseed": int(freqseed),
            "seed": int(seed),
            "strong_frequencies": " ".join(str(f) for f in strong),
            "weak_frequencies": " ".join(str(f) for f in weak),
            "top_peaks": " ".join(str(f) for f in peaks.frequency),
            "top_peak_heights": " ".join(f"{p:.2f}" for p in peaks.character),
            "strong_recovered": len(set(strong) & set(peaks.frequency.tolist())),
            "num_strong": len(set(strong)),
        }
        for step in steps:
            match = rollout[rollout.step == step]
            value = float(match.sse_mean.iloc[0]) if len(match) else float("nan")
            row[f"rollout_sse_step{step}"] = value
        row["zero_sse_mean"] = float(rollout.zero_sse_mean.mean())
        rows.append(row)
    return pd.DataFrame(rows)


def e1_markdown(table: pd.DataFrame, steps: list[int]) -> str:
    display = pd.DataFrame({
        "freqseed": table.freqseed,
        "seed": table.seed,
        "strong f": table.strong_frequencies,
        "weak f": table.weak_frequencies,
        "top-5 peaks f (P(f))": [
            ", ".join(f"{f} ({p})" for f, p in zip(fs.split(), ps.split()))
            for fs, ps in zip(table.top_peaks, table.top_peak_heights)
        ],
        "strong recovered": [f"{r}/{n}" for r, n in zip(table.strong_recovered, table.num_strong)],
        **{f"rollout SSE step {s}": table[f"rollout_sse_step{s}"].round(3) for s in steps},
        "all-zero SSE": table.zero_sse_mean.round(2),
    })
    return "\n".join([
        "# E1: U-NFT on time-warped signals",
        "",
        "P(f) = mean_i tr(M_i) 2 cos(f θ_i) over the test sequences, with M_i fitted from frames "
        "0 and 1. A learned 2 x 2 block of frequency k adds about 2 at f = k. A strong "
        "frequency counts as recovered when it is among the 5 largest P(f). The rollout SSE "
        "(sum over 128 points, mean over test sequences) of step r compares "
        "Ψ(Φ(x_1) M^r) with frame r + 1. The all-zero SSE is the mean energy of the target "
        "frames.",
        "",
        display.to_markdown(index=False),
        "",
    ])


def plot_spectra(spectra: pd.DataFrame, path: Path) -> None:
    pairs = sorted(spectra.groupby(["freqseed", "seed"]).groups)
    fig, axes = plt.subplots(len(pairs), 2, figsize=(12, 2.8 * len(pairs)), squeeze=False)
    for (left, right), (freqseed, seed) in zip(axes, pairs):
        part = spectra[(spectra.freqseed == freqseed) & (spectra.seed == seed)]
        part = part.sort_values("frequency")
        frequencies = e1_frequencies(int(freqseed))
        left.bar(part.frequency, part.character, color="tab:blue", label="learned P(f)")
        left.plot(part.frequency, part.ground_truth, color="tab:red", lw=1,
                  label="ground truth (strong and weak)")
        left.set_title(f"freqseed {freqseed}, seed {seed}: character spectrum of learned M")
        left.set_ylabel("P(f)")
        right.bar(part.frequency, part.observed_fft, color="tab:gray")
        right.set_title("plain DFT of the warped observation: mean 2|FFT(x_0)|/N")
        for axis in (left, right):
            for index, frequency in enumerate(frequencies):
                style = "-" if index < NUM_STRONG else ":"
                axis.axvline(frequency, color="tab:red", ls=style, lw=0.6, alpha=0.6)
            axis.set_xlim(-1, part.frequency.max() + 1)
        left.legend(fontsize=7, loc="upper left")
    for axis in axes[-1]:
        axis.set_xlabel("frequency f (red lines: true frequencies, dotted: weak)")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def run_e1(args) -> None:
    spectra = read_frames(args.spectra, SPECTRUM_SCHEMA)
    rollouts = read_frames(args.rollouts, ROLLOUT_SCHEMA)
    table = e1_table(spectra, rollouts, args.rollout_steps)
    write_table(table, e1_markdown(table, args.rollout_steps), args.out_dir, "e1_peaks")
    plot_spectra(spectra, args.out_dir / "e1_spectrum.png")
    for row in table.itertuples():
        log.info("freqseed %d seed %d: peaks %s, strong %s, %d recovered", row.freqseed,
                 row.seed, row.top_peaks, row.strong_frequencies, row.strong_recovered)


def cells(models: pd.DataFrame, metric: str) -> list[str]:
    """Format a metric of the summary rows as 'mean ± std', or 'mean (n=1)' for one seed."""
    texts = []
    for mean, std, seeds in zip(models[f"{metric}_mean"], models[f"{metric}_std"], models.seeds):
        texts.append(f"{mean:.4f} (n=1)" if seeds < 2 else f"{mean:.4f} ± {std:.4f}")
    return texts


def e2_table(results: pd.DataFrame, baselines: pd.DataFrame, labels: dict) -> pd.DataFrame:
    """Summarise each model and noise level over seeds, then append the baselines.

    Models come in the order of ``labels``, noise levels in increasing order.
    """
    order = list(labels)
    rows = []
    for (model, noise_std), part in results.groupby(["model", "noise_std"], sort=True):
        row = {"model": model, "label": labels.get(model, model), "noise_std": noise_std,
               "seeds": part.seed.nunique()}
        for metric in E2_METRICS:
            values = part.loc[part.metric == metric, "value"]
            row[f"{metric}_mean"] = values.mean()
            row[f"{metric}_std"] = values.std()
        rows.append(row)
    rows.sort(key=lambda row: order.index(row["model"]) if row["model"] in order else len(order))
    for baseline in baselines.itertuples():
        label = BASELINE_LABELS.get(baseline.baseline, baseline.baseline)
        label = label.format(bins=baseline.num_bins, last=baseline.num_bins - 1)
        rows.append({"model": baseline.baseline, "label": label, "noise_std": float("nan"),
                     "seeds": 0, "test_sse_mean": baseline.value})
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


def e2_markdown(table: pd.DataFrame) -> str:
    models = table[table.seeds > 0]
    baselines = table[table.seeds == 0]
    display = pd.DataFrame({
        "model": models.label,
        "training σ": models.noise_std.map(lambda v: f"{v:g}"),
        "test SSE (4 rec. + 1 pred.)": cells(models, "test_sse"),
        "reconstruction frames": cells(models, "test_sse_reconstruction"),
        "predicted frame": cells(models, "test_sse_prediction"),
        "seeds": models.seeds,
    })
    baseline_rows = pd.DataFrame({
        "model": baselines.label,
        "training σ": "–",
        "test SSE (4 rec. + 1 pred.)": baselines.test_sse_mean.map(lambda v: f"{v:.4f}"),
        "reconstruction frames": "–",
        "predicted frame": "–",
        "seeds": "–",
    })
    return "\n".join([
        "# E2: compression of time-warped signals, NFT against the DFT",
        "",
        "Test error on the noise-free test set (seed 1234, 5000 sequences of 5 frames): SSE over "
        "128 points, mean over 4 reconstructed and 1 predicted frame and over batches of 16, "
        "as mean ± std over training seeds. The DFT rows reconstruct frame 0 alone from the "
        "lowest FFT bins (16 bins are about 31 real numbers, against the 32 latent numbers of "
        "the NFT models in config.yaml).",
        "",
        pd.concat([display, baseline_rows], ignore_index=True).to_markdown(index=False),
        "",
    ])


def run_e2(args) -> None:
    results = read_frames(args.inputs, E2_SCHEMA)
    baselines = read_frames([args.dft], DFT_SCHEMA)
    labels = json.loads(args.labels)
    table = e2_table(results, baselines, labels)
    write_table(table, e2_markdown(table), args.out_dir, "e2_compression")
    for row in table.itertuples():
        if row.seeds:
            log.info("%s sigma %g: test SSE %.4f over %d seeds", row.model, row.noise_std,
                     row.test_sse_mean, row.seeds)
        else:
            log.info("%s: test SSE %.4f", row.label, row.test_sse_mean)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    e1 = commands.add_parser("e1", help="E1 peak table and spectrum plot")
    e1.add_argument("--spectra", type=Path, nargs="+", required=True)
    e1.add_argument("--rollouts", type=Path, nargs="+", required=True)
    e1.add_argument("--rollout-steps", type=int, nargs="+", default=[1, 5, 10, 18],
                    help="rollout steps shown in the table")
    e2 = commands.add_parser("e2", help="E2 compression table")
    e2.add_argument("--inputs", type=Path, nargs="+", required=True)
    e2.add_argument("--dft", type=Path, required=True, help="DFT baseline file")
    e2.add_argument("--labels", default="{}", help="JSON: model name -> table label, in row order")
    for sub in (e1, e2):
        sub.add_argument("--out-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    (run_e1 if args.command == "e1" else run_e2)(args)


if __name__ == "__main__":
    run_main(main)
