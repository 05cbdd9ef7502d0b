"""The ``train`` stage of named-entity recognition: one tag per character, by the model kind in
``model.encoder`` (:mod:`nlp_app.ner.model`: the character BiLSTM/CNN, or BERT token
classification; a CRF on top with ``model.crf``), trained with the shared loop (an interrupted run
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
from nlp_app.common.tokenization import character_tokenizer, text_normalizer
from nlp_app.ner.config import NERConfig
from nlp_app.ner.crf import repair_bio
from nlp_app.ner.data import load_splits
from nlp_app.ner.features import encode
from nlp_app.ner.model import NERTask, build_model, collate, save_model_files
from shared import metrics

log = logging.getLogger(__name__)


def train(cfg: NERConfig, run: Path) -> dict:
    """The ``train`` stage: preprocess if needed, train into ``run`` (resuming from its
    checkpoints), score the test split; returns the valid and test entity F1 (overall and per type)."""
    splits, labels = rank0_first(lambda: load_splits(cfg))
    if cfg.model.crf:  # a CRF scores valid sequences only: read slips in users' files as seqeval does
        splits = {k: [(tokens, repair_bio(tags)) for tokens, tags in part] for k, part in splits.items()}
    # characters as separate words, so each is in the vocabulary as a word start, in the forms the
    # tokenizer's NFKC gives them (１ → 1). The saved tokenizer normalises and cuts text into
    # characters itself, so transformers.pipeline tags what the server does.
    nfkc = text_normalizer(lowercase=False)
    corpus = [nfkc.normalize_str(" ".join(tokens)) for tokens, _ in splits["train"]]
    tokenizer = character_tokenizer(build_tokenizer(cfg.model, corpus))
    model = build_model(cfg.model, tokenizer, labels, cfg.train.seed)
    label2id = {t: i for i, t in enumerate(labels)}
    word_features = cfg.model.encoder != "bert" and cfg.model.word_features
    data = {name: encode(part, tokenizer, label2id, cfg.model.max_length, word_features)
            for name, part in splits.items()}
    task = NERTask(labels)
    result = token_tasks.fit_model(model, task, data["train"], data["valid"], cfg, run, collate_fn=collate)
    test = token_tasks.evaluate_on(model, task, data["test"], cfg, collate_fn=collate)
    save_model_files(run, model, tokenizer, labels)
    mean_chars = sum(len(t) for t, _ in splits["train"]) / len(splits["train"])
    return {**metrics.with_split("valid", result.best_metrics), **metrics.with_split("test", test),
            "train/seconds": result.train_seconds, "train/steps": result.steps,
            "train/chars_per_second": result.samples_per_second * mean_chars,
            "card": _card(cfg, splits, test)}


def _card(cfg: NERConfig, splits, test: dict) -> str:
    per_type = ", ".join(f"{k.split('/')[0]} {v:.3f}" for k, v in test.items() if k.endswith("/f1") and "/" in k)
    m = cfg.model
    if m.encoder == "bert":
        start = m.pretrained or f"from scratch ({m.num_layers} layers, hidden {m.hidden_size})"
        what = f"BERT token classification, start: {start}"
    else:
        what = (f"character {m.encoder} ({m.num_layers} layers, hidden {m.hidden_size}, embeddings {m.embedding_dim}"
                f"{', jieba word positions' if m.word_features else ''}) from scratch")
    decoding = "CRF layer, Viterbi over valid BIO sequences" if m.crf else "per-character argmax"
    return (f"\n## Named-entity recognition\n{what}; {decoding}.\n"
            f"Data: {cfg.data.source}; {len(splits['train'])} training sentences, {len(splits['test'])} test sentences.\n"
            f"Entity-level scores (seqeval); test F1 per type: {per_type}.\n")
