"""The data of ``task: regress``: read → validate (a numeric target) → split (seeded, random) →
infer the feature schema on the training rows → cache the splits as Parquet with a manifest.

    python -m tabular_mining preprocess --config configs/tabular_mining/house_prices.yaml

The cache lives in ``data/cache/tabular_mining/<name>-<hash of the data config>/`` (the hash also
says the split is random, so a classify recipe of the same name and data never reads it);
``train`` and ``evaluate`` call :func:`load_splits`, which makes the splits when the cache is missing.
"""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
from sklearn.model_selection import train_test_split

from shared.errors import UserError
from tabular_mining.common.splits import Splits, cache_splits, read_cached_splits
from tabular_mining.common.table import TableData, check_columns, load_table, split_cache_dir
from tabular_mining.regress.config import RegressConfig

SPLIT_KIND = "random"  # part of the cache key: classify's stratified split of the same data is another cache


def numeric_target(y: pd.Series, source: str, column: str) -> pd.Series:
    """The target column as floats: a missing value, or a cell that is not a number, is an error
    naming the column (and the first such row). Pure."""
    if y.isna().any():
        raise UserError(f"{source}: target column {column!r} has {int(y.isna().sum())} missing values; "
                        "drop those rows or fill them")
    if pd.api.types.is_bool_dtype(y):
        raise UserError(f"{source}: target column {column!r} holds true/false values; the regress task needs "
                        "numbers (a binary target is the classify task)")
    if pd.api.types.is_numeric_dtype(y):
        return y.astype(float)
    text = y.astype("string").str.strip()
    parsed = pd.to_numeric(text, errors="coerce")
    bad = parsed.isna()
    if bad.any():
        first = text[bad].iloc[0]
        raise UserError(f"{source}: target column {column!r} must be numeric but row {int(bad.idxmax())} holds "
                        f"{first!r}, not a number ({int(bad.sum())} such rows){_formatted_hint(first)}")
    return parsed.astype(float)


def _formatted_hint(cell: str) -> str:
    """When a cell is a number written for reading (``$1,234``, ``1,234.50``, ``12%``): what to write."""
    plain = re.sub(r"[\s$€£¥%]|,(?=\d{3}\b)", "", cell)
    if plain == cell or pd.isna(pd.to_numeric(plain, errors="coerce")):
        return ""
    return (f"; it is a formatted number: write it plain ({plain}) in the file, without currency signs, "
            "thousands separators or %")


def split_rows(df: pd.DataFrame, test_size: float, valid_size: float, seed: int):
    """Random train/valid/test split; sizes are fractions of all rows (``test_size=0``: no test
    rows). Pure."""
    if test_size == 0:
        rest, test = df, df.iloc[:0]
    else:
        rest, test = train_test_split(df, test_size=test_size, random_state=seed)
    train, valid = train_test_split(rest, test_size=valid_size / (1.0 - test_size), random_state=seed)
    return train, valid, test


def preprocess(cfg: RegressConfig) -> dict:
    """The preprocess stage: make and cache the splits; returns the cache folder and the row counts."""
    rows = make_splits(cfg.name, cfg.data).manifest["rows"]
    return {"cache": str(cache_path(cfg.name, cfg.data)), **rows}


def make_splits(name: str, cfg: TableData) -> Splits:
    """Read, validate, split and write the cache; returns the splits."""
    df, source = load_table(cfg)
    check_columns(df, cfg, source)
    df = df.assign(**{cfg.target: numeric_target(df[cfg.target], source, cfg.target)})
    if cfg.sample and cfg.sample < len(df):
        df = df.sample(n=cfg.sample, random_state=cfg.seed)
    if len(df) < 20:
        raise UserError(f"{source}: {len(df)} rows; too few to split into train, valid and test")
    return cache_splits(cache_path(name, cfg), cfg, source, df, split_rows(df, cfg.test_size, cfg.valid_size, cfg.seed),
                        [], "random (scikit-learn train_test_split, seeded)",
                        lambda parts: {"target": {k: target_summary(v[cfg.target]) for k, v in parts.items()}})


def target_summary(y: pd.Series) -> dict | None:
    """Mean, standard deviation, min and max of a split's target (None for an empty split)."""
    if not len(y):
        return None
    return {"mean": float(y.mean()), "std": float(y.std(ddof=0)), "min": float(y.min()), "max": float(y.max())}


def load_splits(name: str, cfg: TableData) -> Splits:
    """The cached splits for this data config, preprocessing first if there is no complete cache."""
    return read_cached_splits(cache_path(name, cfg)) or make_splits(name, cfg)


def cache_path(name: str, cfg: TableData) -> Path:
    """This task's split cache of a data config (see :func:`split_cache_dir`)."""
    return split_cache_dir(name, cfg, SPLIT_KIND)
