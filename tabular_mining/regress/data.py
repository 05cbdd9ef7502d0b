"""The data of ``task: regress``: read → validate (a numeric target) → split (seeded, random) →
infer the feature schema on the training rows → cache the splits as Parquet with a manifest.

    python -m tabular_mining preprocess --config configs/tabular_mining/house_prices.yaml

The cache lives in ``data/cache/tabular_mining/<name>-<hash of the data config>/`` (the hash also
says the split is random, so a classify recipe of the same name and data never reads it);
``train`` and ``evaluate`` call :func:`load_splits`, which makes the splits when the cache is missing.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from sklearn.model_selection import train_test_split

from shared.config import to_dict
from shared.errors import UserError
from shared.runs import atomic_path, file_sha256, read_json, write_json
from tabular_mining.common.features import NUMERIC, FeatureSchema, clean, infer_schema
from tabular_mining.common.table import (
    TableData,
    check_columns,
    describe_missing,
    load_table,
    split_cache_dir,
)
from tabular_mining.regress.config import RegressConfig

log = logging.getLogger(__name__)
SPLITS = ("train", "valid", "test")
SPLIT_KIND = "random"  # part of the cache key: classify's stratified split of the same data is another cache


@dataclass
class Splits:
    train: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame
    schema: FeatureSchema
    manifest: dict


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
        raise UserError(f"{source}: target column {column!r} must be numeric but row {int(bad.idxmax())} holds "
                        f"{text[bad].iloc[0]!r}, not a number ({int(bad.sum())} such rows)")
    return parsed.astype(float)


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
    train, valid, test = split_rows(df, cfg.test_size, cfg.valid_size, cfg.seed)
    schema = infer_schema(train, cfg.target, [], cfg.id_columns, cfg.drop_columns, cfg.categorical, cfg.numeric,
                          source)
    missing = describe_missing(df, cfg, source, [f.name for f in schema.features if f.kind == NUMERIC])
    parts = {k: clean(v, schema, source).reset_index(drop=True) for k, v in zip(SPLITS, (train, valid, test))}

    out = cache_path(name, cfg)
    out.mkdir(parents=True, exist_ok=True)
    for split, frame in parts.items():
        with atomic_path(out / f"{split}.parquet") as tmp:
            frame.to_parquet(tmp, index=False)
    write_json(out / "feature_schema.json", schema.to_dict())
    manifest = {
        "source": source,
        "source_sha256": file_sha256(cfg.path) if cfg.path else None,
        "rows": {k: len(v) for k, v in parts.items()},
        "target": {k: target_summary(v[cfg.target]) for k, v in parts.items()},
        "missing_cells": missing,
        "split": "random (scikit-learn train_test_split, seeded)",
        "features": {"numeric": sum(f.kind == NUMERIC for f in schema.features),
                     "categorical": sum(f.kind != NUMERIC for f in schema.features)},
        "config": to_dict(cfg),
        "files": {k: file_sha256(out / f"{k}.parquet") for k in SPLITS},
    }
    write_json(out / "manifest.json", manifest)  # written last: its presence marks a complete cache
    log.info("preprocessed %s: %s rows → %s", source, len(df), out)
    return Splits(**parts, schema=schema, manifest=manifest)


def target_summary(y: pd.Series) -> dict | None:
    """Mean, standard deviation, min and max of a split's target (None for an empty split)."""
    if not len(y):
        return None
    return {"mean": float(y.mean()), "std": float(y.std(ddof=0)), "min": float(y.min()), "max": float(y.max())}


def load_splits(name: str, cfg: TableData) -> Splits:
    """The cached splits for this data config, preprocessing first if there is no complete cache."""
    out = cache_path(name, cfg)
    if not (out / "manifest.json").exists():
        return make_splits(name, cfg)
    parts = {k: pd.read_parquet(out / f"{k}.parquet") for k in SPLITS}
    return Splits(**parts, schema=FeatureSchema.from_dict(read_json(out / "feature_schema.json")),
                  manifest=read_json(out / "manifest.json"))


def cache_path(name: str, cfg: TableData) -> Path:
    """This task's split cache of a data config (see :func:`split_cache_dir`)."""
    return split_cache_dir(name, cfg, SPLIT_KIND)
