"""The bar every neural model must beat: jieba word n-grams + character n-grams, TF-IDF,
logistic regression (scikit-learn).

Saved without pickle: the vocabularies as JSON, the IDF vectors and LR coefficients as
safetensors, the settings in ``baseline.json``; :func:`load_baseline` rebuilds the vectorisers
from them, so loading a model never runs stored code.

The tensors are written row-major (C order). scikit-learn keeps a multi-class ``coef_``
column-major, and safetensors writes an array's buffer as it lies, so saving that array as is
stored a scrambled matrix: with three or more classes the reloaded model was silently wrong.
Models saved that way (``baseline.json`` without ``"layout"``) are read back column-major.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import safetensors.numpy
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from nlp_app.classify.config import BaselineConfig
from nlp_app.common.tokenization import segment
from shared import runs
from shared.errors import UserError

log = logging.getLogger(__name__)
LAYOUT = "row-major"  # baseline.json's "layout": how the tensors were written
FILES = ("baseline.json", "baseline.safetensors", "vocab_word.json", "vocab_char.json")


def _word_vectorizer(cfg: BaselineConfig, vocabulary=None) -> TfidfVectorizer:
    return TfidfVectorizer(tokenizer=segment, token_pattern=None, lowercase=False, ngram_range=tuple(cfg.word_ngrams),
                           min_df=cfg.min_df, max_features=cfg.max_features, sublinear_tf=True,
                           vocabulary=vocabulary, dtype=np.float32)


def _char_vectorizer(cfg: BaselineConfig, vocabulary=None) -> TfidfVectorizer:
    return TfidfVectorizer(analyzer="char", lowercase=False, ngram_range=tuple(cfg.char_ngrams),
                           min_df=cfg.min_df, max_features=cfg.max_features, sublinear_tf=True,
                           vocabulary=vocabulary, dtype=np.float32)


class BaselineClassifier:
    """TF-IDF features → logistic regression; ``predict_proba(texts)`` like every model here."""

    def __init__(self, cfg: BaselineConfig, labels: list[str]):
        self.cfg, self.labels = cfg, list(labels)
        self.word = _word_vectorizer(cfg)
        self.char = _char_vectorizer(cfg) if cfg.char_ngrams else None
        self.coef = np.zeros((0, 0), np.float32)
        self.intercept = np.zeros(0, np.float32)

    def features(self, texts: list[str]) -> sparse.csr_matrix:
        parts = [self.word.transform(texts)]
        if self.char is not None:
            parts.append(self.char.transform(texts))
        return sparse.hstack(parts, format="csr")

    def fit(self, texts: list[str], labels: list[str]) -> BaselineClassifier:
        index = {name: i for i, name in enumerate(self.labels)}
        y = np.array([index[lab] for lab in labels])
        parts = [self.word.fit_transform(texts)]
        if self.char is not None:
            parts.append(self.char.fit_transform(texts))
        X = sparse.hstack(parts, format="csr")
        lr = LogisticRegression(C=self.cfg.C, max_iter=self.cfg.max_iter)
        lr.fit(X, y)
        self.coef, self.intercept = lr.coef_.astype(np.float32), lr.intercept_.astype(np.float32)
        return self

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        scores = self.features(texts) @ self.coef.T + self.intercept
        scores = np.asarray(scores, dtype=np.float64)
        if scores.shape[1] == 1:  # binary LR stores the positive class only
            p = 1.0 / (1.0 + np.exp(-scores[:, 0]))
            return np.stack([1 - p, p], axis=1)
        scores -= scores.max(axis=1, keepdims=True)
        e = np.exp(scores)
        return e / e.sum(axis=1, keepdims=True)

    def save(self, folder: str | Path) -> None:
        folder = Path(folder)
        tensors = {"coef": self.coef, "intercept": self.intercept,
                   "idf_word": self.word.idf_.astype(np.float32)}
        vocab_char = {}
        if self.char is not None:
            tensors["idf_char"] = self.char.idf_.astype(np.float32)
            vocab_char = _plain_vocab(self.char.vocabulary_)
        tensors = {name: np.ascontiguousarray(t) for name, t in tensors.items()}  # C order: see the module doc
        with runs.atomic_path(folder / "baseline.safetensors") as tmp:
            safetensors.numpy.save_file(tensors, str(tmp))
        runs.write_text(folder / "vocab_word.json", json.dumps(_plain_vocab(self.word.vocabulary_), ensure_ascii=False))
        runs.write_text(folder / "vocab_char.json", json.dumps(vocab_char, ensure_ascii=False))
        runs.write_json(folder / "baseline.json", {"config": self.cfg.model_dump(mode="json"), "labels": self.labels,
                                                   "layout": LAYOUT})


def _plain_vocab(vocab: dict) -> dict[str, int]:
    return {str(k): int(v) for k, v in sorted(vocab.items(), key=lambda kv: kv[1])}


def load_baseline(folder: str | Path) -> BaselineClassifier:
    """Rebuild a :class:`BaselineClassifier` saved by :meth:`BaselineClassifier.save`."""
    folder = Path(folder)
    if not (folder / "baseline.json").exists():
        raise UserError(f"{folder} holds no baseline model (baseline.json missing)")
    meta = runs.read_json(folder / "baseline.json")
    cfg = BaselineConfig.model_validate(meta["config"])
    tensors = safetensors.numpy.load_file(str(folder / "baseline.safetensors"))
    model = BaselineClassifier(cfg, meta["labels"])
    model.word = _word_vectorizer(cfg, runs.read_json(folder / "vocab_word.json"))
    model.word.idf_ = tensors["idf_word"]
    if cfg.char_ngrams:
        model.char = _char_vectorizer(cfg, runs.read_json(folder / "vocab_char.json"))
        model.char.idf_ = tensors["idf_char"]
    model.coef, model.intercept = _coefficients(tensors["coef"], meta.get("layout")), tensors["intercept"]
    return model


def _coefficients(coef: np.ndarray, layout: str | None) -> np.ndarray:
    """The (classes, features) matrix as it was fitted. Before ``layout`` was recorded, a
    multi-class matrix was written column-major: its bytes are the transpose's, row-major."""
    if layout == LAYOUT or coef.shape[0] == 1:  # one row (two classes): both orders are the same bytes
        return coef
    log.warning("baseline saved before the row-major fix: reading its %d-class coefficients column-major",
                coef.shape[0])
    return coef.reshape(coef.shape[1], coef.shape[0]).T.copy()
