"""The ``train`` stage: fit the recipe's ``model.name`` and score it.

``train`` fits the model on the training split, scores it on validation and test (full
catalogue, seen items excluded) and fills the run that :func:`shared.runs.start_run` began:
``metrics.json`` (through the CLI's ``finish_run``, which also writes the ``README.md`` model card
and moves ``latest``), ``model.safetensors``, the data it needs to serve (``interactions.parquet``,
``vocab.json``), ``metrics_at_k.png`` and, for SASRec, ``history.jsonl`` and ``checkpoints/``: the
same ``train`` command resumes the newest unfinished run of that recipe and config from its last
checkpoint, and ``train --run DIR`` resumes that run.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

from recsys_app.recommend.base import Recommender
from recsys_app.recommend.config import RecsysConfig
from recsys_app.recommend.data import load_or_preprocess
from recsys_app.recommend.dataset import Interactions, save_dataset
from recsys_app.recommend.evaluate import evaluate_split, plot_at_k
from recsys_app.recommend.model import build_model
from shared.config import to_dict
from shared.metrics import with_split

log = logging.getLogger(__name__)

def fit_and_score(cfg: RecsysConfig, ds: Interactions, name: str, out_dir: Path) -> tuple[Recommender, dict]:
    """Fit model ``name`` on ``ds``'s train split; return it and its ``split/metric`` dict
    (valid, test, and ``train/seconds``) plus ``info/...`` keys from the fit."""
    model = build_model(cfg, ds.n_items, name)
    log.info("fitting %s on %d training interactions", name, int((ds.frame["split"] == "train").sum()))
    t0 = time.perf_counter()
    info = model.fit(ds, out_dir)
    seconds = time.perf_counter() - t0
    model.to(cfg.train.device)
    # SASRec reports its time in training steps, summed over resumes (evaluation excluded).
    metrics = {"train/seconds": float(info.get("train_seconds", seconds))}
    for split in ("valid", "test"):
        metrics.update(with_split(split, evaluate_split(model, ds, split, cfg)))
    log.info("%s: %.1fs, valid ndcg@10 %.4f, test ndcg@10 %.4f", name, seconds,
             metrics.get("valid/ndcg@10", float("nan")), metrics.get("test/ndcg@10", float("nan")))
    return model, {**metrics, **{f"info/{k}": v for k, v in info.items() if isinstance(v, (int, float, str))}}


def train(cfg: RecsysConfig, run: Path) -> dict:
    """The ``train`` stage: fit ``cfg.model.name`` into ``run`` (SASRec resumes from
    ``run/checkpoints`` when a killed run is resumed); returns the ``split/metric`` dict and the
    model card's recsys section."""
    ds = load_or_preprocess(cfg)
    model, metrics = fit_and_score(cfg, ds, cfg.model.name, run)
    model.save(run)
    save_dataset(ds, run, {"data": to_dict(cfg.data)})
    if cfg.eval.plot:
        plot_at_k({cfg.model.name: metrics}, cfg.eval.ks, run / "metrics_at_k.png")
    return {"model": cfg.model.name, **metrics, "card": model_card(cfg, ds, metrics)}


def model_card(cfg: RecsysConfig, ds: Interactions, metrics: dict) -> str:
    """The recsys section of the run's model card (the shared card has the metrics table)."""
    name = cfg.model.name
    params = getattr(cfg.model, name, None)
    counts = ds.counts()
    positives = f"rating >= {cfg.data.min_rating}" if cfg.data.min_rating is not None else "every interaction"
    return f"""
## Recommender
Top-K recommender `{name}` {to_dict(params) if params is not None else ''} trained on
{counts['train_interactions']} interactions of {counts['users']} users over {counts['items']} items
(data: {cfg.data.source}{f' {cfg.data.path}' if cfg.data.path else ''}; positives: {positives};
split: {cfg.data.split.method}) in {metrics.get('train/seconds', float('nan')):.1f} s.
Evaluation ranks every catalogue item for each user, items already in the user's history
excluded (validation: history = train; test: history = train + validation).

It recommends only items in the training catalogue; unknown users and items get the popularity
list (flagged in the response). Offline accuracy on past interactions is not online uplift;
check for popularity bias (coverage@K) before shipping.
"""
