"""``distributed: dask``: classification (two classes or more) with XGBoost (``xgboost.dask``) and LightGBM
(``lightgbm.dask``) on a Dask cluster, for tables that do not fit in one process.

    python -m tabular_mining train --config configs/tabular_mining/churn.yaml distributed=dask \\
        data.path='data/big/part-*.parquet' dask.scheduler=tcp://10.0.0.5:8786   # or no scheduler: a LocalCluster

The classify ``preprocess`` and ``train`` stages come here themselves when the config says
``distributed: dask``; dask and distributed are imported only then.

The data is read as a Dask DataFrame (CSV/Parquet globs), split stratified (each class's rows by a
seeded ``random_split``), cleaned partition by partition with the same functions as single-process
preprocessing, and cached in the same layout (``train.parquet`` … are directories of parts) in a
cache of its own (keyed ``split_made_by: dask``, so single-process training never reads it). The
feature schema is the same :class:`~tabular_mining.common.features.FeatureSchema`: kinds are inferred on a
sample of training rows, categories and medians (approximate) computed over all of them. The run
directory has the same artifacts as single-process training (models in XGBoost JSON / LightGBM
text, selection, comparison, plots), so evaluate/predict/serve work unchanged.
For K > 2 classes the models are XGBoost ``multi:softprob`` and LightGBM ``multiclass`` (the
single-process objectives), the split is stratified over every class, the manifest has the rows
per class, and the model is chosen by the single-process metric (``roc_auc``: macro one-vs-rest).
Differences: LightGBM's Dask estimator has no early stopping, so it trains ``n_estimators`` rounds
and keeps the trees up to the best validation round; cross-validation is off; the test split is
gathered into one process for the evaluation plots.
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
from shared.runs import write_json
from tabular_mining.classify.config import ClassifyConfig
from tabular_mining.classify.labels import check_class_rows, refuse_label_twins
from tabular_mining.classify.model import (
    LightGBMModel,
    XGBoostModel,
    _binary_only,
    lightgbm_params,
    metric_key,
    n_classes,
    pos_weight,
    score_probabilities,
    xgboost_params,
)
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
from tabular_mining.common.features import FeatureSchema, encode_target
from tabular_mining.common.runs import pick_best, save_model
from tabular_mining.common.splits import SPLITS, feature_counts
from tabular_mining.common.table import TableData, check_columns, split_cache_dir, target_classes

log = logging.getLogger(__name__)


def preprocess_dask(cfg: ClassifyConfig) -> dict:
    """Validate, split and clean on the cluster; write the cache in the single-process layout."""
    import dask

    d = cfg.data
    ddf, source = read_dask_frame(d, cfg.dask)
    check_columns(ddf, d, source)
    if d.label_map:
        ddf[d.target] = ddf[d.target].map(lambda v: d.label_map.get(str(v), v), meta=(d.target, "object"))
    target = ddf[d.target]
    missing, counts = dask.compute(target.isna().sum(), target.astype(str).value_counts())
    if missing:
        raise UserError(f"{source}: target column {d.target!r} has {missing} missing values")
    # target_classes decides the classes from a Series; a count-preserving-order stand-in keeps it O(classes)
    scale = max(1, int(counts.sum() // 100_000))
    stand_in = pd.Series(np.repeat(counts.index.values, np.maximum(counts.values // scale, 1)))
    classes = target_classes(stand_in, d.positive_class, source, d.target)
    refuse_label_twins(classes, source, d.target)
    check_class_rows(counts, d, source, len(classes))
    parts = stratified_split(ddf, d, [str(c) for c in counts.index])
    out = split_cache_dir(cfg.name, d, "dask")
    schema = cache_dask_split(parts, d, classes, source, out)
    rows, balance = _class_balance(out, d.target, classes)
    manifest = {"source": source, "source_sha256": None, "rows": rows, **balance,
                "features": feature_counts(schema),
                "classes": classes, "config": to_dict(d), "distributed": "dask",
                "split": "stratified: random_split of each class's rows (seeded)"}
    write_json(out / "manifest.json", manifest)
    log.info("preprocessed %s on dask: %s → %s", source, manifest["rows"], out)
    return manifest


def _class_balance(out: Path, target: str, classes: list[str]) -> tuple[dict, dict]:
    """The rows of each cached split and the manifest's class balance (the keys of
    :func:`tabular_mining.classify.data.class_shares`): the positive rate for two classes, the rows
    per class for more."""
    import dask
    import dask.dataframe as dd

    labels = {s: dd.read_parquet(out / f"{s}.parquet", columns=[target])[target].astype(str) for s in SPLITS}
    if len(classes) == 2:
        rows, rates = {}, {}
        for split, y in labels.items():
            rows[split], rates[split] = dask.compute(y.size, (y == classes[1]).mean())
        return {k: int(v) for k, v in rows.items()}, {"positive_rate": {k: float(v) for k, v in rates.items()}}
    counts = dict(zip(SPLITS, dask.compute(*[y.value_counts() for y in labels.values()])))
    by_split = {k: {c: int(v.get(c, 0)) for c in classes} for k, v in counts.items()}
    return ({k: sum(v.values()) for k, v in by_split.items()},
            {"positive_rate": {k: None for k in SPLITS}, "class_rows": by_split["train"],
             "class_rows_by_split": by_split})


def stratified_split(ddf, d: TableData, classes: list[str]) -> dict:
    """Train/valid/test as Dask DataFrames: each class's rows split by ``random_split`` with the
    configured fractions (seeded), then joined, so every split has the table's class balance (up to
    the sampling noise of a per-row draw, which vanishes at the sizes Dask is for)."""
    import dask.dataframe as dd

    fractions = [1 - d.valid_size - d.test_size, d.valid_size, d.test_size]
    label = ddf[d.target].astype(str)
    per_class = [ddf[label == c].random_split(fractions, random_state=d.seed + i) for i, c in enumerate(classes)]
    return {split: dd.concat([parts[j] for parts in per_class]) for j, split in enumerate(SPLITS)}


def _encoded(frame, schema: FeatureSchema):
    """Partition-wise encoding into float32 features and the class codes as float32 labels."""
    return encoded(frame, schema, lambda part: encode_target(part[schema.target], schema).astype(np.float32),
                   np.float32)


def fit_xgboost_dask(client, schema, X, y, X_valid, y_valid, params, seed: int) -> XGBoostModel:
    _binary_only(schema, "xgboost.scale_pos_weight", params.scale_pos_weight)
    pos = pos_weight(params.scale_pos_weight, lambda: client.compute([y.sum(), y.size], sync=True))
    booster = train_xgboost_dask(client, schema, xgboost_params(params, pos, seed, n_classes(schema)),
                                 X, y, X_valid, y_valid, params)
    return XGBoostModel(booster, schema, {"trees": booster.num_boosted_rounds(), "distributed": "dask"})


def fit_lightgbm_dask(client, schema, X, y, X_valid, y_valid, params, seed: int) -> LightGBMModel:
    _binary_only(schema, "lightgbm.is_unbalance", params.is_unbalance)
    classes = n_classes(schema)
    # the booster is trained through the regressor's estimator with the classification objective, which
    # passes the labels (already class codes 0..K-1) as they are: DaskLGBMClassifier label-encodes each
    # worker's rows apart, so a worker whose partitions lack a class (the split's partitions hold one
    # class each) renumbers the others, and learns positives as negatives for two classes. The trees start
    # from 0, not from the class shares: LightGBM averages each worker's own start score, and a worker
    # without a class's rows starts it at log(1e-15), which hundreds of trees barely climb back from
    settings = {**lightgbm_params(params, seed, classes), "boost_from_average": False}
    metric = "binary_logloss" if classes == 2 else "multi_logloss"
    booster, best = train_lightgbm_dask(client, schema, settings, X, y, X_valid, y_valid, params.n_estimators, metric)
    return LightGBMModel(booster, schema, {"trees": best, "distributed": "dask"})


DASK_FITTERS = {"xgboost": fit_xgboost_dask, "lightgbm": fit_lightgbm_dask}


@dataclass
class DaskFit:
    """What :func:`train_dask` leaves for the held-out report: the test split (gathered into this
    process), the schema, the data manifest and the fit times."""

    test: pd.DataFrame
    schema: FeatureSchema
    manifest: dict
    fit_seconds: dict[str, float]


def train_dask(cfg: ClassifyConfig, run: Path) -> DaskFit:
    """Fit the models on a Dask cluster into ``run`` (models, schema, ``selection.json``: the
    layout of :func:`tabular_mining.classify.train.train`, which calls this and then reports)."""
    names = dask_models(cfg.model.to_train(), cfg.model.name, DASK_FITTERS)
    with dask_client(cfg.dask) as client:
        log.info("dask cluster: %s", client.dashboard_link or client.scheduler.address)
        out = split_cache_dir(cfg.name, cfg.data, "dask")
        manifest, schema = cached_split(out, lambda: preprocess_dask(cfg), run)
        select_by = metric_key(cfg.model.select_by, schema.classes)
        valid_scores, fit_seconds, test = _fit_all(client, cfg, run, schema, out, names)
    best = pick_best(valid_scores, select_by)
    write_json(run / "selection.json", {"served": best, "by": f"valid/{select_by}", "valid": valid_scores,
                                        "fit_seconds": fit_seconds, "distributed": "dask"})
    return DaskFit(test, schema, manifest, fit_seconds)


def _fit_all(client, cfg: ClassifyConfig, run: Path, schema: FeatureSchema, cache: Path, names: list[str]):
    """Fit each model on the cluster and save it into the run; returns the validation scores,
    the fit times and the test split (gathered into this process for the report)."""
    import dask.dataframe as dd

    frames = {s: dd.read_parquet(cache / f"{s}.parquet") for s in SPLITS}
    (X, y), (Xv, yv) = (_encoded(non_empty(frames[s]), schema) for s in ("train", "valid"))
    X, y, Xv, yv = client.persist([X, y, Xv, yv])
    valid_scores, fit_seconds = {}, {}
    y_valid = yv.compute().to_numpy()
    select_by = metric_key(cfg.model.select_by, schema.classes)
    k = n_classes(schema)  # the positive class's probability for two classes, a column per class for more
    meta = pd.Series(dtype=np.float64) if k == 2 else pd.DataFrame({j: pd.Series(dtype=np.float64) for j in range(k)})
    for name in names:
        t0 = time.perf_counter()
        model = DASK_FITTERS[name](client, schema, X, y, Xv, yv, getattr(cfg.model, name), cfg.data.seed)
        fit_seconds[name] = round(time.perf_counter() - t0, 3)
        p = Xv.map_partitions(_probabilities, model, meta=meta).compute().to_numpy()
        valid_scores[name] = score_probabilities(y_valid, p, schema.classes, cfg.eval.threshold)
        save_model(model, run / "models" / name)
        log.info("%-9s (dask) valid %s=%.4f (%.1fs)", name, select_by, valid_scores[name][select_by], fit_seconds[name])
    return valid_scores, fit_seconds, frames["test"].compute().reset_index(drop=True)



def _probabilities(part: pd.DataFrame, model):
    """One partition's predicted probabilities: a Series for two classes, ``(rows, K)`` for more."""
    p = model.predict_proba(part.to_numpy())
    return pd.Series(p, index=part.index) if p.ndim == 1 else pd.DataFrame(p.astype(np.float64), index=part.index)
