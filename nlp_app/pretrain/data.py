"""The unlabelled text of masked-LM pre-training, and its ``preprocess`` stage.

Training text: the training split of the recipe's labelled corpus (``data.use_train_texts``; the
split of :mod:`nlp_app.common.corpus`, the same one classification fine-tunes and tests on, so no
validation or test text is pre-trained on) and/or plain-text files, one text per line
(``data.text_files``). Validation text: the corpus's validation split, else the first 5% of the
files' lines. Held-out text for ``evaluate``: the corpus's test split, else that validation cut.
"""
from __future__ import annotations

from nlp_app.common.corpus import load_splits, read_texts
from nlp_app.common.corpus import preprocess as preprocess_corpus
from nlp_app.pretrain.config import PretrainConfig
from shared.errors import UserError


def _file_texts(cfg: PretrainConfig) -> tuple[list[str], list[str]]:
    """The text files' lines as (train, valid): the first 5% (at least one line) validate."""
    lines = [t for path in cfg.data.text_files for t in read_texts(path, lowercase=cfg.data.lowercase)]
    cut = max(1, len(lines) // 20) if lines else 0
    return lines[cut:], lines[:cut]


def corpus(cfg: PretrainConfig) -> tuple[list[str], list[str]]:
    """Unlabelled (train, valid) texts; the valid texts measure the MLM loss."""
    texts, valid = [], []
    if cfg.data.use_train_texts:
        splits, _, _ = load_splits(cfg.data)
        texts += splits["train"].texts
        valid = splits["valid"].texts
    if cfg.data.text_files:
        extra, extra_valid = _file_texts(cfg)
        if valid:  # the corpus's validation split measures; every file line trains
            extra = extra_valid + extra
        else:
            valid = extra_valid
        texts += extra
    if not texts:
        raise UserError("no pre-training text: set data.use_train_texts=true or list data.text_files")
    return texts, valid


def held_out(cfg: PretrainConfig) -> list[str]:
    """Texts no training step saw: the corpus's test split, else the files' validation cut."""
    if cfg.data.use_train_texts:
        return load_splits(cfg.data)[0]["test"].texts
    return _file_texts(cfg)[1]


def preprocess(cfg: PretrainConfig) -> dict:
    """The ``preprocess`` stage: split and cache the labelled corpus (when its training texts are
    used) and check the text files; returns the text counts."""
    out: dict = {}
    if cfg.data.use_train_texts:
        out.update(preprocess_corpus(cfg.data))
    texts, valid = corpus(cfg)
    return {**out, "pretraining_texts": len(texts), "validation_texts": len(valid)}
