"""The split cache of the supervised table tasks (classify, regress): the train/valid/test rows,
cleaned against a schema inferred on the training rows, as Parquet files beside
``feature_schema.json`` and ``manifest.json`` in ``data/cache/tabular_mining/<name>-<hash>/``
(see :func:`tabular_mining.common.table.split_cache_dir`).

The task reads, checks and splits its table (stratified by class, or at random); this module
writes and reads the cache. ``manifest.json`` is written last: its presence marks a complete cache.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from shared.config import to_dict
from shared.runs import atomic_path, file_sha256, read_json, write_json
from tabular_mining.common.features import NUMERIC, FeatureSchema, clean, infer_schema
from tabular_mining.common.table import TableData, describe_missing

log = logging.getLogger(__name__)
SPLITS = ("train", "valid", "test")


@dataclass
class Splits:
    train: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame
    schema: FeatureSchema
    manifest: dict

    def all_rows(self) -> pd.DataFrame:
        return pd.concat([self.train, self.valid, self.test], ignore_index=True)


def feature_counts(schema: FeatureSchema) -> dict[str, int]:
    """The manifest's ``features``: how many are numeric and how many categorical."""
    numeric = sum(f.kind == NUMERIC for f in schema.features)
    return {"numeric": numeric, "categorical": len(schema.features) - numeric}


def cache_splits(out: Path, cfg: TableData, source: str, df: pd.DataFrame,
                 split: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame], classes: list[str], how: str,
                 describe_target: Callable[[dict[str, pd.DataFrame]], dict], extra: dict | None = None) -> Splits:
    """Infer the schema on the training rows of ``split`` (of the table ``df``), clean the three
    parts and write them to ``out``. The manifest says the source, the rows, ``describe_target``'s
    keys for the cleaned parts (class balance, target summary), the missing cells, ``how`` the rows
    were split, the feature counts, ``extra``, the data config and the files' hashes."""
    schema = infer_schema(split[0], cfg.target, classes, cfg.id_columns, cfg.drop_columns, cfg.categorical,
                          cfg.numeric, source)
    missing = describe_missing(df, cfg, source, [f.name for f in schema.features if f.kind == NUMERIC])
    parts = {k: clean(v, schema, source).reset_index(drop=True) for k, v in zip(SPLITS, split)}

    out.mkdir(parents=True, exist_ok=True)
    for name, frame in parts.items():
        with atomic_path(out / f"{name}.parquet") as tmp:
            frame.to_parquet(tmp, index=False)
    write_json(out / "feature_schema.json", schema.to_dict())
    manifest = {
        "source": source,
        "source_sha256": file_sha256(cfg.path) if cfg.path else None,
        "rows": {k: len(v) for k, v in parts.items()},
        **describe_target(parts),
        "missing_cells": missing,
        "split": how,
        "features": feature_counts(schema),
        **(extra or {}),
        "config": to_dict(cfg),
        "files": {k: file_sha256(out / f"{k}.parquet") for k in SPLITS},
    }
    write_json(out / "manifest.json", manifest)  # written last: its presence marks a complete cache
    log.info("preprocessed %s: %s rows → %s", source, len(df), out)
    return Splits(**parts, schema=schema, manifest=manifest)


def read_cached_splits(out: Path) -> Splits | None:
    """The splits cached in ``out``; None when the cache is missing or incomplete."""
    if not (out / "manifest.json").exists():
        return None
    parts = {k: pd.read_parquet(out / f"{k}.parquet") for k in SPLITS}
    return Splits(**parts, schema=FeatureSchema.from_dict(read_json(out / "feature_schema.json")),
                  manifest=read_json(out / "manifest.json"))
