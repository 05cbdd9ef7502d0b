"""The ``compare`` extra: every model of ``eval.compare_models`` on the same split, ranked.

The CLI gives it a run of its own, ``runs/recsys_app/<name>-compare/<id>/`` (resumed like a
``train`` run: a killed compare continues SASRec from ``sasrec/checkpoints``). It writes
``comparison.md`` / ``comparison.json``, ``ndcg_at_k.png`` and every model's metrics as
``<split>/<model>/<metric>`` keys in ``metrics.json``; each model's files go in ``<run>/<model>/``.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from recsys_app.recommend.config import RecsysConfig
from recsys_app.recommend.data import load_or_preprocess
from recsys_app.recommend.evaluate import plot_at_k
from recsys_app.recommend.train import fit_and_score
from recsys_app.recommend.tune import apply_tuned
from shared.runs import update_metrics, write_json, write_text

log = logging.getLogger(__name__)


def compare(cfg: RecsysConfig, run: Path) -> dict:
    """The ``compare`` stage: fit and score each model on one split; rank them by test NDCG@10
    (with ``model.params_from``: each model with the values tuned there)."""
    cfg = apply_tuned(cfg)
    ds = load_or_preprocess(cfg)
    results = {}
    for name in cfg.eval.compare_models:
        _, results[name] = fit_and_score(cfg, ds, name, run / name)
        results[name]["train_seconds"] = results[name]["train/seconds"]
        update_metrics(run, {f"{k.split('/', 1)[0]}/{name}/{k.split('/', 1)[1]}": v for k, v in results[name].items()
                             if "/" in k and isinstance(v, (int, float)) and not isinstance(v, bool)})
    table = metrics_table(results, cfg.eval.ks)
    counts = ds.counts()
    header = (f"Full-catalogue ranking, seen items excluded, {cfg.data.split.method} split; "
              f"{counts['users']} users, {counts['items']} items, {counts['interactions']} interactions "
              f"(recipe `{cfg.name}`, run `{run.name}`). Test split:\n\n")
    write_text(run / "comparison.md", header + table)
    write_json(run / "comparison.json", results)
    if cfg.eval.plot:
        plot_at_k(results, cfg.eval.ks, run / "ndcg_at_k.png")
    log.info("comparison (test split):\n%s", table)
    return {"comparison": str(run / "comparison.md"),
            **{f"test/{name}/ndcg@10": r["test/ndcg@10"] for name, r in results.items() if "test/ndcg@10" in r},
            "card": "\n## Comparison\n" + header + table}


def metrics_table(results: dict[str, dict[str, float]], ks: Sequence[int], split: str = "test") -> str:
    """A markdown table: one row per model, best NDCG@10 (else NDCG@max K) first."""
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
