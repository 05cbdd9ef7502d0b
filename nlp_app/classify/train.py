"""The ``train`` stage for text classification: ``model.name`` picks the model.

- ``baseline``: jieba + TF-IDF + logistic regression (:mod:`nlp_app.baseline`), seconds on a CPU.
- ``bert``: a BERT fine-tuned with the shared loop (:func:`shared.training.fit`): dynamic
  padding, length-grouped batches, checkpoint/resume, DDP under ``torchrun``.

Either way the run directory gets ``config.yaml``, ``labels.json``, the model files,
``metrics.json`` (valid and test scores, wall time), plots and ``MODEL_CARD.md``.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import torch

from nlp_app.baseline import BaselineClassifier
from nlp_app.bert import (
    DynamicPadding,
    TokenizedTexts,
    build_classifier,
    build_tokenizer,
    encode,
    pad_multiple_for,
    save_pretrained_files,
)
from nlp_app.config import SentimentConfig
from nlp_app.data import load_splits
from nlp_app.evaluate import score
from nlp_app.inference import load_classifier
from shared import distributed as dist
from shared import metrics, runs
from shared.batching import LengthGroupedBatchSampler
from shared.config import to_dict
from shared.device import resolve_device, resolve_precision, seed_everything
from shared.training import fit

log = logging.getLogger(__name__)
APP = "nlp_app"


class ClassificationTask:
    """Loss and validation metrics of a sequence classifier for :func:`shared.training.fit`."""

    def loss(self, model, batch):
        return model(**batch).loss

    def evaluate(self, model, loader) -> dict[str, float]:
        logits, labels = [], []
        for batch in loader:
            logits.append(model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.float())
            labels.append(batch["labels"])
        logits, labels = dist.gather_cat(torch.cat(logits)), dist.gather_cat(torch.cat(labels))
        proba = torch.softmax(logits.double(), -1).cpu().numpy()
        values = metrics.multiclass_classification(labels.cpu().numpy(), proba)
        return {k: values[k] for k in ("accuracy", "macro_f1", "log_loss")}


def train_baseline(cfg: SentimentConfig, run: Path) -> dict:
    splits, labels, _ = load_splits(cfg.data)
    t0 = time.perf_counter()
    model = BaselineClassifier(cfg.model.baseline, labels).fit(splits["train"].texts, splits["train"].labels)
    wall = time.perf_counter() - t0
    model.save(run)
    return {"train/wall_seconds": wall}


def train_bert(cfg: SentimentConfig, run: Path, resume: bool = True) -> dict:
    """Fine-tune a BERT into ``run``; returns training figures (on every rank)."""
    seed_everything(cfg.train.seed)
    splits, labels, _ = load_splits(cfg.data)
    tokenizer = build_tokenizer(cfg.model, splits["train"].texts)
    model = build_classifier(cfg.model, labels, tokenizer)
    index = {name: i for i, name in enumerate(labels)}
    data = {name: TokenizedTexts(encode(tokenizer, splits[name].texts, cfg.model.max_length),
                                 [index[y] for y in splits[name].labels]) for name in ("train", "valid")}
    precision = resolve_precision(cfg.train.precision, resolve_device(cfg.train.device))
    collate = DynamicPadding(tokenizer.pad_token_id, pad_multiple_for(precision))
    # train() joined any process group already, so the sampler shards by the real world size
    sampler = LengthGroupedBatchSampler(data["train"].lengths, cfg.train.batch_size, seed=cfg.train.seed,
                                        drop_last=cfg.train.drop_last)
    result = fit(model, ClassificationTask(), data["train"], data["valid"], cfg.train, run, collate_fn=collate,
                 train_batch_sampler=sampler, resume=resume, extra_state={"config": to_dict(cfg)})
    if dist.is_main_process():
        save_pretrained_files(run, model, tokenizer)
    lengths = np.array(data["train"].lengths)
    out = {"train/wall_seconds": result.train_seconds, "train/samples_per_second": result.samples_per_second,
           "train/steps": result.steps, "train/epochs": result.epochs_completed,
           "train/mean_tokens": float(lengths.mean()), "train/parameters": sum(p.numel() for p in model.parameters())}
    out.update(metrics.with_split("valid", result.best_metrics or result.last_metrics))
    return out


MODELS = {"baseline": train_baseline, "bert": train_bert}


def train(cfg: SentimentConfig, run: Path | None = None) -> dict:
    """Train ``cfg.model.name`` into a new run (or ``run``, resuming a BERT from its last checkpoint),
    score it on the test split, mark it ``latest``; returns a summary."""
    t0 = time.perf_counter()
    owns_group = False
    if cfg.model.name == "bert":  # under torchrun: join the group first; rank 0 makes the run dir
        _, owns_group = dist.setup_distributed(resolve_device(cfg.train.device))
    try:
        if dist.is_main_process():
            load_splits(cfg.data)  # preprocess once, before other ranks read the cache
            run = run or runs.create_run(APP, cfg.name)
            runs.write_yaml(run / "config.yaml", to_dict(cfg))
        run = Path(dist.broadcast_object(str(run)))
        dist.barrier()
        is_main = dist.is_main_process()
        figures = MODELS[cfg.model.name](cfg, run)
    finally:
        if owns_group:
            dist.teardown_distributed()
    if not is_main:  # rank 0 scores and writes
        return {}
    figures["train/total_seconds"] = time.perf_counter() - t0
    splits, labels, _ = load_splits(cfg.data)
    runs.write_json(run / "labels.json", labels)
    clf = load_classifier(run, "torch", cfg.eval.batch_size)
    values = {**figures, **score(clf, splits["valid"], "valid"), **score(clf, splits["test"], "test", run)}
    runs.update_metrics(run, values)
    write_model_card(run, cfg, values, {n: len(s) for n, s in splits.items()})
    runs.mark_latest(run)
    keys = ("test/accuracy", "test/macro_f1", "test/roc_auc", "valid/accuracy", "train/wall_seconds")
    return {"run": str(run), "model": cfg.model.name, "pretrained": cfg.model.pretrained,
            **{k: round(values[k], 4) for k in keys if k in values}}


def write_model_card(run: Path, cfg: SentimentConfig, values: dict, counts: dict) -> None:
    m = cfg.model
    if m.name == "baseline":
        what = "jieba word + character n-gram TF-IDF, logistic regression"
    elif m.pretrained:
        what = f"BERT from {m.pretrained}"
    else:
        what = f"BERT from random init: {m.num_layers} layers, hidden {m.hidden_size}, character vocabulary"
    lines = [f"# {cfg.name}: {m.name}", "", f"- model: {what}", f"- data: {cfg.data.source}, split {counts}",
             f"- labels: {runs.read_json(run / 'labels.json')}", "", "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {v:.4f} |" for k, v in sorted(values.items()) if k.startswith(("test/", "valid/"))
              and "/" not in k.split("/", 1)[1]]
    note = (f"Wall time {values.get('train/total_seconds', 0):.0f}s. Inputs are normalised (full-width to "
            "half-width, control characters out, lower case) before scoring.")
    lines += ["", note, ""]
    runs.write_text(run / "MODEL_CARD.md", "\n".join(lines))


def train_stage(args) -> dict:
    from nlp_app.config import load_recipe

    cfg = load_recipe(args.config, args.overrides)
    if cfg.task == "pretrain":
        from nlp_app.pretrain import pretrain

        return pretrain(cfg)
    run = runs.resolve_run(args.run) if args.run else None
    return train(cfg, run)
