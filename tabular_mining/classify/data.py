"""The data of ``task: classify``: read → validate → split (seeded, stratified) → infer the
feature schema on the training rows → cache the splits as Parquet with a manifest.

    python -m tabular_mining preprocess --config configs/tabular_mining/churn.yaml

The cache lives in ``data/cache/tabular_mining/<name>-<hash of the data config>/``; ``train``
and ``evaluate`` call :func:`load_splits`, which makes the splits when the cache is missing.
"""
from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
from sklearn.model_selection import train_test_split

from shared.errors import UserError
from tabular_mining.classify.config import ClassifyConfig
from tabular_mining.classify.labels import check_class_rows, refuse_label_twins
from tabular_mining.common.splits import Splits, cache_splits, read_cached_splits
from tabular_mining.common.table import TableData, check_columns, load_table, split_cache_dir, target_classes

log = logging.getLogger(__name__)


def split_rows(df: pd.DataFrame, y: pd.Series, test_size: float, valid_size: float, seed: int):
    """Stratified train/valid/test split; sizes are fractions of all rows (``test_size=0``: no
    test rows). Pure."""
    if test_size == 0:
        rest, test = df, df.iloc[:0]
    else:
        rest, test = train_test_split(df, test_size=test_size, stratify=y, random_state=seed)
    valid_share = valid_size / (1.0 - test_size)
    train, valid = train_test_split(rest, test_size=valid_share, stratify=y.loc[rest.index], random_state=seed)
    return train, valid, test


def preprocess(cfg: ClassifyConfig) -> dict:
    """The preprocess stage: make and cache the splits (on the Dask cluster under
    ``distributed: dask``); returns the cache folder and the row counts."""
    if cfg.distributed == "dask":
        from tabular_mining.classify.dask import dask_client, preprocess_dask

        with dask_client(cfg.dask):
            rows = preprocess_dask(cfg)["rows"]
    else:
        rows = make_splits(cfg.name, cfg.data).manifest["rows"]
    return {"cache": str(split_cache_dir(cfg.name, cfg.data, cfg.distributed)), **rows}


def make_splits(name: str, cfg: TableData) -> Splits:
    """Read, validate, split and write the cache; returns the splits."""
    df, source = load_table(cfg)
    check_columns(df, cfg, source)
    classes = target_classes(df[cfg.target], cfg.positive_class, source, cfg.target)
    refuse_label_twins(classes, source, cfg.target)
    if len(classes) == 2 and cfg.positive_class is None:  # 0/1 targets: the minority may well be 0
        share = float((df[cfg.target].astype(str) == classes[1]).mean())
        log.info("%s: positive class %r of %r (the minority, %.1f%% of rows): the probability predict and serve "
                 "give is of it; set data.positive_class=%s to choose", source, classes[1], cfg.target,
                 100 * share, classes[0])
    if cfg.sample and cfg.sample < len(df):
        df, _ = train_test_split(df, train_size=cfg.sample, stratify=df[cfg.target].astype(str),
                                 random_state=cfg.seed)
    y = df[cfg.target].astype(str)
    check_class_rows(y.value_counts(), cfg, source, len(classes))
    return cache_splits(cache_path(name, cfg), cfg, source, df,
                        split_rows(df, y, cfg.test_size, cfg.valid_size, cfg.seed), classes,
                        "stratified (scikit-learn train_test_split, seeded)",
                        lambda parts: class_shares(parts, cfg.target, classes), {"classes": classes})


def class_shares(parts: dict[str, pd.DataFrame], target: str, classes: list[str]) -> dict:
    """The manifest's class balance: the positive rate per split for two classes; rows per class
    for more."""
    labels = {k: v[target].astype(str) for k, v in parts.items()}
    if len(classes) == 2:
        return {"positive_rate": {k: float((y == classes[1]).mean()) if len(y) else None for k, y in labels.items()}}
    return {"positive_rate": {k: None for k in labels},
            "class_rows": {c: int((labels["train"] == c).sum()) for c in classes},
            "class_rows_by_split": {k: {c: int((y == c).sum()) for c in classes} for k, y in labels.items()}}


def load_splits(name: str, cfg: TableData, made_by: str = "local") -> Splits:
    """The cached splits for this data config, preprocessing first if there is no complete cache
    (``made_by="dask"``: the Dask split, which only ``distributed: dask`` preprocessing makes)."""
    out = split_cache_dir(name, cfg, made_by)
    cached = read_cached_splits(out)
    if cached is None and made_by == "dask":
        raise UserError(f"no Dask split of this data at {out}: run preprocess or train with distributed=dask")
    return cached or make_splits(name, cfg)


def cache_path(name: str, cfg: TableData) -> Path:
    """This module's split cache of a data config (see :func:`split_cache_dir`)."""
    return split_cache_dir(name, cfg, "local")
