"""The text classifier: built for training (:func:`build_classifier`), and loaded back from a run
behind one interface for evaluate, predict, serve, compare and the benchmarks::

    clf = load_classifier(run_dir, backend="torch")   # or "onnx", "onnx-int8"; the baseline ignores it
    proba = clf.predict_proba(["质量很好", "太差了"])  # (n, n_labels), rows sum to 1
    clf.labels, clf.name                               # the sorted label map saved with the model; baseline | bert

A run keeps each model it trained in ``models/<name>/`` (``baseline``: TF-IDF + LR files; ``bert``: a
Hugging Face model directory) and names the one it serves in ``selection.json``; ``model=`` picks
another (``serve.model``). A BERT runs through :mod:`shared.inference` (torch or ONNX Runtime;
``export`` writes a missing ONNX file on first use). The BERT's tokenizer normalises the text itself
(:func:`nlp_app.common.tokenization.normalizing_tokenizer`, saved in its ``tokenizer.json``), so
``transformers.pipeline`` on ``models/bert`` sees what the server sees; the baseline normalises in
Python (:func:`nlp_app.common.normalize.normalize_text`), as its training data was.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from nlp_app.classify.baseline import BaselineClassifier, load_baseline
from nlp_app.common.bert import bert_config, from_pretrained
from nlp_app.common.config import BertArch
from nlp_app.common.normalize import normalize_text
from nlp_app.common.runners import bert_runner, pad_inputs
from nlp_app.common.tokenization import normalizing_tokenizer
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

    name = "bert"

    def __init__(self, folder: Path, run_config: dict, backend: str = "torch", batch_size: int = 64,
                 threads: int | None = None, export: Callable[[], object] | None = None):
        from transformers import AutoTokenizer

        self.folder, self.backend, self.batch_size = folder, backend, batch_size
        # a run saved before the tokenizer normalised gets the same normaliser here, in memory
        lowercase = bool(run_config["data"].get("lowercase", True))
        self.tokenizer = normalizing_tokenizer(AutoTokenizer.from_pretrained(str(folder)), lowercase)
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        self.labels = [config["id2label"][str(i)] for i in range(len(config["id2label"]))]
        self.max_length = int(run_config["model"]["max_length"])
        self.runner = bert_runner(folder, "sequence_classification", backend, export=export, threads=threads)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, len(self.labels)))
        ids = self.tokenizer(list(texts), truncation=True, max_length=self.max_length)["input_ids"]
        order = np.argsort([len(x) for x in ids], kind="stable")  # similar lengths share a batch
        out = np.zeros((len(ids), len(self.labels)))
        for start in range(0, len(ids), self.batch_size):
            idx = order[start: start + self.batch_size]
            batch = pad_inputs([{"input_ids": ids[i], "attention_mask": [1] * len(ids[i])} for i in idx], INPUTS)
            (logits,) = self.runner(batch)
            out[idx] = _softmax(logits.astype(np.float64))
        return out


class BaselineRunClassifier:
    """The saved TF-IDF + LR baseline behind the same interface (``backend`` is always sklearn)."""

    name, backend = "baseline", "sklearn"

    def __init__(self, folder: Path, run_config: dict):
        self.folder = folder
        self.model: BaselineClassifier = load_baseline(folder)
        self.labels = self.model.labels
        self.lowercase = bool(run_config["data"].get("lowercase", True))

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, len(self.labels)))
        return self.model.predict_proba([normalize_text(t, self.lowercase) for t in texts])


SELECTION = "selection.json"  # {"served": name, "by": "valid/<metric>", "valid": {...}, ...}


def served_model(run: Path) -> str | None:
    """The name of the model ``train`` selected in ``run`` (None: a run from before ``models/``)."""
    path = run / SELECTION
    return runs.read_json(path)["served"] if path.exists() else None


def model_dir(run: str | Path, model: str | None = None) -> Path:
    """The folder of ``model`` (default: the served one) in ``run``. A run trained before each model
    got its own folder keeps its one model at the top: that folder is the run itself."""
    run = runs.resolve_run(run)
    name = model or served_model(run)
    if name is None:  # the older layout: one model in the run folder
        return run
    folder = run / "models" / name
    if not folder.is_dir():
        trained = sorted(p.name for p in (run / "models").iterdir()) if (run / "models").is_dir() else []
        raise UserError(f"{run} has no {name} model (it trained {', '.join(trained) or 'none'}); "
                        "drop serve.model or name one of those")
    return folder


def load_classifier(run: str | Path, backend: str = "torch", batch_size: int = 64, threads: int | None = None,
                    export: Callable[[], object] | None = None, model: str | None = None):
    """The classifier ``model`` (default: the served one) of ``run``; ``export`` writes a missing
    ONNX file (the classify task's export stage bound to this run)."""
    run = runs.resolve_run(run)
    folder, config = model_dir(run, model), runs.load_run_config(run)
    if (folder / "baseline.json").exists():
        return BaselineRunClassifier(folder, config)
    if (folder / "config.json").exists() and (folder / "model.safetensors").exists():
        return BertClassifier(folder, config, backend, batch_size, threads, export)
    raise UserError(f"{folder} holds no trained classifier (train first)")
