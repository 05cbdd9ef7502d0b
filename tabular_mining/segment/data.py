"""The data of ``task: segment``: read, validate, sample, split (seeded; stratified by the target
when there is one), infer the feature schema on the training rows, cache both parts as Parquet.

    python -m tabular_mining preprocess --config configs/tabular_mining/segments.yaml

The cache lives in ``data/cache/tabular_mining/<name>-<hash of the data config>/``; ``train`` and
``evaluate`` call :func:`load_data`, which makes it when it is missing.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import pandas as pd
from sklearn.model_selection import train_test_split

from shared.config import to_dict
from shared.runs import atomic_path, read_json, write_json
from tabular_mining.common.features import NUMERIC, FeatureSchema, clean, infer_schema
from tabular_mining.common.table import (
    binary_target,
    check_columns,
    describe_missing,
    load_table,
    split_cache_dir,
)
from tabular_mining.segment.config import SegmentConfig

log = logging.getLogger(__name__)


@dataclass
class SegmentSplits:
    """The cached training and test rows (cleaned), the schema and the manifest."""

    train: pd.DataFrame
    test: pd.DataFrame
    schema: FeatureSchema
    manifest: dict

    @property
    def positive(self) -> str | None:
        return self.schema.classes[1] if len(self.schema.classes) == 2 else None


def preprocess(cfg: SegmentConfig) -> dict:
    """The preprocess stage: read, validate, sample, split, infer the schema on the training rows,
    cache as Parquet; returns the cache folder and the row counts. The target is optional: a
    ``data.target`` the file does not have (the recipe's ``churn`` on another table) is logged and
    left out, as are ``data.drop_columns`` it does not have."""
    d = cfg.data
    df, source = load_table(d)
    if d.target and d.target not in df.columns:
        log.warning("%s: no column %r (data.target): segmenting without a target; set data.target=COLUMN to "
                    "report its rate per segment", source, d.target)
        d = d.model_copy(update={"target": None})
    check_columns(df, d, source, need_target=d.target is not None)
    classes = binary_target(df[d.target], d.positive_class, source, d.target)[0] if d.target else []
    if d.sample and d.sample < len(df):
        df = df.sample(n=d.sample, random_state=d.seed)
    strat = df[d.target].astype(str) if d.target else None
    if d.test_size:
        train, test = train_test_split(df, test_size=d.test_size, stratify=strat, random_state=d.seed)
    else:
        train, test = df, df.iloc[:0]
    schema = infer_schema(train, d.target or "", classes, d.id_columns, d.drop_columns, d.categorical, d.numeric, source)
    missing = describe_missing(df, d, source, [f.name for f in schema.features if f.kind == NUMERIC])
    out = split_cache_dir(cfg.name, cfg.data)
    rows = {}
    for split, part in (("train", train), ("test", test)):
        with atomic_path(out / f"{split}.parquet") as tmp:
            clean(part, schema, source).reset_index(drop=True).to_parquet(tmp, index=False)
        rows[split] = len(part)
    write_json(out / "feature_schema.json", schema.to_dict())
    manifest = {"source": source, "rows": rows, "features": len(schema.features), "missing_cells": missing,
                "config": to_dict(d)}
    write_json(out / "manifest.json", manifest)  # written last: its presence marks a complete cache
    return {"cache": str(out), **rows}


def load_data(cfg: SegmentConfig) -> SegmentSplits:
    """The cached splits of this data config, made first when there is no complete cache."""
    out = split_cache_dir(cfg.name, cfg.data)
    if not (out / "manifest.json").exists():
        preprocess(cfg)
    return SegmentSplits(pd.read_parquet(out / "train.parquet"), pd.read_parquet(out / "test.parquet"),
                         FeatureSchema.from_dict(read_json(out / "feature_schema.json")),
                         read_json(out / "manifest.json"))
