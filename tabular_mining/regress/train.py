"""The train stage of ``task: regress``: fit every candidate model (ridge, XGBoost, LightGBM) on
the same split, the trees early-stopping on the validation rows, serve the best by the validation
metric (``model.select_by``, RMSE by default), then report on the test split.

    python -m tabular_mining train --config configs/tabular_mining/house_prices.yaml [model.name=lightgbm]
    python -m tabular_mining train --config configs/tabular_mining/house_prices-quick.yaml model.log_target=false
    python -m tabular_mining train --config configs/tabular_mining/house_prices.yaml distributed=dask   # on a Dask cluster

The run directory comes from :func:`shared.runs.start_run`; a killed run is resumed by the same
command and simply fits again (seconds to minutes). A run holds ``models/<name>/`` for every
candidate, ``selection.json`` (the served model and every model's validation metrics),
``feature_schema.json``, ``comparison.md``, ``predicted_vs_actual.png``, ``residuals.png`` and
``metrics.json``.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

from shared.metrics import regression
from shared.runs import read_json, write_json
from tabular_mining.common.features import encode_frame
from tabular_mining.common.runs import pick_best
from tabular_mining.common.splits import Splits
from tabular_mining.regress.config import RegressConfig
from tabular_mining.regress.data import load_splits
from tabular_mining.regress.evaluate import held_out_report
from tabular_mining.regress.model import fit_model, save_model

log = logging.getLogger(__name__)


def train(cfg: RegressConfig, run: Path) -> dict:
    """The train stage: the candidates of ``cfg.model`` on the cached split, the best by
    ``model.select_by`` on the validation rows served; returns the test metrics. ``distributed:
    dask`` fits the trees on a Dask cluster (:func:`tabular_mining.regress.dask.train_dask`)."""
    if cfg.distributed == "dask":
        return train_on_dask(cfg, run)
    splits = load_splits(cfg.name, cfg.data)
    schema = splits.schema
    X_train, y_train = encode_frame(splits.train, schema), splits.train[schema.target].to_numpy(dtype=float)
    X_valid, y_valid = encode_frame(splits.valid, schema), splits.valid[schema.target].to_numpy(dtype=float)
    write_json(run / "feature_schema.json", schema.to_dict())
    write_json(run / "data_manifest.json", splits.manifest)

    valid_scores, fit_seconds = {}, {}
    for name in cfg.model.to_train():
        t0 = time.perf_counter()
        model = fit_model(name, schema, X_train, y_train, X_valid, y_valid, cfg.model, seed=cfg.data.seed)
        fit_seconds[name] = round(time.perf_counter() - t0, 3)
        valid_scores[name] = regression(y_valid, model.predict(X_valid))
        save_model(model, run / "models" / name)
        log.info("%-8s valid %s=%.6g (%.1fs)", name, cfg.model.select_by, valid_scores[name][cfg.model.select_by],
                 fit_seconds[name])

    best = pick_best(valid_scores, cfg.model.select_by)
    write_json(run / "selection.json", {"served": best, "by": f"valid/{cfg.model.select_by}",
                                        "log_target": cfg.model.log_target, "valid": valid_scores,
                                        "fit_seconds": fit_seconds})
    report = held_out_report(cfg, run, splits)
    log.info("serving %s", best)
    return {"served_model": best, **report}


def train_on_dask(cfg: RegressConfig, run: Path) -> dict:
    """``distributed: dask``: the models fitted on the cluster, then the same held-out report."""
    from tabular_mining.regress.dask import train_dask  # dask and distributed load only on this path

    fitted = train_dask(cfg, run)
    empty = fitted.test.iloc[:0]
    report = held_out_report(cfg, run, Splits(empty, empty, fitted.test, fitted.schema, fitted.manifest))
    served = read_json(run / "selection.json")["served"]
    return {"served_model": served, "distributed": "dask", **report}
