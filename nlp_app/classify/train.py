"""The ``train`` stage of text classification: ``model.name`` picks the model.

- ``baseline``: jieba + TF-IDF + logistic regression (:mod:`nlp_app.classify.baseline`), seconds on a CPU.
- ``bert``: a BERT fine-tuned with the shared loop (:func:`shared.training.fit`): dynamic
  padding, length-grouped batches, checkpoints (an interrupted run resumes from them), DDP under
  ``torchrun``.

The run directory (from :func:`shared.runs.start_run`) gets ``labels.json``, the model files,
``confusion_test.png`` / ``roc_test.png`` and ``history.jsonl``; the returned valid and test
scores become ``metrics.json`` and the model card (:func:`shared.runs.finish_run`).
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import torch

from nlp_app.classify.baseline import BaselineClassifier, load_baseline
from nlp_app.classify.config import ClassifyConfig
from nlp_app.classify.model import build_classifier, load_classifier
from nlp_app.classify.scoring import score
from nlp_app.common.bert import (
    DynamicPadding,
    TokenizedTexts,
    build_tokenizer,
    encode,
    pad_multiple_for,
    rank0_first,
    save_pretrained_files,
)
from nlp_app.common.corpus import load_splits
from shared import distributed as dist
from shared import metrics, runs
from shared.batching import LengthGroupedBatchSampler
from shared.config import to_dict
from shared.device import resolve_device, resolve_precision, seed_everything
from shared.training import fit

log = logging.getLogger(__name__)


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


def train_baseline(cfg: ClassifyConfig, run: Path) -> dict:
    """Fit the TF-IDF + logistic-regression baseline into ``run`` (rank 0 only: it is one process's work)."""
    if not dist.is_main_process():
        return {}
    splits, labels, _ = load_splits(cfg.data)
    t0 = time.perf_counter()
    model = BaselineClassifier(cfg.model.baseline, labels).fit(splits["train"].texts, splits["train"].labels)
    wall = time.perf_counter() - t0
    model.save(run)
    check_reload(model, load_baseline(run), splits["valid"].texts[:200])
    return {"train/wall_seconds": wall}


def check_reload(fitted, reloaded, texts: list[str]) -> None:
    """Refuse to finish a run whose saved model does not give the fitted model's probabilities
    (``train`` scores the reloaded model: a broken round trip would look like a bad model)."""
    gap = float(np.abs(fitted.predict_proba(texts) - reloaded.predict_proba(texts)).max()) if texts else 0.0
    if gap > 1e-5:
        raise RuntimeError(f"the saved baseline differs from the fitted one by {gap:.3g} in probability; "
                           "this is a bug in saving it, please report it")


def train_bert(cfg: ClassifyConfig, run: Path) -> dict:
    """Fine-tune a BERT into ``run``, resuming from ``run/checkpoints`` when they exist; returns
    training figures (on every rank)."""
    seed_everything(cfg.train.seed)
    splits, labels, _ = load_splits(cfg.data)
    tokenizer = build_tokenizer(cfg.model, splits["train"].texts)
    model = build_classifier(cfg.model, labels, tokenizer)
    index = {name: i for i, name in enumerate(labels)}
    data = {name: TokenizedTexts(encode(tokenizer, splits[name].texts, cfg.model.max_length),
                                 [index[y] for y in splits[name].labels]) for name in ("train", "valid")}
    precision = resolve_precision(cfg.train.precision, resolve_device(cfg.train.device))
    collate = DynamicPadding(tokenizer.pad_token_id, pad_multiple_for(precision))
    # the CLI joined any process group already, so the sampler shards by the real world size
    sampler = LengthGroupedBatchSampler(data["train"].lengths, cfg.train.batch_size, seed=cfg.train.seed,
                                        drop_last=cfg.train.drop_last)
    result = fit(model, ClassificationTask(), data["train"], data["valid"], cfg.train, run, collate_fn=collate,
                 train_batch_sampler=sampler, extra_state={"config": to_dict(cfg)})
    if dist.is_main_process():
        save_pretrained_files(run, model, tokenizer)
    lengths = np.array(data["train"].lengths)
    out = {"train/wall_seconds": result.train_seconds, "train/samples_per_second": result.samples_per_second,
           "train/steps": result.steps, "train/epochs": result.epochs_completed,
           "train/mean_tokens": float(lengths.mean()), "train/parameters": sum(p.numel() for p in model.parameters())}
    out.update(metrics.with_split("valid", result.best_metrics or result.last_metrics))
    return out


MODELS = {"baseline": train_baseline, "bert": train_bert}


def train(cfg: ClassifyConfig, run: Path) -> dict:
    """The ``train`` stage: train ``cfg.model.name`` into ``run`` (a BERT resumes from its last
    checkpoint), then score it on the valid and test splits (rank 0); returns the metrics and the
    model card's section."""
    t0 = time.perf_counter()
    _, labels, _ = rank0_first(lambda: load_splits(cfg.data))
    figures = MODELS[cfg.model.name](cfg, run)
    if not dist.is_main_process():  # rank 0 scores and writes
        return figures
    figures["train/total_seconds"] = time.perf_counter() - t0
    splits = load_splits(cfg.data)[0]
    runs.write_json(run / "labels.json", labels)
    clf = load_classifier(run, "torch", cfg.eval.batch_size)
    values = {**figures, **score(clf, splits["valid"], "valid"), **score(clf, splits["test"], "test", run)}
    return {**values, "model": cfg.model.name, "pretrained": cfg.model.pretrained,
            "card": card(cfg, labels, {name: len(part) for name, part in splits.items()})}


def card(cfg: ClassifyConfig, labels: list[str], counts: dict) -> str:
    """The classification section of the model card (the metrics table is the shared card's)."""
    m = cfg.model
    if m.name == "baseline":
        what = "jieba word + character n-gram TF-IDF, logistic regression"
    elif m.pretrained:
        what = f"BERT fine-tuned from {m.pretrained}"
    else:
        what = f"BERT from random init: {m.num_layers} layers, hidden {m.hidden_size}, character vocabulary"
    return (f"\n## Text classification\n- model: {what}\n- data: {cfg.data.source}, split {counts}\n"
            f"- labels: {labels}\n\nInputs are normalised (full-width to half-width, control characters out, "
            "lower case) before scoring, in training and serving alike.\n")
