"""The ``tune`` extra: Optuna over each model's knobs, scored on held-out training interactions.

    python -m recsys_app tune  --config configs/recsys_app/movielens.yaml "tune.models=[itemknn,ease,als]"
    python -m recsys_app train --config configs/recsys_app/movielens.yaml model.name=als \\
        model.params_from=runs/recsys_app/movielens-tune/latest

For each model of ``tune.models``, TPE proposes values from its search space (``SPACES``: EASE's
λ; ItemKNN's k and shrinkage; ALS's factors, regularisation and α; SASRec's size, dropout and
learning rate), the model is fitted on a tuning split and scored by NDCG@10 (full ranking, seen
items excluded, ranked as ``evaluate`` ranks) on the test's own task at more points: each user's
last ``tune.holdout`` interactions before the test item are held out of training
(:func:`tuning_split`), and each is predicted from everything before it (:func:`next_item_cases`);
the test split is never looked at. Trial 0 is the recipe's own values, the baseline to beat.

The search sees half of the users (a seeded split); the other half only confirms: the best trial's
values replace the recipe's when their per-user NDCG@10 gain there is more than
``tune.min_gain_se`` standard errors, else the recipe's values are kept (and the tune run says
so). The best of many noisy trials looks better than it is (on MovieLens, ItemKNN's best,
k 9 / shrink 95, won the search by 0.0047 ± 0.0026 and lost on test by 0.0077 ± 0.0053), and
the half it was not chosen on measures it without that bias. Budget per model:
``tune.n_trials`` and ``tune.timeout_s``. The
tune run (``runs/recsys_app/<name>-tune/<id>``) holds ``best_params.json``, ``trials.csv`` and
``tune_history.png``; ``model.params_from`` points ``train`` (and ``compare``) at it, and
:func:`apply_tuned` folds the kept values into the config before a train run starts, so its
``config.yaml`` records them. Optuna is imported by this stage only.
"""
from __future__ import annotations

import dataclasses
import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from recsys_app.recommend.base import Recommender
from recsys_app.recommend.config import RecsysConfig
from recsys_app.recommend.data import load_or_preprocess
from recsys_app.recommend.dataset import SPLITS, Interactions
from recsys_app.recommend.model import build_model
from recsys_app.recommend.ranking import exclude, target_ranks
from shared import plots
from shared.errors import UserError
from shared.runs import read_json, resolve_run, write_json, write_text

if TYPE_CHECKING:
    import optuna

log = logging.getLogger(__name__)
METRIC = "ndcg@10"


def _itemknn(t: optuna.Trial) -> dict:
    return {"k": t.suggest_int("k", 5, 1000, log=True), "shrink": t.suggest_float("shrink", 0.0, 200.0)}


def _ease(t: optuna.Trial) -> dict:
    return {"l2": t.suggest_float("l2", 1.0, 10_000.0, log=True)}


def _als(t: optuna.Trial) -> dict:
    return {"factors": t.suggest_int("factors", 8, 256, log=True),
            "regularization": t.suggest_float("regularization", 1e-3, 10.0, log=True),
            "alpha": t.suggest_float("alpha", 0.5, 50.0, log=True)}


def _sasrec(t: optuna.Trial) -> dict:
    return {"dim": t.suggest_categorical("dim", [32, 64, 128]), "layers": t.suggest_int("layers", 1, 3),
            "dropout": t.suggest_float("dropout", 0.0, 0.5), "lr": t.suggest_float("lr", 1e-4, 1e-2, log=True)}


SPACES: dict[str, Callable[[optuna.Trial], dict]] = {"itemknn": _itemknn, "ease": _ease, "als": _als,
                                                     "sasrec": _sasrec}
# the names Optuna sees, per model: "k" is model.itemknn.k, "lr" is train.lr …
RECIPE_KEYS = {"itemknn": {"k": "model.itemknn.k", "shrink": "model.itemknn.shrink"}, "ease": {"l2": "model.ease.l2"},
               "als": {"factors": "model.als.factors", "regularization": "model.als.regularization",
                       "alpha": "model.als.alpha"},
               "sasrec": {"dim": "model.sasrec.dim", "layers": "model.sasrec.layers",
                          "dropout": "model.sasrec.dropout", "lr": "train.lr"}}


def with_params(cfg: RecsysConfig, params: dict) -> RecsysConfig:
    """``cfg`` with tuned values set (flat names, the keys of :data:`RECIPE_KEYS`: ``{"k": 50}``)."""
    data = cfg.model_dump()
    keys = {short: path.split(".") for paths in RECIPE_KEYS.values() for short, path in paths.items()}
    for name, value in params.items():
        node = data
        for part in keys[name][:-1]:
            node = node[part]
        node[keys[name][-1]] = value
    return RecsysConfig.model_validate(data)


