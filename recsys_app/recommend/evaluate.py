"""Offline evaluation: full-catalogue ranking with each user's history excluded, and the stage.

``evaluate --run DIR`` re-scores a run's model on the test split of its data. ``--data FILE``
scores it on new interactions instead (an interactions file in the recipe's format: each row's
item is a target for that user, whose history is everything the run knows about them; users
and items the run has never seen are skipped and counted) and writes the result to
``<run>/evaluations/<file stem>/``.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from recsys_app.recommend.base import Recommender
from recsys_app.recommend.config import RecsysConfig
from recsys_app.recommend.dataset import Interactions
from recsys_app.recommend.inference import load_for_inference
from recsys_app.recommend.ranking import coverage, exclude, ranking_metrics, target_ranks, top_k
from recsys_app.recommend.readers import read_interactions_file
from shared import plots
from shared.errors import UserError
from shared.metrics import with_split
from shared.runs import evaluation_dir, update_metrics, write_json

log = logging.getLogger(__name__)


def evaluate_cases(model: Recommender, histories: Sequence[np.ndarray], targets: Sequence[np.ndarray],
                   ks: Sequence[int], batch_size: int = 256) -> dict[str, float]:
    """Recall/NDCG/MRR@K and coverage@K of ``model`` for these histories and targets."""
    ranks: list[np.ndarray] = []
    tops: list[np.ndarray] = []
    for start in range(0, len(histories), batch_size):
        hist = histories[start:start + batch_size]
        scores = exclude(model.score(hist), hist)
        ranks.extend(target_ranks(scores, targets[start:start + batch_size]))
        tops.append(top_k(scores, max(ks)))
    metrics = ranking_metrics(ranks, ks)
    top = np.concatenate(tops) if tops else np.zeros((0, max(ks)), int)
    for k in ks:
        metrics[f"coverage@{k}"] = coverage(top[:, :k], model.n_items)
    metrics["users"] = float(len(ranks))
    return metrics


def evaluate_split(model: Recommender, ds: Interactions, split: str, cfg: RecsysConfig) -> dict[str, float]:
    """Metrics on ``split`` (valid: history = train; test: history = train + valid)."""
    _, histories, targets = ds.eval_cases(split)
    return evaluate_cases(model, histories, targets, cfg.eval.ks, cfg.eval.batch_size)


def cases_from_file(path: str | Path, ds: Interactions, cfg: RecsysConfig) -> tuple[list, list, dict]:
    """Histories (everything known) and targets (the file's rows) for the users of ``path``."""
    # by name, only the ids count (a file of future events need not have ratings or timestamps)
    data = cfg.data if cfg.data.columns else cfg.data.model_copy(update={"timestamp_col": None, "rating_col": None,
                                                                          "min_rating": None})
    rows = read_interactions_file(path, data)
    if data.min_rating is not None:
        rows = rows[rows["rating"] >= data.min_rating]
    user_index = {str(u): i for i, u in enumerate(ds.user_ids)}
    item_index = {str(i): j for j, i in enumerate(ds.item_ids)}
    rows["u"] = rows["user"].astype(str).map(user_index)
    rows["i"] = rows["item"].astype(str).map(item_index)
    known = rows.dropna(subset=["u", "i"])
    full = ds.sequences(("train", "valid", "test"))
    histories, targets, seen_targets = [], [], 0
    for u, group in known.groupby("u", sort=True):
        hist = full[int(u)]
        tgt = np.setdiff1d(group["i"].to_numpy(dtype=np.int64), hist)
        seen_targets += len(set(group["i"].astype(int))) - len(tgt)
        if len(tgt):
            histories.append(hist)
            targets.append(tgt)
    skipped = {"rows": len(rows), "unknown_user_or_item_rows": int(len(rows) - len(known)),
               "already_seen_targets": int(seen_targets)}
    if not targets:
        raise UserError(f"{path}: no row has a known user and an unseen known item to evaluate")
    return histories, targets, skipped


def evaluate(cfg: RecsysConfig, run: Path, data: Path | None) -> dict:
    """The ``evaluate`` stage: the run's model on its test split (the run's ``metrics.json`` gets the
    same ``test/`` keys training wrote), or on the interactions file ``data`` (written to
    ``<run>/evaluations/<file stem>/metrics.json`` with ``data/`` keys, and ``metrics_at_k.png``)."""
    ds, model = load_for_inference(cfg, run)
    if data is None:
        metrics = with_split("test", evaluate_split(model, ds, "test", cfg))
        update_metrics(run, metrics)
        return {"run": str(run), **metrics}
    histories, targets, skipped = cases_from_file(data, ds, cfg)
    metrics = with_split("data", evaluate_cases(model, histories, targets, cfg.eval.ks, cfg.eval.batch_size))
    metrics.update({f"data/{k}": float(v) for k, v in skipped.items()})
    out = evaluation_dir(run, data)
    write_json(out / "metrics.json", metrics)
    if cfg.eval.plot:
        plot_at_k({cfg.model.name: metrics}, cfg.eval.ks, out / "metrics_at_k.png", splits=("data",))
    log.info("evaluated on %s: %s", data, skipped)
    return {"run": str(run), "evaluation": str(out), **metrics}


def plot_at_k(results: dict[str, dict], ks, path: Path, splits=("valid", "test")) -> Path:
    """NDCG@K against K, one line per model and split."""
    series = {f"{name} {split}": [r.get(f"{split}/ndcg@{k}", float("nan")) for k in ks]
              for name, r in results.items() for split in splits}
    return plots.curves(series, path, xlabel="K", ylabel="NDCG@K", x=list(ks), title="NDCG@K (seen items excluded)")
