"""Generate the synthetic 1D signal sets of E1 and E2 as HDF5 files.

Usage:
  python -m stages.generate_signals e1 --freqseed 1 --num-data 30000 --frames 3 --out f.h5
  python -m stages.generate_signals e1-rollout --freqseed 1 --test-seeds 1 2 3
         --num-data 30000 --frames 20 --out rollout.h5
  python -m stages.generate_signals e2 --seed 1 --num-data 5000 --frames 10 --out s.h5
  python -m stages.generate_signals e2-test --out test.h5

``e1`` and ``e2`` write train, val and test splits of one generated set, drawn with a
permutation seeded by the freqseed (E1) or the seed (E2). ``e1-rollout`` writes one ``test``
group with the sequences of every test seed, which redraw coefficients and shifts but keep
the freqseed's frequencies. ``e2-test`` writes the noise-free E2 test set of the authors'
test script (seed 1234, 5000 sequences of 5 frames). The signals and the file format are
described in stages/synthetic.py and stages/signal_data.py.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

from stages.common import StageError, run_main
from stages.signal_data import SEQUENCE_DTYPE, split_indices, write_signals
from stages.synthetic import (
    E2_TEST_SEED,
    NUM_POINTS,
    WARP_POWER,
    ShiftedSignals,
    make_e1_signals,
    make_e2_signals,
    make_e2_test_signals,
)

log = logging.getLogger("stages.generate_signals")

E1_NUM_STRONG = 5


def arrays_of(
    signals: ShiftedSignals, rows: np.ndarray | slice = slice(None)
) -> dict[str, np.ndarray]:
    """Select the rows of a generated set and convert them to the stored dtypes."""
    positions = np.arange(len(signals.shifts))[rows]
    return {
        "sequences": signals.sequences[rows].astype(SEQUENCE_DTYPE),
        "shifts": signals.shifts[rows].astype(np.float64),
        "coefficients": signals.coefficients[rows].astype(np.float64),
        "index": positions.astype(np.int64),
    }


def split_groups(signals: ShiftedSignals, fractions: list[float], seed: int) -> dict:
    indices = split_indices(len(signals.shifts), fractions, seed)
    return {name: arrays_of(signals, rows) for name, rows in indices.items()}


def common_attrs(experiment: str, signals: ShiftedSignals, groups: dict) -> dict:
    return {
        "experiment": experiment,
        "frequencies": [int(f) for f in signals.frequencies],
        "num_points": NUM_POINTS,
        "warp_power": WARP_POWER,
        "max_shift": float(np.pi),
        "split_sizes": {name: int(len(arrays["shifts"])) for name, arrays in groups.items()},
    }


def check_sizes(num_data: int, frames: int, min_frames: int) -> None:
    if num_data < 1:
        raise StageError(f"invalid --num-data {num_data}: generate at least one sequence")
    if frames < min_frames:
        raise StageError(f"invalid --frames {frames}: these sequences need at least {min_frames}")


def generate_e1(args) -> tuple[dict, dict]:
    check_sizes(args.num_data, args.frames, 3)
    signals = make_e1_signals(args.num_data, args.frames, freqseed=args.freqseed)
    groups = split_groups(signals, args.fractions, args.freqseed)
    attrs = common_attrs("e1", signals, groups)
    attrs.update(freqseed=args.freqseed, num_data=args.num_data, frames=args.frames,
                 fractions=args.fractions, split_seed=args.freqseed,
                 strong_frequencies=attrs["frequencies"][:E1_NUM_STRONG],
                 weak_frequencies=attrs["frequencies"][E1_NUM_STRONG:],
                 weak_strength=0.2, block_size=20)
    return groups, attrs


def generate_e1_rollout(args) -> tuple[dict, dict]:
    check_sizes(args.num_data, args.frames, 3)
    if not args.test_seeds:
        raise StageError("give at least one --test-seeds value")
    parts = []
    for test_seed in args.test_seeds:
        signals = make_e1_signals(args.num_data, args.frames, freqseed=args.freqseed,
                                  test_seed=test_seed)
        arrays = arrays_of(signals)
        arrays["repeat"] = np.full(args.num_data, test_seed, dtype=np.int64)
        parts.append(arrays)
    test = {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}
    groups = {"test": test}
    attrs = common_attrs("e1_rollout", signals, groups)
    attrs.update(freqseed=args.freqseed, num_data=args.num_data, frames=args.frames,
                 test_seeds=list(args.test_seeds),
                 strong_frequencies=attrs["frequencies"][:E1_NUM_STRONG],
                 weak_frequencies=attrs["frequencies"][E1_NUM_STRONG:],
                 weak_strength=0.2, block_size=20)
    return groups, attrs


def generate_e2(args) -> tuple[dict, dict]:
    check_sizes(args.num_data, args.frames, 2)
    # Noise is not stored: training redraws it for every batch, as the authors' loader does.
    signals = make_e2_signals(args.num_data, args.frames, seed=args.seed, noise_std=0.0)
    groups = split_groups(signals, args.fractions, args.seed)
    attrs = common_attrs("e2", signals, groups)
    attrs.update(seed=args.seed, num_data=args.num_data, frames=args.frames,
                 fractions=args.fractions, split_seed=args.seed, block_size=16)
    return groups, attrs


def generate_e2_test(args) -> tuple[dict, dict]:
    check_sizes(args.num_data, args.frames, 2)
    signals = make_e2_test_signals(args.num_data, args.frames)
    groups = {"test": arrays_of(signals)}
    attrs = common_attrs("e2_test", signals, groups)
    attrs.update(seed=E2_TEST_SEED, num_data=args.num_data, frames=args.frames, block_size=16)
    return groups, attrs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    e1 = commands.add_parser("e1", help="E1 train/val/test splits of one freqseed")
    e1.add_argument("--freqseed", type=int, required=True, help="seed of the frequency draw")
    rollout = commands.add_parser("e1-rollout", help="long E1 test sequences for rollouts")
    rollout.add_argument("--freqseed", type=int, required=True)
    rollout.add_argument("--test-seeds", type=int, nargs="+", default=[1, 2, 3],
                         help="seeds of the coefficients and shifts, one repeat each")
    e2 = commands.add_parser("e2", help="E2 train/val/test splits of one training seed")
    e2.add_argument("--seed", type=int, required=True)
    test = commands.add_parser("e2-test", help="the noise-free E2 test set (seed 1234)")
    for sub, num_data, frames in ((e1, 30000, 3), (rollout, 30000, 20), (e2, 5000, 10),
                                  (test, 5000, 5)):
        sub.add_argument("--num-data", type=int, default=num_data,
                         help="sequences to generate (per test seed for e1-rollout)")
        sub.add_argument("--frames", type=int, default=frames, help="frames T per sequence")
        sub.add_argument("--out", type=Path, required=True, help="HDF5 file to write")
    for sub in (e1, e2):
        sub.add_argument("--fractions", type=float, nargs=3, default=[0.8, 0.1, 0.1],
                         metavar=("TRAIN", "VAL", "TEST"), help="split fractions, summing to 1")
    args = parser.parse_args(argv)

    generate = {"e1": generate_e1, "e1-rollout": generate_e1_rollout, "e2": generate_e2,
                "e2-test": generate_e2_test}[args.command]
    groups, attrs = generate(args)
    write_signals(args.out, groups, attrs)
    log.info("wrote %s: %s, frequencies %s", args.out,
             ", ".join(f"{name} {tuple(g['sequences'].shape)}" for name, g in groups.items()),
             attrs["frequencies"])


if __name__ == "__main__":
    run_main(main)