def tuning_split(ds: Interactions, holdout: int) -> Interactions:
    """The data set tuning scores on: the test split dropped, and each user's last ``holdout``
    interactions before it are the targets (``valid``; users with too few stay whole in
    ``train``). One held-out item per user is too noisy to choose between settings (one standard
    error of NDCG@10 is ~0.006 for 671 users): tuned values then win on validation and lose on test."""
    frame = ds.frame[ds.frame["split"] != "test"]
    from_end = frame.groupby("user", sort=False).cumcount(ascending=False).to_numpy()
    size = frame.groupby("user", sort=False)["item"].transform("size").to_numpy()
    split = np.where((from_end < holdout) & (size > holdout + 1), "valid", "train")
    frame = frame.assign(split=pd.Categorical(split, categories=SPLITS))
    return dataclasses.replace(ds, frame=frame.reset_index(drop=True))


def next_item_cases(ds: Interactions) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The test's task at each held-out position of a tuning split: history = everything before
    it (earlier held-out items folded in, not trained on), target = that one item."""
    histories, targets = [], []
    for train, held in zip(ds.sequences(("train",)), ds.sequences(("valid",))):
        for j, item in enumerate(held):
            histories.append(np.concatenate([train, held[:j]]))
            targets.append(np.array([item]))
    return histories, targets


def _recipe_values(cfg: RecsysConfig, model: str) -> dict:
    out = {}
    for short, path in RECIPE_KEYS[model].items():
        node = cfg
        for part in path.split("."):
            node = getattr(node, part)
        out[short] = node
    return out


def case_ndcg(model: Recommender, histories: list[np.ndarray], targets: list[np.ndarray],
              batch_size: int = 256, k: int = 10) -> np.ndarray:
    """NDCG@k of each one-target case, ranked as :func:`~recsys_app.recommend.evaluate.evaluate_cases`
    ranks (their mean is its ``ndcg@k``)."""
    out = []
    for start in range(0, len(histories), batch_size):
        hist = histories[start:start + batch_size]
        ranks = np.concatenate(target_ranks(exclude(model.score(hist), hist), targets[start:start + batch_size]))
        out.append(np.where(ranks < k, 1.0 / np.log2(ranks + 2.0), 0.0))
    return np.concatenate(out) if out else np.zeros(0)


def confirmation_users(n_users: int, seed: int) -> np.ndarray:
    """A seeded half of the users (True), kept out of the search to confirm its pick."""
    return np.random.default_rng(seed).permutation(n_users) % 2 == 1


def confirm(best: np.ndarray, recipe: np.ndarray, users: np.ndarray) -> tuple[float, float]:
    """Mean and standard error of the per-user NDCG gain of ``best`` over ``recipe`` on ``users``."""
    gain = best[users] - recipe[users]
    return float(gain.mean()), float(gain.std(ddof=1) / np.sqrt(len(gain))) if len(gain) > 1 else float("inf")


def _study(cfg: RecsysConfig, ds: Interactions, model: str, cases, run: Path) -> tuple:
    """TPE for ``model`` on the search half; returns the study and each trial's per-user NDCG@10."""
    import optuna

    histories, targets, case_user, search = cases
    per_user: dict[int, np.ndarray] = {}
    counts = np.bincount(case_user, minlength=ds.n_users)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=cfg.tune.seed))
    study.enqueue_trial(_recipe_values(cfg, model))  # trial 0: the recipe's values

    def objective(trial: optuna.Trial) -> float:
        trial_cfg = with_params(cfg, SPACES[model](trial))
        out = run / "trials" / f"{model}-{trial.number}"
        t0 = time.perf_counter()
        fitted = build_model(trial_cfg, ds.n_items, model)
        fitted.fit(ds, out)
        ndcg = case_ndcg(fitted, histories, targets, trial_cfg.eval.batch_size)
        shutil.rmtree(out, ignore_errors=True)  # SASRec's checkpoints: the best values are enough
        per_user[trial.number] = np.bincount(case_user, weights=ndcg, minlength=ds.n_users) / np.maximum(counts, 1)
        value = float(ndcg[search[case_user]].mean())
        log.info("%s trial %d: search-half %s=%.4f in %.1fs %s", model, trial.number, METRIC, value,
                 time.perf_counter() - t0, trial.params)
        return value

    study.optimize(objective, n_trials=cfg.tune.n_trials, timeout=cfg.tune.timeout_s)
    return study, per_user


