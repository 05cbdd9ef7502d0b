"""The ``tune`` stage of ``task: classify``: hyperparameter search for one model with Optuna.

    python -m tabular_mining tune  --config configs/tabular_mining/churn.yaml tune.model=lightgbm tune.n_trials=40
    python -m tabular_mining train --config configs/tabular_mining/churn.yaml model.name=lightgbm \\
        model.params_from=runs/tabular_mining/churn-tune/latest

TPE proposes parameters from the model's search space (``SPACES``); each trial is scored by
stratified k-fold CV over the *training* rows only (each fold early-stops on a slice of its own
training part), so the validation and test splits stay unseen. After each fold the running mean is
reported and the median pruner stops trials that trail the others. The budget is
``tune.n_trials`` (and ``tune.timeout_s``). For K > 2 classes ``tune.metric: roc_auc`` is the macro
one-vs-rest ROC-AUC (``log_loss`` works too; ``pr_auc`` is for two classes and refused). A tune run (``runs/tabular_mining/<name>-tune/<id>``,
begun and finished by the CLI like a train run) holds ``best_params.json``, ``trials.csv``,
``tune_history.png`` and ``metrics.json``; ``model.params_from`` points ``train`` at it, and
:func:`apply_tuned` folds the best parameters into the config before the train run starts, so its
``config.yaml`` records the tuned values. Optuna is imported only by this stage.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from pydantic import BaseModel
from sklearn.model_selection import StratifiedKFold, train_test_split

from shared import plots
from shared.config import validate
from shared.errors import UserError
from shared.runs import read_json, resolve_run, write_json, write_text
from tabular_mining.classify.config import ClassifyConfig
from tabular_mining.classify.data import load_splits
from tabular_mining.classify.model import metric_key, model_class, score_probabilities
from tabular_mining.common.features import encode_frame, encode_target

if TYPE_CHECKING:
    import optuna

log = logging.getLogger(__name__)


def _xgboost(t: optuna.Trial) -> dict:
    return {"learning_rate": t.suggest_float("learning_rate", 0.01, 0.3, log=True),
            "max_depth": t.suggest_int("max_depth", 2, 8),
            "min_child_weight": t.suggest_float("min_child_weight", 1.0, 30.0, log=True),
            "subsample": t.suggest_float("subsample", 0.5, 1.0),
            "colsample_bytree": t.suggest_float("colsample_bytree", 0.4, 1.0),
            "reg_lambda": t.suggest_float("reg_lambda", 1e-3, 30.0, log=True)}


def _lightgbm(t: optuna.Trial) -> dict:
    return {"learning_rate": t.suggest_float("learning_rate", 0.01, 0.3, log=True),
            "num_leaves": t.suggest_int("num_leaves", 4, 64, log=True),
            "min_child_samples": t.suggest_int("min_child_samples", 5, 150, log=True),
            "subsample": t.suggest_float("subsample", 0.5, 1.0),
            "colsample_bytree": t.suggest_float("colsample_bytree", 0.4, 1.0),
            "reg_lambda": t.suggest_float("reg_lambda", 1e-3, 30.0, log=True),
            "cat_smooth": t.suggest_float("cat_smooth", 1.0, 50.0, log=True)}


def _logistic(t: optuna.Trial) -> dict:
    return {"C": t.suggest_float("C", 1e-3, 100.0, log=True),
            "class_weight": t.suggest_categorical("class_weight", [None, "balanced"])}


def _ft_transformer(t: optuna.Trial) -> dict:
    return {"d_token": t.suggest_categorical("d_token", [32, 64, 128]),
            "n_blocks": t.suggest_int("n_blocks", 1, 4),
            "attention_dropout": t.suggest_float("attention_dropout", 0.0, 0.5),
            "ffn_dropout": t.suggest_float("ffn_dropout", 0.0, 0.5),
            "train.lr": t.suggest_float("train.lr", 1e-4, 3e-3, log=True),
            "train.weight_decay": t.suggest_float("train.weight_decay", 1e-6, 1e-3, log=True)}


SPACES: dict[str, Callable[[optuna.Trial], dict]] = {
    "xgboost": _xgboost, "lightgbm": _lightgbm, "logistic": _logistic, "ft_transformer": _ft_transformer,
}


def with_params(base: BaseModel, updates: dict) -> BaseModel:
    """``base`` (a model's parameter section) with ``updates`` applied; ``a.b`` keys reach nested
    sections. Validated, so a bad value fails here with the key's name."""
    data = base.model_dump()
    for key, value in updates.items():
        node = data
        *parents, leaf = key.split(".")
        for p in parents:
            node = node[p]
        node[leaf] = value
    return validate(type(base), data, source="tuned parameters")


def cv_score(cfg: ClassifyConfig, rows, schema, params: BaseModel, trial: optuna.Trial | None = None) -> float:
    """Mean ``cfg.tune.metric`` over stratified folds of ``rows``; reports each fold to ``trial``."""
    import optuna

    t, target = cfg.tune, cfg.data.target
    key = metric_key(t.metric, schema.classes, "tune.metric")
    y_all = encode_target(rows[target], schema)
    folds = StratifiedKFold(t.cv_folds, shuffle=True, random_state=t.seed)
    scores = []
    for k, (fit_idx, held_idx) in enumerate(folds.split(rows, y_all)):
        fit_rows = rows.iloc[fit_idx]
        tr, es = train_test_split(fit_rows, test_size=0.15, stratify=y_all[fit_idx], random_state=t.seed)
        enc = [(encode_frame(f, schema), encode_target(f[target], schema)) for f in (tr, es, rows.iloc[held_idx])]
        model = model_class(t.model).fit(schema, *enc[0], *enc[1], params, seed=t.seed)
        scores.append(score_probabilities(enc[2][1], model.predict_proba(enc[2][0]), schema.classes)[key])
        if trial is not None:
            trial.report(float(np.mean(scores)), k)
            if t.prune and trial.should_prune():
                raise optuna.TrialPruned()
    return float(np.mean(scores))


def tune(cfg: ClassifyConfig, run: Path) -> dict:
    """The tune stage: ``tune.n_trials`` TPE trials for ``tune.model`` on inner CV of the training
    rows; writes the best parameters, the trials and their history plot into ``run``."""
    import optuna

    t = cfg.tune
    splits = load_splits(cfg.name, cfg.data)
    rows = splits.train.reset_index(drop=True)  # only the training split: valid/test stay unseen
    metric_key(t.metric, splits.schema.classes, "tune.metric")  # refused before any trial runs
    base = getattr(cfg.model, t.model)
    direction = "minimize" if t.metric == "log_loss" else "maximize"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction=direction, sampler=optuna.samplers.TPESampler(seed=t.seed),
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0))
    study.enqueue_trial(_flat(base))  # trial 0: the config's own values, the baseline to beat

    def objective(trial: optuna.Trial) -> float:
        score = cv_score(cfg, rows, splits.schema, with_params(base, SPACES[t.model](trial)), trial)
        log.info("trial %d: %s=%.4f %s", trial.number, t.metric, score, trial.params)
        return score

    study.optimize(objective, n_trials=t.n_trials, timeout=t.timeout_s, catch=())
    done = [tr for tr in study.trials if tr.state == optuna.trial.TrialState.COMPLETE]
    if not done:
        raise UserError("no tuning trial completed: raise tune.n_trials or tune.timeout_s")
    best = study.best_trial
    write_json(run / "best_params.json", {"model": t.model, "params": best.params, "metric": t.metric,
                                           "cv_folds": t.cv_folds, "value": best.value, "trial": best.number})
    trials = study.trials_dataframe(attrs=("number", "state", "value", "duration", "params"))
    write_text(run / "trials.csv", trials.to_csv(index=False))
    values = [tr.value if tr.value is not None else np.nan for tr in study.trials]
    best_so_far = (np.fmin if direction == "minimize" else np.fmax).accumulate(np.array(values, float))
    plots.curves({f"trial {t.metric}": values, "best so far": best_so_far.tolist()}, run / "tune_history.png",
                 xlabel="trial", ylabel=f"inner-CV {t.metric}", title=f"Optuna TPE: {t.model}")
    pruned = sum(tr.state == optuna.trial.TrialState.PRUNED for tr in study.trials)
    log.info("best %s %.4f (trial %d of %d, %d pruned) → %s", t.metric, best.value, best.number,
             len(study.trials), pruned, run)
    card = (f"\n## Tuning\nOptuna TPE over {t.model}'s parameters, {len(study.trials)} trials ({pruned} pruned), "
            f"each scored by {t.cv_folds}-fold CV on the training rows. Best {t.metric} {best.value:.4f} "
            f"(the recipe's own values: {values[0]:.4f}); `best_params.json`. Train with it: "
            f"`model.name={t.model} model.params_from={run}`.\n")
    return {"model": t.model, "best_params": best.params, f"tune/best_{t.metric}": best.value,
            "tune/trials_complete": len(done), "tune/trials_pruned": pruned, f"tune/default_{t.metric}": values[0],
            "card": card}


def apply_tuned(cfg: ClassifyConfig) -> ClassifyConfig:
    """``cfg`` with ``model.params_from``'s best parameters applied to the model they were tuned
    for, and ``params_from`` resolved to the tune run's directory (what the train run records)."""
    if not cfg.model.params_from:
        return cfg
    path = resolve_run(cfg.model.params_from)
    if not (path / "best_params.json").exists():
        raise UserError(f"model.params_from={cfg.model.params_from}: no best_params.json there (run `tune` first)")
    tuned = read_json(path / "best_params.json")
    section = with_params(getattr(cfg.model, tuned["model"]), tuned["params"])
    log.info("using %s parameters tuned in %s: %s", tuned["model"], path, tuned["params"])
    return cfg.model_copy(update={"model": cfg.model.model_copy(update={tuned["model"]: section,
                                                                          "params_from": str(path)})})


def _flat(params: BaseModel) -> dict:
    out = {}
    for k, v in params.model_dump().items():
        if isinstance(v, dict):
            out.update({f"{k}.{kk}": vv for kk, vv in v.items()})
        else:
            out[k] = v
    return out

