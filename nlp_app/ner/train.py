"""The ``train`` stage of named-entity recognition: BERT token classification over characters, one
label per character (on its first sub-token), trained with the shared loop (an interrupted run
resumes from its checkpoints), scored with seqeval at entity level::

    python -m nlp_app preprocess --config configs/nlp_app/ner-quick.yaml
    python -m nlp_app train      --config configs/nlp_app/ner-quick.yaml
    python -m nlp_app evaluate   --run runs/nlp_app/ner/latest [--data sentences.bio]
    python -m nlp_app predict    --run runs/nlp_app/ner/latest --input texts.txt --output -
    python -m nlp_app export     --run runs/nlp_app/ner/latest
    python -m nlp_app serve      --run runs/nlp_app/ner/latest

Data formats and the People's Daily conversion: :mod:`nlp_app.ner.data`.
"""
from __future__ import annotations

import logging
from pathlib import Path

from nlp_app.common import token_tasks
from nlp_app.common.bert import build_tokenizer, rank0_first
from nlp_app.ner.config import NERConfig
from nlp_app.ner.data import load_splits
from nlp_app.ner.model import HEAD, NERTask, encode
from shared import metrics

log = logging.getLogger(__name__)


def train(cfg: NERConfig, run: Path) -> dict:
    """The ``train`` stage: preprocess if needed, fine-tune into ``run`` (resuming from its
    checkpoints), score the test split; returns the valid and test entity F1 (overall and per type)."""
    splits, labels = rank0_first(lambda: load_splits(cfg))
    # characters as separate words, so each is in the vocabulary as a word start
    tokenizer = build_tokenizer(cfg.model, [" ".join(t) for t, _ in splits["train"]])
    model = token_tasks.build_model(HEAD, cfg.model, tokenizer, labels, cfg.train.seed)
    label2id = {t: i for i, t in enumerate(labels)}
    data = {name: encode(part, tokenizer, label2id, cfg.model.max_length) for name, part in splits.items()}
    task = NERTask(labels)
    result = token_tasks.fit_model(model, task, data["train"], data["valid"], cfg, run)
    test = token_tasks.evaluate_on(model, task, data["test"], cfg)
    token_tasks.save_model_files(run, model, tokenizer, labels)
    return {**metrics.with_split("valid", result.best_metrics), **metrics.with_split("test", test),
            "train/seconds": result.train_seconds, "train/steps": result.steps, "card": _card(cfg, splits, test)}


def _card(cfg: NERConfig, splits, test: dict) -> str:
    per_type = ", ".join(f"{k.split('/')[0]} {v:.3f}" for k, v in test.items() if k.endswith("/f1") and "/" in k)
    start = cfg.model.pretrained or f"from scratch ({cfg.model.num_layers} layers, hidden {cfg.model.hidden_size})"
    return (f"\n## Named-entity recognition\nBERT token classification, start: {start}.\n"
            f"Data: {cfg.data.source}; {len(splits['train'])} training sentences, {len(splits['test'])} test sentences.\n"
            f"Entity-level scores (seqeval); test F1 per type: {per_type}.\n")