def tune(cfg: RecsysConfig, run: Path) -> dict:
    """The ``tune`` stage: for each of ``tune.models``, TPE trials scored by NDCG@10 on the tuning
    split's search half; the best values are kept only if the confirmation half agrees (see the
    module doc). Writes ``best_params.json``, ``trials.csv`` and ``tune_history.png`` into ``run``."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    ds = tuning_split(load_or_preprocess(cfg), cfg.tune.holdout)
    histories, targets = next_item_cases(ds)
    case_user = np.repeat(np.arange(ds.n_users), [len(h) for h in ds.sequences(("valid",))])
    held_out = confirmation_users(ds.n_users, cfg.tune.seed)
    confirm_users = held_out & (np.bincount(case_user, minlength=ds.n_users) > 0)
    best, frames, result, card = {}, [], {}, []
    for model in cfg.tune.models:
        study, per_user = _study(cfg, ds, model, (histories, targets, case_user, ~held_out), run)
        done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        if not done:
            raise UserError(f"no {model} trial completed: raise tune.n_trials or tune.timeout_s")
        top, recipe = study.best_trial, (done[0] if done[0].number == 0 else None)
        gain, se = (confirm(per_user[top.number], per_user[recipe.number], confirm_users) if recipe is not None
                    else (float("nan"), float("nan")))
        adopted = recipe is None or top.number == recipe.number or gain > max(cfg.tune.min_gain_se * se, 0.0)
        chosen = top if adopted else recipe
        best[model] = {"params": chosen.params, "value": chosen.value, "adopted": adopted,
                       "recipe_value": recipe.value if recipe is not None else float("nan"),
                       "search_best": {"params": top.params, "value": top.value},
                       "confirmation": {"gain": gain, "standard_error": se, "users": int(confirm_users.sum())},
                       "trials": len(done)}
        frames.append(study.trials_dataframe(attrs=("number", "value", "duration", "params")).assign(model=model))
        result |= {f"tune/{model}/best_{METRIC}": top.value, f"tune/{model}/recipe_{METRIC}": best[model]["recipe_value"],
                   f"tune/{model}/confirmation_gain": gain, f"tune/{model}/adopted": float(adopted)}
        log.info("%s: search best %s (%.4f); on the confirmation half %+.4f ± %.4f over the recipe: %s", model,
                 top.params, top.value, gain, se, "adopted" if adopted else "the recipe's values kept")
        card.append(f"| {model} | {len(done)} | {best[model]['recipe_value']:.4f} | {top.value:.4f} {top.params} | "
                    f"{gain:+.4f} ± {se:.4f} | {'adopted' if adopted else 'recipe kept'} |")
    write_json(run / "best_params.json", {"metric": f"{METRIC} on the last {cfg.tune.holdout} interactions before "
                                                     "test", "models": best})
    write_text(run / "trials.csv", pd.concat(frames, ignore_index=True).to_csv(index=False))
    _plot(frames, run / "tune_history.png")
    table = ("| model | trials | recipe (search half) | best (search half) | gain on the confirmation half | "
             "result |\n|---|---|---|---|---|---|\n" + "\n".join(card))
    return {"best_params": {m: b["params"] for m, b in best.items()}, **result,
            "card": (f"\n## Tuning\nOptuna TPE per model, scored by next-item NDCG@10 at each user's last "
                     f"{cfg.tune.holdout} interactions before the test item (test unseen), on half of the users; "
                     f"the other half confirms (gain > {cfg.tune.min_gain_se:g} standard errors).\n\n{table}\n\n"
                     f"Train with them: `model.params_from={run}`.\n")}


def _plot(frames: list[pd.DataFrame], path: Path) -> None:
    series = {}
    for frame in frames:
        values = frame["value"].to_numpy(dtype=float)
        series[f"{frame['model'].iloc[0]} best so far"] = np.fmax.accumulate(np.nan_to_num(values, nan=-np.inf)).tolist()
    plots.curves(series, path, xlabel="trial", ylabel=f"tuning {METRIC}", title="Optuna TPE per model")


def apply_tuned(cfg: RecsysConfig) -> RecsysConfig:
    """``cfg`` with ``model.params_from``'s best values for every model tuned there, and
    ``params_from`` resolved to the tune run's directory (what the run's config.yaml records)."""
    if not cfg.model.params_from:
        return cfg
    path = resolve_run(cfg.model.params_from)
    if not (path / "best_params.json").exists():
        raise UserError(f"model.params_from={cfg.model.params_from}: no best_params.json there (run `tune` first)")
    tuned = read_json(path / "best_params.json")["models"]
    for model, best in tuned.items():
        log.info("using %s values tuned in %s: %s", model, path, best["params"])
        cfg = with_params(cfg, best["params"])
    return cfg.model_copy(update={"model": cfg.model.model_copy(update={"params_from": str(path)})})
