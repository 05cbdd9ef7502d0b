"""The ``preprocess`` stage of text classification: read, validate, clean, de-duplicate and split
the labelled texts, and cache them (the reading and splitting live in :mod:`nlp_app.common.corpus`,
which pre-training shares, so both see the same split)."""
from __future__ import annotations

from nlp_app.classify.config import ClassifyConfig
from nlp_app.common.corpus import preprocess as preprocess_corpus


def preprocess(cfg: ClassifyConfig) -> dict:
    """Clean, split and cache ``cfg.data``; returns the manifest (counts, label map, cleaning)."""
    return preprocess_corpus(cfg.data)
