"""The train stage of ``task: classify``: fit every candidate model on the same split, early
stopping on the validation rows, serve the best by the validation metric, then report on the test
split (and stratified k-fold CV). Two classes or more: for K > 2 the models are multinomial /
``multi:softprob`` / ``multiclass`` and ``model.select_by: roc_auc`` is the macro one-vs-rest ROC-AUC.

    python -m tabular_mining train --config configs/tabular_mining/churn.yaml [model.name=xgboost]
    python -m tabular_mining train --config configs/tabular_mining/churn.yaml distributed=dask   # on a Dask cluster

The run directory comes from :func:`shared.runs.start_run`: a killed run is resumed by the same
command (the FT-Transformer from its checkpoints in ``models/ft_transformer/``; the trees, minutes
at most, are refitted). ``distributed: dask`` hands the whole stage to
:func:`tabular_mining.classify.dask.train_dask`. ``model.params_from`` (a tune run) is folded into
the config before the run starts (:func:`tabular_mining.classify.tune.apply_tuned`), so the run's
``config.yaml`` holds the tuned values.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

from shared import tracking
from shared.runs import read_json, write_json
from tabular_mining.classify.config import ClassifyConfig
from tabular_mining.classify.data import load_splits
from tabular_mining.classify.evaluate import held_out_report
from tabular_mining.classify.model import fit_model, metric_key, score_probabilities
from tabular_mining.common.features import encode_frame, encode_target
from tabular_mining.common.runs import pick_best, save_model
from tabular_mining.common.splits import Splits

log = logging.getLogger(__name__)


def train(cfg: ClassifyConfig, run: Path) -> dict:
    """The train stage: the candidates of ``cfg.model`` on the cached split, the best by
    ``model.select_by`` on the validation rows served; returns the test and CV metrics. Tracked by
    MLflow, the run is also logged as a pyfunc model of raw feature rows (``runs:/<id>/model``)."""
    tracking.log_pyfunc_at_finish(run)
    if cfg.distributed == "dask":
        return train_on_dask(cfg, run)
    splits = load_splits(cfg.name, cfg.data)
    schema = splits.schema
    X_train, y_train = encode_frame(splits.train, schema), encode_target(splits.train[schema.target], schema)
    X_valid, y_valid = encode_frame(splits.valid, schema), encode_target(splits.valid[schema.target], schema)
    write_json(run / "feature_schema.json", schema.to_dict())
    write_json(run / "data_manifest.json", splits.manifest)
    select_by = metric_key(cfg.model.select_by, schema.classes)

    valid_scores, fit_seconds = {}, {}
    for name in cfg.model.to_train():
        t0 = time.perf_counter()
        model = fit_model(name, schema, X_train, y_train, X_valid, y_valid, cfg.model, seed=cfg.data.seed,
                          checkpoints=run / "models" / name)
        fit_seconds[name] = round(time.perf_counter() - t0, 3)
        valid_scores[name] = score_probabilities(y_valid, model.predict_proba(X_valid), schema.classes,
                                                 cfg.eval.threshold)
        save_model(model, run / "models" / name)
        log.info("%-9s valid %s=%.4f (%.1fs)", name, select_by, valid_scores[name][select_by], fit_seconds[name])

    best = pick_best(valid_scores, select_by)
    write_json(run / "selection.json", {"served": best, "by": f"valid/{select_by}",
                                        "valid": valid_scores, "fit_seconds": fit_seconds})
    report = held_out_report(cfg, run, splits)
    log.info("serving %s", best)
    return {"served_model": best, **report}


def train_on_dask(cfg: ClassifyConfig, run: Path) -> dict:
    """``distributed: dask``: the models fitted on the cluster, then the same held-out report
    (cross-validation is off: it would gather every row into this process)."""
    from tabular_mining.classify.dask import train_dask  # dask and distributed load only on this path

    if cfg.eval.cv_folds:
        log.info("cross-validation is off under distributed: dask")
        cfg = cfg.model_copy(update={"eval": cfg.eval.model_copy(update={"cv_folds": 0})})
    fitted = train_dask(cfg, run)
    empty = fitted.test.iloc[:0]
    report = held_out_report(cfg, run, Splits(empty, empty, fitted.test, fitted.schema, fitted.manifest))
    served = read_json(run / "selection.json")["served"]
    return {"served_model": served, "distributed": "dask", "fit_seconds": fitted.fit_seconds, **report}
