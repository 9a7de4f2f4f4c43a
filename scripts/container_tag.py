"""Print the tag of the pipeline's container image, or write it into the configuration.

Snakemake identifies a job's container only by its image URI, so the URI must change whenever
the image's contents can change. The tag is therefore the first 12 hex digits of a SHA-256
over the container recipes and the requirement files. config.yaml and the config schema carry
the URI with this tag, and tests/test_containers.py fails when they are out of date.

    python scripts/container_tag.py            # print the tag
    python scripts/container_tag.py --update   # write it into config.yaml and the schema
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
# Files that define the image's contents, relative to the repository root.
RECIPE_FILES = (
    "containers/Dockerfile",
    "containers/nft-pipeline.def",
    "requirements.txt",
    "requirements-nodeps.txt",
)
# Files whose container_image value carries the tag.
TAGGED_FILES = ("config.yaml", "workflow/schemas/config.schema.yaml")
IMAGE_NAME = "nft-pipeline"
TAG_PATTERN = re.compile(rf"(/{IMAGE_NAME}:)([0-9a-f]{{12}})\b")


def recipe_tag(root: Path = REPO_ROOT) -> str:
    """Return the tag: 12 hex digits of a SHA-256 over each recipe file's path and bytes."""
    digest = hashlib.sha256()
    for name in RECIPE_FILES:
        digest.update(name.encode() + b"\0")
        digest.update((root / name).read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def tags_in(path: Path) -> list[str]:
    """Return every nft-pipeline image tag written in ``path``."""
    return [match.group(2) for match in TAG_PATTERN.finditer(path.read_text())]


def update_tags(root: Path = REPO_ROOT) -> str:
    """Replace the image tag in config.yaml and the schema with the current recipe tag."""
    tag = recipe_tag(root)
    for name in TAGGED_FILES:
        path = root / name
        text = path.read_text()
        if not TAG_PATTERN.search(text):
            raise SystemExit(f"no '{IMAGE_NAME}:<12 hex digits>' image tag found in {path}")
        path.write_text(TAG_PATTERN.sub(rf"\g<1>{tag}", text))
    return tag


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--update",
        action="store_true",
        help="write the tag into " + " and ".join(TAGGED_FILES),
    )
    args = parser.parse_args(argv)
    tag = update_tags() if args.update else recipe_tag()
    print(tag)
    return 0


if __name__ == "__main__":
    sys.exit(main())
