"""The train stage for ``task: classify``: fit every candidate model on the same split, early
stopping on the validation rows, keep the best by the validation metric, then evaluate.

    python -m tabular_mining train --config configs/tabular_mining/churn.yaml [model.name=xgboost]
"""
from __future__ import annotations

import logging
import time

from shared.config import to_dict
from shared.metrics import binary_classification
from shared.runs import create_run, mark_latest, write_json, write_yaml
from tabular_mining.config import ClassifyConfig
from tabular_mining.evaluate import evaluate_run
from tabular_mining.features import encode_frame, encode_target
from tabular_mining.models import fit_model, save_model
from tabular_mining.preprocess import APP, load_splits
from tabular_mining.tune import apply_tuned

log = logging.getLogger(__name__)

LOWER_IS_BETTER = {"log_loss", "brier"}


def pick_best(valid_scores: dict[str, dict[str, float]], metric: str) -> str:
    """The model with the best validation ``metric`` (ties: the first listed). Pure."""
    sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
    return max(valid_scores, key=lambda name: sign * valid_scores[name][metric])


def train(cfg: ClassifyConfig) -> dict:
    cfg = apply_tuned(cfg)  # model.params_from: a tune run's best parameters
    splits = load_splits(cfg.name, cfg.data)
    schema = splits.schema
    X_train, y_train = encode_frame(splits.train, schema), encode_target(splits.train[schema.target], schema)
    X_valid, y_valid = encode_frame(splits.valid, schema), encode_target(splits.valid[schema.target], schema)

    run = create_run(APP, cfg.name)
    write_yaml(run / "config.yaml", to_dict(cfg))
    write_json(run / "feature_schema.json", schema.to_dict())
    write_json(run / "data_manifest.json", splits.manifest)

    valid_scores, fit_seconds = {}, {}
    for name in cfg.model.to_train():
        t0 = time.perf_counter()
        model = fit_model(name, schema, X_train, y_train, X_valid, y_valid, cfg.model, seed=cfg.data.seed)
        fit_seconds[name] = round(time.perf_counter() - t0, 3)
        valid_scores[name] = binary_classification(y_valid, model.predict_proba(X_valid), cfg.eval.threshold)
        save_model(model, run / "models" / name)
        log.info("%-9s valid %s=%.4f (%.1fs)", name, cfg.model.select_by, valid_scores[name][cfg.model.select_by],
                 fit_seconds[name])

    best = pick_best(valid_scores, cfg.model.select_by)
    write_json(run / "selection.json", {"served": best, "by": f"valid/{cfg.model.select_by}",
                                        "valid": valid_scores, "fit_seconds": fit_seconds})
    summary = evaluate_run(run, splits=splits)
    mark_latest(run)
    log.info("run written to %s (serving %s)", run, best)
    return {"run": str(run), "served_model": best, **summary}
