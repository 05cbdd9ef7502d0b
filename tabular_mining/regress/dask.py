"""``distributed: dask`` for ``task: regress``: XGBoost (``xgboost.dask``, squared error) and LightGBM
(``lightgbm.dask.DaskLGBMRegressor``, L2) on a Dask cluster, for tables that do not fit in one process.

    python -m tabular_mining train --config configs/tabular_mining/house_prices.yaml distributed=dask \\
        data.path='data/big/part-*.parquet' data.target=price   # no dask.scheduler: a LocalCluster

The regress ``preprocess`` and ``train`` stages come here themselves under ``distributed: dask``.
The table is read as classify's Dask path reads it (:mod:`tabular_mining.common.dask`), the target
checked to be numeric partition by partition, split at random (a seeded ``random_split``: the
single-process split is random too), cleaned with the single-process functions and cached in the
single-process layout in a cache of its own. ``model.log_target`` fits on ``log1p`` as in one
process. The run has the single-process artifacts, so evaluate/predict/serve work unchanged.
Differences: ridge is not trained here; LightGBM trains ``n_estimators`` rounds and keeps the trees
up to the best validation round; the test split is gathered into one process for the report.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from shared.config import to_dict
from shared.errors import UserError
from shared.metrics import regression
from shared.runs import write_json
from tabular_mining.common.dask import (
    cache_dask_split,
    cached_split,
    dask_client,
    dask_models,
    encoded,
    non_empty,
    read_dask_frame,
    train_lightgbm_dask,
    train_xgboost_dask,
)
from tabular_mining.common.features import FeatureSchema
from tabular_mining.common.runs import pick_best
from tabular_mining.common.splits import SPLITS, feature_counts
from tabular_mining.common.table import check_columns, split_cache_dir
from tabular_mining.regress.config import RegressConfig
from tabular_mining.regress.model import (
    LightGBMModel,
    LogTarget,
    XGBoostModel,
    fit_target,
    lightgbm_params,
    save_model,
    xgboost_params,
)
from tabular_mining.regress.target import numeric_target

log = logging.getLogger(__name__)
DASK_SPLIT_KIND = "dask-random"  # its cache key: classify's stratified Dask split of the same data is apart


def cache_dir(cfg: RegressConfig) -> Path:
    """Where the Dask split of this config is cached."""
    return split_cache_dir(cfg.name, cfg.data, DASK_SPLIT_KIND)


def preprocess_dask(cfg: RegressConfig) -> dict:
    """Validate, split and clean on the cluster; write the cache in the single-process layout."""
    import dask

    d = cfg.data
    ddf, source = read_dask_frame(d, cfg.dask)
    check_columns(ddf, d, source)
    ddf = ddf.assign(**{d.target: ddf[d.target].map_partitions(numeric_target, source, d.target,
                                                               meta=(d.target, "f8"))})
    fractions = [1 - d.valid_size - d.test_size, d.valid_size, d.test_size]
    parts = dict(zip(SPLITS, ddf.random_split(fractions, random_state=d.seed)))
    out = cache_dir(cfg)
    schema = cache_dask_split(parts, d, [], source, out)
    targets = {s: dask.dataframe.read_parquet(out / f"{s}.parquet", columns=[d.target])[d.target] for s in SPLITS}
    stats = dict(zip(SPLITS, dask.compute(*[[y.size, y.mean(), y.std(ddof=0), y.min(), y.max()]
                                             for y in targets.values()])))
    rows = {k: int(v[0]) for k, v in stats.items()}
    if sum(rows.values()) < 20:
        raise UserError(f"{source}: {sum(rows.values())} rows; too few to split into train, valid and test")
    manifest = {"source": source, "source_sha256": None, "rows": rows,
                "target": {k: dict(zip(("mean", "std", "min", "max"), map(float, v[1:]))) if v[0] else None
                           for k, v in stats.items()},
                "split": "random: random_split of the rows (seeded)",
                "features": feature_counts(schema),
                "config": to_dict(d), "distributed": "dask"}
    write_json(out / "manifest.json", manifest)
    log.info("preprocessed %s on dask: %s → %s", source, rows, out)
    return manifest


def _encoded(frame, schema: FeatureSchema, log_target: bool, split: str):
    """Partition-wise encoding into float32 features and the target the models fit (``log1p`` of it
    under ``model.log_target``, checked as in one process)."""
    return encoded(frame, schema,
                   lambda part: fit_target(part[schema.target].to_numpy(dtype=np.float64), log_target, split),
                   np.float64)


def fit_xgboost_dask(client, schema, X, y, X_valid, y_valid, params, seed: int) -> XGBoostModel:
    booster = train_xgboost_dask(client, schema, xgboost_params(params, seed), X, y, X_valid, y_valid, params)
    return XGBoostModel(booster, schema, {"trees": booster.num_boosted_rounds(), "distributed": "dask"})


def fit_lightgbm_dask(client, schema, X, y, X_valid, y_valid, params, seed: int) -> LightGBMModel:
    booster, best = train_lightgbm_dask(client, schema, lightgbm_params(params, seed), X, y, X_valid, y_valid,
                                        params.n_estimators, "rmse")
    return LightGBMModel(booster, schema, {"trees": best, "distributed": "dask"})


DASK_FITTERS = {"xgboost": fit_xgboost_dask, "lightgbm": fit_lightgbm_dask}


@dataclass
class DaskFit:
    """What :func:`train_dask` leaves for the held-out report: the test split (gathered into this
    process), the schema and the data manifest."""

    test: pd.DataFrame
    schema: FeatureSchema
    manifest: dict


def train_dask(cfg: RegressConfig, run: Path) -> DaskFit:
    """Fit the models on a Dask cluster into ``run`` (models, schema, ``selection.json``: the
    layout of :func:`tabular_mining.regress.train.train`, which calls this and then reports)."""
    names = dask_models(cfg.model.to_train(), cfg.model.name, DASK_FITTERS)
    with dask_client(cfg.dask) as client:
        out = cache_dir(cfg)
        manifest, schema = cached_split(out, lambda: preprocess_dask(cfg), run)
        valid_scores, fit_seconds, test = _fit_all(client, cfg, run, schema, out, names)
    best = pick_best(valid_scores, cfg.model.select_by)
    write_json(run / "selection.json", {"served": best, "by": f"valid/{cfg.model.select_by}",
                                        "log_target": cfg.model.log_target, "valid": valid_scores,
                                        "fit_seconds": fit_seconds, "distributed": "dask"})
    return DaskFit(test, schema, manifest)


def _fit_all(client, cfg: RegressConfig, run: Path, schema: FeatureSchema, cache: Path, names: list[str]):
    """Fit each model on the cluster (on ``log1p`` of the target under ``model.log_target``) and
    save it into the run; returns the validation scores, the fit times and the test split."""
    import dask
    import dask.dataframe as dd

    frames = {s: dd.read_parquet(cache / f"{s}.parquet") for s in SPLITS}
    log_target = cfg.model.log_target
    (X, y), (Xv, yv) = (_encoded(non_empty(frames[s]), schema, log_target, s) for s in ("train", "valid"))
    X, y, Xv, yv = client.persist([X, y, Xv, yv])
    low, high = dask.compute(y.min(), y.max())
    log_range = (float(low), float(high)) if log_target else None  # the fitted scale's range, as in one process
    y_valid = frames["valid"][schema.target].compute().to_numpy(dtype=np.float64)
    valid_scores, fit_seconds = {}, {}
    for name in names:
        t0 = time.perf_counter()
        model = DASK_FITTERS[name](client, schema, X, y, Xv, yv, getattr(cfg.model, name), cfg.data.seed)
        model = LogTarget(model, log_range) if log_target else model
        fit_seconds[name] = round(time.perf_counter() - t0, 3)
        p = Xv.map_partitions(lambda part, m=model: pd.Series(m.predict(part.to_numpy()), index=part.index),
                              meta=pd.Series(dtype=np.float64)).compute().to_numpy()
        valid_scores[name] = regression(y_valid, p)
        save_model(model, run / "models" / name)
        log.info("%-8s (dask) valid %s=%.6g (%.1fs)", name, cfg.model.select_by,
                 valid_scores[name][cfg.model.select_by], fit_seconds[name])
    return valid_scores, fit_seconds, frames["test"].compute().reset_index(drop=True)
