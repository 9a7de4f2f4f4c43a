"""Verify a dataset's raw IDX files against their published checksums and write a manifest.

Usage: python -m stages.check_raw --dataset mnist --data-root data --out manifest.json

Every official split whose two files (images and labels) are both present is used; a split with
only one of its files, or a dataset with no complete split, is an error. The manifest lists each
file with its MD5 and SHA-256 so that the dataset stage can record them.
"""

from __future__ import annotations

import argparse
import logging

from stages.common import StageError, file_digests, run_main, write_json
from stages.idx import SPLIT_PREFIXES, RawDataset, get_dataset

log = logging.getLogger("stages.check_raw")


def how_to_supply(dataset: RawDataset, data_root: str) -> str:
    return (
        f"put the official file into {dataset.raw_dir(data_root)}/ "
        f"(torchvision's layout), or set download: true in config.yaml to fetch it"
    )


def check_dataset(dataset: RawDataset, data_root: str) -> dict:
    """Return the manifest of a dataset's complete splits, or raise StageError."""
    raw_dir = dataset.raw_dir(data_root)
    files, splits = {}, []
    for split in SPLIT_PREFIXES:
        names = dataset.files(split)
        present = [name for name in names if (raw_dir / name).is_file()]
        if not present:
            continue
        if len(present) == 1:
            missing = next(name for name in names if name not in present)
            raise StageError(
                f"missing raw file {raw_dir / missing} (expected MD5 {dataset.md5[missing]}), "
                f"while {present[0]} of the same split is present; "
                + how_to_supply(dataset, data_root)
            )
        for name in names:
            path = raw_dir / name
            digests = file_digests(path)
            expected = dataset.md5[name]
            if digests["md5"] != expected:
                raise StageError(
                    f"checksum mismatch for {path}: MD5 is {digests['md5']}, expected {expected}; "
                    "the file is corrupt or not the official release, so replace it: "
                    + how_to_supply(dataset, data_root)
                )
            files[name] = {"path": str(path), "bytes": path.stat().st_size, **digests}
        splits.append(split)
    if not splits:
        expected = ", ".join(f"{name} (MD5 {md5})" for name, md5 in dataset.md5.items())
        raise StageError(
            f"no raw files of dataset {dataset.key!r} found in {raw_dir}; expected {expected}; "
            + how_to_supply(dataset, data_root)
        )
    return {"dataset": dataset.key, "splits": splits, "files": files}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True, help="dataset key, e.g. mnist")
    parser.add_argument("--data-root", required=True, help="folder holding <Folder>/raw/*.gz")
    parser.add_argument("--out", required=True, help="manifest JSON to write")
    args = parser.parse_args(argv)

    dataset = get_dataset(args.dataset)
    manifest = check_dataset(dataset, args.data_root)
    log.info(
        "%s: splits %s verified (%d files)",
        dataset.key, ", ".join(manifest["splits"]), len(manifest["files"]),
    )
    write_json(args.out, manifest)


if __name__ == "__main__":
    run_main(main)
