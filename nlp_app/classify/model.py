"""Trained text classifiers loaded back from a run, behind one interface::

    clf = load_classifier(run_dir, backend="torch")   # or "onnx", "onnx-int8"; baselines ignore it
    proba = clf.predict_proba(["质量很好", "太差了"])  # (n, n_labels), rows sum to 1
    clf.labels                                         # the sorted label map saved with the model

``evaluate``, ``predict``, ``serve`` and the benchmarks all go through this, so the served
model and the offline scores are the same code path. Texts are normalised here, as in training.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from nlp_app.baseline import load_baseline
from nlp_app.bert import pad_sequences
from nlp_app.preprocess import normalize_text
from shared import runs
from shared.errors import UserError

BACKENDS = ("torch", "onnx", "onnx-int8")
ONNX_FILES = {"onnx": "model.onnx", "onnx-int8": "model.int8.onnx"}


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class BertClassifier:
    """Tokenise → length-sorted batches → logits (torch or ONNX Runtime) → probabilities."""

    def __init__(self, run: Path, backend: str = "torch", batch_size: int = 64, threads: int | None = None):
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        if backend not in BACKENDS:
            raise UserError(f"unknown backend {backend!r}; use one of {BACKENDS}")
        self.run, self.backend, self.batch_size = run, backend, batch_size
        self.tokenizer = AutoTokenizer.from_pretrained(str(run))
        config = json.loads((run / "config.json").read_text(encoding="utf-8"))
        self.labels = [config["id2label"][str(i)] for i in range(len(config["id2label"]))]
        self.max_length = int(runs.load_run_config(run)["model"]["max_length"])
        self.lowercase = bool(runs.load_run_config(run)["data"].get("lowercase", True))
        if threads:
            torch.set_num_threads(threads)
        if backend == "torch":
            self.model = AutoModelForSequenceClassification.from_pretrained(str(run)).eval()
            self.session = None
        else:
            from shared.onnx_export import OnnxSession

            path = run / ONNX_FILES[backend]
            if not path.exists():
                raise UserError(f"{path} not found: run `python -m nlp_app export --run {run}` first")
            self.session, self.model = OnnxSession(path, threads=threads), None

    def logits(self, input_ids: list[list[int]]) -> np.ndarray:
        ids, mask = pad_sequences(input_ids, self.tokenizer.pad_token_id or 0)
        if self.session is not None:
            return self.session.run({"input_ids": ids.numpy(), "attention_mask": mask.numpy()})[0]
        with torch.inference_mode():
            return self.model(input_ids=ids, attention_mask=mask).logits.float().numpy()

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, len(self.labels)))
        clean = [normalize_text(t, self.lowercase) or " " for t in texts]
        ids = self.tokenizer(clean, truncation=True, max_length=self.max_length)["input_ids"]
        order = np.argsort([len(x) for x in ids], kind="stable")  # similar lengths share a batch
        out = np.zeros((len(ids), len(self.labels)))
        for start in range(0, len(ids), self.batch_size):
            idx = order[start: start + self.batch_size]
            out[idx] = _softmax(self.logits([ids[i] for i in idx]).astype(np.float64))
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


def load_classifier(run: str | Path, backend: str = "torch", batch_size: int = 64, threads: int | None = None):
    """The classifier saved in ``run`` (a baseline or a BERT run)."""
    run = runs.resolve_run(run)
    if (run / "baseline.json").exists():
        return BaselineRunClassifier(run)
    if (run / "config.json").exists() and (run / "model.safetensors").exists():
        return BertClassifier(run, backend, batch_size, threads)
    raise UserError(f"{run} holds no trained classifier (train first)")
