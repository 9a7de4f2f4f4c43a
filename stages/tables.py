"""Parquet files with explicit Arrow schemas: fixed column types, declared nullable columns.

Writing through a schema means an all-missing metric or an integer-valued metric never changes
a column's type, and reading checks the schema so that a file from another version of the
pipeline is rejected with a clear message instead of being combined silently.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from stages.common import StageError, atomic_path

EVALUATION = pa.schema([
    pa.field("model", pa.string(), nullable=False),
    pa.field("train_dataset", pa.string(), nullable=False),
    pa.field("dataset", pa.string(), nullable=False),
    pa.field("domain", pa.string(), nullable=False),
    pa.field("seed", pa.int64(), nullable=False),
    pa.field("split", pa.string(), nullable=False),
    pa.field("feature", pa.string(), nullable=False),
    pa.field("metric", pa.string(), nullable=False),
    pa.field("value", pa.float64(), nullable=True),
])

TRAINING_METRICS = pa.schema([
    pa.field("epoch", pa.int64(), nullable=False),
    pa.field("train_loss", pa.float64(), nullable=False),
    pa.field("val_loss", pa.float64(), nullable=True),
    pa.field("samples_per_s", pa.float64(), nullable=False),
    pa.field("elapsed_s", pa.float64(), nullable=False),
])


def write_parquet(frame: pd.DataFrame, schema: pa.Schema, path: str | Path) -> None:
    """Write ``frame``'s schema columns, cast to ``schema``, atomically and without pandas index."""
    missing = [name for name in schema.names if name not in frame.columns]
    if missing:
        raise StageError(f"cannot write {path}: columns {missing} are missing")
    table = pa.Table.from_pandas(frame[schema.names], schema=schema, preserve_index=False)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def read_parquet(path: str | Path, schema: pa.Schema) -> pd.DataFrame:
    """Read a Parquet file written with ``schema``; another schema is an error naming both."""
    try:
        found = pq.read_schema(path)
    except (OSError, pa.ArrowInvalid) as error:
        raise StageError(f"cannot read {path} ({error}); delete it and rerun its job") from error
    actual = [(f.name, str(f.type)) for f in found]
    expected = [(f.name, str(f.type)) for f in schema]
    if actual != expected:
        raise StageError(
            f"{path} has columns {actual}, expected {expected}; it was written by another "
            "version of the pipeline, so delete it and rerun its job"
        )
    return pq.read_table(path, schema=schema).to_pandas()
