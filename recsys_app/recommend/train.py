"""The ``train`` and ``compare`` stages, and loading a trained run back.

``train`` fits the recipe's ``model.name`` on the training split, scores it on validation and
test (full catalogue, seen items excluded) and writes a self-contained run directory:
``config.yaml``, ``metrics.json``, ``model.safetensors``, the data it needs to serve
(``interactions.parquet``, ``vocab.json``), ``metrics_at_k.png``, ``MODEL_CARD.md`` (and, for
SASRec, ``history.jsonl`` and resumable ``checkpoints/``; ``train --run DIR`` continues one).
``compare`` trains every model on the same split into ``runs/recsys_app/<name>-compare/`` and
writes ``comparison.md`` / ``comparison.json`` with one row per model.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

from recsys_app.config import RecsysConfig
from recsys_app.dataset import Interactions, load_dataset, save_dataset
from recsys_app.evaluate import evaluate_split, metrics_table
from recsys_app.models import Recommender, build_model
from recsys_app.preprocess import APP, load_or_preprocess
from shared import plots
from shared.config import apply_overrides, load_config, to_dict, validate
from shared.metrics import with_split
from shared.runs import (
    create_run,
    load_run_config,
    mark_latest,
    resolve_run,
    task_dir,
    update_metrics,
    write_json,
    write_text,
    write_yaml,
)

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


def train(args) -> dict:
    """The ``train`` stage (``--run DIR`` resumes that run's SASRec training)."""
    if args.run:
        run = resolve_run(args.run)
        cfg = validate(RecsysConfig, apply_overrides(load_run_config(run), args.overrides), str(run))
    else:
        cfg = load_config(RecsysConfig, args.config, args.overrides)
        run = create_run(APP, cfg.name)
    write_yaml(run / "config.yaml", to_dict(cfg))
    ds = load_or_preprocess(cfg)
    model, metrics = fit_and_score(cfg, ds, cfg.model.name, run)
    model.save(run)
    save_dataset(ds, run, {"data": to_dict(cfg.data)})
    update_metrics(run, metrics)
    if cfg.eval.plot:
        plot_at_k({cfg.model.name: metrics}, cfg.eval.ks, run / "metrics_at_k.png")
    write_text(run / "MODEL_CARD.md", model_card(cfg, ds, metrics, run))
    mark_latest(run)
    return {"run": str(run), "model": cfg.model.name,
            **{k: round(v, 4) for k, v in metrics.items() if k.startswith("test/") and "@10" in k}}


def compare(args) -> dict:
    """The ``compare`` stage: every model on one split, ranked by test NDCG@10."""
    cfg = load_config(RecsysConfig, args.config, args.overrides)
    ds = load_or_preprocess(cfg)
    run = create_run(APP, f"{cfg.name}-compare")
    write_yaml(run / "config.yaml", to_dict(cfg))
    results = {}
    for name in cfg.eval.compare_models:
        _, results[name] = fit_and_score(cfg, ds, name, run / name)
        results[name]["train_seconds"] = results[name]["train/seconds"]
        update_metrics(run, {f"{k.split('/', 1)[0]}/{name}/{k.split('/', 1)[1]}": v
                             for k, v in results[name].items() if "/" in k})
    table = metrics_table(results, cfg.eval.ks)
    counts = ds.counts()
    header = (f"Full-catalogue ranking, seen items excluded, {cfg.data.split.method} split; "
              f"{counts['users']} users, {counts['items']} items, {counts['interactions']} interactions "
              f"(recipe `{cfg.name}`, run `{run.name}`). Test split:\n\n")
    write_text(run / "comparison.md", header + table)
    write_json(run / "comparison.json", results)
    if cfg.eval.plot:
        plot_at_k(results, cfg.eval.ks, run / "ndcg_at_k.png")
    mark_latest(run)
    print(table)
    return {"run": str(run), **{name: round(r.get("test/ndcg@10", float("nan")), 4) for name, r in results.items()}}


def plot_at_k(results: dict[str, dict], ks, path: Path) -> Path:
    series = {f"{name} {split}": [r.get(f"{split}/ndcg@{k}", float("nan")) for k in ks]
              for name, r in results.items() for split in ("valid", "test")}
    return plots.curves(series, path, xlabel="K", ylabel="NDCG@K", x=list(ks), title="NDCG@K (seen items excluded)")


def model_card(cfg: RecsysConfig, ds: Interactions, metrics: dict, run: Path) -> str:
    name = cfg.model.name
    params = getattr(cfg.model, name, None)
    counts = ds.counts()
    rows = "\n".join(f"| {k} | {v:.4f} |" for k, v in sorted(metrics.items())
                     if k.startswith(("valid/", "test/")) and isinstance(v, float))
    return f"""# Model card: {cfg.name} / {name} (run {run.name})

Top-K recommender trained on {counts['train_interactions']} interactions of {counts['users']} users over
{counts['items']} items (data source: {cfg.data.source}{f' {cfg.data.path}' if cfg.data.path else ''};
positives: {'rating >= ' + str(cfg.data.min_rating) if cfg.data.min_rating is not None else 'every interaction'};
split: {cfg.data.split.method}).

- Model: `{name}` {to_dict(params) if params is not None else ''}
- Training time: {metrics.get('train/seconds', float('nan')):.1f} s
- Evaluation: every catalogue item ranked for each user, items already in the user's history
  excluded (validation: history = train; test: history = train + validation).

| metric | value |
|---|---|
{rows}

Limits: it recommends only items in the training catalogue; unknown users and items get the
popularity list (flagged in the response). Offline accuracy on past interactions is not the
same as online uplift; check for popularity bias (coverage above) before shipping.
"""


def load_trained(args) -> tuple[RecsysConfig, Interactions, Recommender, Path]:
    """The run of ``--run`` (default: the recipe's ``latest``) with ``key=value`` overrides:
    its config, data and trained model."""
    if args.run:
        run = resolve_run(args.run)
    else:
        name = load_config(RecsysConfig, args.config).name if args.config else "movielens"
        run = resolve_run(task_dir(APP, name) / "latest")
    cfg = validate(RecsysConfig, apply_overrides(load_run_config(run), args.overrides), str(run))
    ds = load_dataset(run)
    model = build_model(cfg, ds.n_items).load(run).to(cfg.train.device)
    return cfg, ds, model, run
