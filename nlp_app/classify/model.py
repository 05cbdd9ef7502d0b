"""The text classifier: built for training (:func:`build_classifier`), and loaded back from a run
behind one interface for evaluate, predict, serve, compare and the benchmarks::

    clf = load_classifier(run_dir, backend="torch")   # or "onnx", "onnx-int8"; baselines ignore it
    proba = clf.predict_proba(["质量很好", "太差了"])  # (n, n_labels), rows sum to 1
    clf.labels                                         # the sorted label map saved with the model

A BERT runs through :mod:`shared.inference` (torch or ONNX Runtime; ``export`` writes a missing
ONNX file on first use). Texts are normalised here, as in training, so the served model and the
offline scores are the same code path.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from nlp_app.classify.baseline import load_baseline
from nlp_app.common.bert import bert_config, from_pretrained
from nlp_app.common.config import BertArch
from nlp_app.common.normalize import normalize_text
from nlp_app.common.runners import bert_runner, pad_inputs
from shared import runs
from shared.errors import UserError

INPUTS = ("input_ids", "attention_mask")  # what the classifier's ONNX graph takes


def build_classifier(arch: BertArch, labels: list[str], tokenizer):
    """``BertForSequenceClassification`` (or the pretrained family's equivalent) for ``labels``."""
    from transformers import AutoModelForSequenceClassification, BertForSequenceClassification

    label_kwargs = {"num_labels": len(labels), "id2label": dict(enumerate(labels)),
                    "label2id": {name: i for i, name in enumerate(labels)}}
    if arch.pretrained:
        model = from_pretrained(AutoModelForSequenceClassification, arch, **label_kwargs)
    else:
        model = BertForSequenceClassification(bert_config(arch, len(tokenizer), **label_kwargs))
    if model.config.vocab_size < len(tokenizer):
        raise UserError(f"tokenizer has {len(tokenizer)} tokens but the model only {model.config.vocab_size}")
    return model


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class BertClassifier:
    """Tokenise → length-sorted batches → logits (torch or ONNX Runtime) → probabilities."""

    def __init__(self, run: Path, backend: str = "torch", batch_size: int = 64, threads: int | None = None,
                 export: Callable[[], object] | None = None):
        from transformers import AutoTokenizer

        self.run, self.backend, self.batch_size = run, backend, batch_size
        self.tokenizer = AutoTokenizer.from_pretrained(str(run))
        config = json.loads((run / "config.json").read_text(encoding="utf-8"))
        self.labels = [config["id2label"][str(i)] for i in range(len(config["id2label"]))]
        saved = runs.load_run_config(run)
        self.max_length = int(saved["model"]["max_length"])
        self.lowercase = bool(saved["data"].get("lowercase", True))
        self.runner = bert_runner(run, "sequence_classification", backend, export=export, threads=threads)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, len(self.labels)))
        clean = [normalize_text(t, self.lowercase) or " " for t in texts]
        ids = self.tokenizer(clean, truncation=True, max_length=self.max_length)["input_ids"]
        order = np.argsort([len(x) for x in ids], kind="stable")  # similar lengths share a batch
        out = np.zeros((len(ids), len(self.labels)))
        for start in range(0, len(ids), self.batch_size):
            idx = order[start: start + self.batch_size]
            batch = pad_inputs([{"input_ids": ids[i], "attention_mask": [1] * len(ids[i])} for i in idx], INPUTS)
            (logits,) = self.runner(batch)
            out[idx] = _softmax(logits.astype(np.float64))
        return out


class BaselineRunClassifier:
    def __init__(self, run: Path):
        self.model = load_baseline(run)
        self.labels = self.model.labels
        self.lowercase = bool(runs.load_run_config(run)["data"].get("lowercase", True))
        self.backend = "sklearn"

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, len(self.labels)))
        return self.model.predict_proba([normalize_text(t, self.lowercase) for t in texts])


def load_classifier(run: str | Path, backend: str = "torch", batch_size: int = 64, threads: int | None = None,
                    export: Callable[[], object] | None = None):
    """The classifier saved in ``run`` (a baseline or a BERT run); ``export`` writes a missing
    ONNX file (the classify task's export stage bound to this run)."""
    run = runs.resolve_run(run)
    if (run / "baseline.json").exists():
        return BaselineRunClassifier(run)
    if (run / "config.json").exists() and (run / "model.safetensors").exists():
        return BertClassifier(run, backend, batch_size, threads, export)
    raise UserError(f"{run} holds no trained classifier (train first)")
