"""The data of ``task: regress``: read → validate (a numeric target) → split (seeded, random) →
infer the feature schema on the training rows → cache the splits as Parquet with a manifest.

    python -m tabular_mining preprocess --config configs/tabular_mining/house_prices.yaml

The cache lives in ``data/cache/tabular_mining/<name>-<hash of the data config>/`` (the hash also
says the split is random, so a classify recipe of the same name and data never reads it);
``train`` and ``evaluate`` call :func:`load_splits`, which makes the splits when the cache is missing.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
from sklearn.model_selection import train_test_split

from shared.errors import UserError
from tabular_mining.common.dask import dask_client
from tabular_mining.common.splits import Splits, cache_splits, read_cached_splits
from tabular_mining.common.table import TableData, check_columns, load_table, split_cache_dir
from tabular_mining.regress.config import RegressConfig
from tabular_mining.regress.target import numeric_target

SPLIT_KIND = "random"  # part of the cache key: classify's stratified split of the same data is another cache


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
    """The preprocess stage: make and cache the splits (on the Dask cluster under ``distributed:
    dask``); returns the cache folder and the row counts."""
    if cfg.distributed == "dask":
        from tabular_mining.regress.dask import cache_dir, preprocess_dask

        with dask_client(cfg.dask):
            return {"cache": str(cache_dir(cfg)), **preprocess_dask(cfg)["rows"]}
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


def load_splits(name: str, cfg: TableData, distributed: str = "none") -> Splits:
    """The cached splits for this data config, preprocessing first if there is no complete cache
    (``distributed="dask"``: the Dask split, which only ``distributed: dask`` preprocessing makes)."""
    if distributed == "dask":
        from tabular_mining.regress.dask import DASK_SPLIT_KIND

        out = split_cache_dir(name, cfg, DASK_SPLIT_KIND)
        cached = read_cached_splits(out)
        if cached is None:
            raise UserError(f"no Dask split of this data at {out}: run preprocess or train with distributed=dask")
        return cached
    return read_cached_splits(cache_path(name, cfg)) or make_splits(name, cfg)


def cache_path(name: str, cfg: TableData) -> Path:
    """This task's split cache of a data config (see :func:`split_cache_dir`)."""
    return split_cache_dir(name, cfg, SPLIT_KIND)
