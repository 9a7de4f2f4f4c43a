"""Download one official raw file of a dataset with torchvision, checking its MD5.

Usage: python -m stages.fetch_raw --dataset mnist --file t10k-images-idx3-ubyte.gz --out PATH

Mirrors are tried in torchvision's order. The file is downloaded beside its final path and
renamed into place only after its checksum matches.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import tempfile
from pathlib import Path

from torchvision.datasets.utils import download_url

from stages.common import StageError, file_digests, run_main
from stages.idx import get_dataset

log = logging.getLogger("stages.fetch_raw")


def fetch(dataset_key: str, filename: str, out: Path) -> None:
    """Download ``filename`` of a dataset to ``out``, trying every mirror."""
    dataset = get_dataset(dataset_key)
    if filename not in dataset.md5:
        known = ", ".join(dataset.md5)
        raise StageError(f"unknown raw file {filename!r} for {dataset_key}; known: {known}")
    expected = dataset.md5[filename]
    out.parent.mkdir(parents=True, exist_ok=True)
    errors = []
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".download-") as tmp:
        for mirror in dataset.mirrors:
            url = mirror + filename
            log.info("downloading %s", url)
            try:
                download_url(url, tmp, filename, md5=expected)
            except (OSError, RuntimeError) as error:
                errors.append(f"{url}: {error}")
                log.warning("download failed: %s: %s", url, error)
                continue
            tmp_file = Path(tmp) / filename
            if file_digests(tmp_file)["md5"] != expected:
                errors.append(f"{url}: MD5 differs from {expected}")
                continue
            shutil.move(tmp_file, out.with_name(out.name + ".part"))
            os.replace(out.with_name(out.name + ".part"), out)
            log.info("saved %s", out)
            return
    raise StageError(
        f"could not download {filename} of {dataset_key} (expected MD5 {expected}): "
        + "; ".join(errors)
        + f". Copy the official file to {out} by hand, or check the network."
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--file", required=True, help="official file name, e.g. t10k-images-idx3-ubyte.gz")
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    fetch(args.dataset, args.file, args.out)


if __name__ == "__main__":
    run_main(main)
