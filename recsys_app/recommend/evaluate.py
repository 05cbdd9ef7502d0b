"""Offline evaluation: full-catalogue ranking with each user's history excluded, and the stage.

``evaluate --run DIR`` re-scores a run's model on the test split of its data. ``--data FILE``
scores it on new interactions instead (an interactions file in the recipe's format: each row's
item is a target for that user, whose history is everything the run knows about them; users
and items the run has never seen are skipped and counted).
"""
from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from recsys_app.config import RecsysConfig
from recsys_app.data import read_table, standardize_interactions
from recsys_app.dataset import Interactions
from recsys_app.models import Recommender
from recsys_app.ranking import coverage, exclude, ranking_metrics, target_ranks, top_k
from shared.errors import UserError
from shared.metrics import with_split
from shared.runs import update_metrics, write_json

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


def cases_from_file(path: str, ds: Interactions, cfg: RecsysConfig) -> tuple[list, list, dict]:
    """Histories (everything known) and targets (the file's rows) for the users of ``path``."""
    rows = standardize_interactions(read_table(path), cfg.data.model_copy(update={"timestamp_col": None,
                                                                                  "rating_col": None}), path)
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


def evaluate(args) -> dict:
    """The ``evaluate`` stage."""
    from recsys_app.train import load_trained  # the run loader lives with training

    cfg, ds, model, run = load_trained(args)
    if args.data:
        histories, targets, skipped = cases_from_file(args.data, ds, cfg)
        metrics = with_split("file", evaluate_cases(model, histories, targets, cfg.eval.ks, cfg.eval.batch_size))
        write_json(run / "eval_file.json", {"data": args.data, "metrics": metrics, **skipped})
        log.info("evaluated on %s: %s", args.data, skipped)
        return {"run": str(run), **metrics, **skipped}
    metrics = with_split("test", evaluate_split(model, ds, "test", cfg))
    update_metrics(run, metrics)
    return {"run": str(run), **metrics}


def metrics_table(results: dict[str, dict[str, float]], ks: Sequence[int], split: str = "test") -> str:
    """A markdown table: one row per model, best NDCG@max(K) first."""
    cols = [f"{m}@{k}" for k in ks for m in ("recall", "ndcg", "mrr")] + [f"coverage@{max(ks)}"]
    key = f"{split}/ndcg@{10 if 10 in ks else max(ks)}"
    order = sorted(results, key=lambda name: -results[name].get(key, 0.0))
    frame = pd.DataFrame([[results[n].get(f"{split}/{c}", float("nan")) for c in cols]
                          + [results[n].get("train_seconds", float("nan"))] for n in order],
                         index=order, columns=cols + ["train s"])
    lines = ["| model | " + " | ".join(frame.columns) + " |", "|---" * (len(frame.columns) + 1) + "|"]
    for name, row in frame.iterrows():
        lines.append(f"| {name} | " + " | ".join(f"{v:.4f}" if c != "train s" else f"{v:.1f}"
                                                 for c, v in row.items()) + " |")
    return "\n".join(lines) + "\n"
