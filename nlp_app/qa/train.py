"""The ``train`` stage of extractive question answering: BERT span prediction over question +
context windows, trained with the shared loop (an interrupted run resumes from its checkpoints),
scored with the CMRC 2018 exact match / F1::

    python -m nlp_app preprocess --config configs/nlp_app/qa-quick.yaml
    python -m nlp_app train      --config configs/nlp_app/qa-quick.yaml
    python -m nlp_app evaluate   --run runs/nlp_app/qa/latest [--data cmrc2018_dev.json]
    python -m nlp_app predict    --run runs/nlp_app/qa/latest --input questions.jsonl --output -
    python -m nlp_app export     --run runs/nlp_app/qa/latest
    python -m nlp_app serve      --run runs/nlp_app/qa/latest

Data: SQuAD v1.1 JSON (:mod:`nlp_app.qa.data`); windows and decoding: :mod:`nlp_app.qa.features`.
"""
from __future__ import annotations

import logging
import random
from pathlib import Path

from nlp_app.common import token_tasks
from nlp_app.common.bert import build_tokenizer, rank0_first
from nlp_app.qa.config import QAConfig
from nlp_app.qa.data import load_splits
from nlp_app.qa.model import HEAD, QATask, feature_items, features
from shared import metrics

log = logging.getLogger(__name__)


def train(cfg: QAConfig, run: Path) -> dict:
    """The ``train`` stage: preprocess if needed, fine-tune into ``run`` (resuming from its
    checkpoints), score the test split; returns the valid and test EM/F1."""
    splits = rank0_first(lambda: load_splits(cfg))
    texts = [e.question for e in splits["train"]] + list(dict.fromkeys(e.context for e in splits["train"]))
    tokenizer = build_tokenizer(cfg.model, texts)
    model = token_tasks.build_model(HEAD, cfg.model, tokenizer, seed=cfg.train.seed)
    train_feats = features(splits["train"], tokenizer, cfg, with_labels=True)
    valid_feats = features(splits["valid"], tokenizer, cfg)
    log.info("QA windows: %d train (%d with the answer), %d valid", len(train_feats),
             sum(s > 0 for s in train_feats.start_positions), len(valid_feats))
    train_items = feature_items(train_feats)
    if cfg.features.no_answer_fraction < 1:
        rng = random.Random(cfg.train.seed)
        train_items = [it for it in train_items if it["start_positions"] or rng.random() < cfg.features.no_answer_fraction]
        log.info("kept %d of %d training windows", len(train_items), len(train_feats))
    result = token_tasks.fit_model(model, QATask(splits["valid"], valid_feats, cfg), train_items,
                                   feature_items(valid_feats), cfg, run)
    test_feats = features(splits["test"], tokenizer, cfg)
    test = token_tasks.evaluate_on(model, QATask(splits["test"], test_feats, cfg), feature_items(test_feats), cfg)
    token_tasks.save_model_files(run, model, tokenizer)
    return {**metrics.with_split("valid", result.best_metrics), **metrics.with_split("test", test),
            "train/seconds": result.train_seconds, "train/steps": result.steps, "card": _card(cfg, splits)}


def _card(cfg: QAConfig, splits) -> str:
    start = cfg.model.pretrained or f"from scratch ({cfg.model.num_layers} layers, hidden {cfg.model.hidden_size})"
    return (f"\n## Extractive QA\nBERT span extraction, start: {start}.\n"
            f"Data: {cfg.data.source}; {len(splits['train'])} training questions, {len(splits['test'])} test questions.\n"
            f"Windows: {cfg.model.max_length} tokens, doc_stride {cfg.features.doc_stride}. "
            "Exact match and F1 are the CMRC 2018 character-level scores.\n")
