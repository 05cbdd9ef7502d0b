"""The NER models, by ``model.encoder``: ``bert`` (BERT token classification, from scratch or
``model.pretrained``) or ``bilstm`` / ``cnn`` (the character tagger of
:mod:`nlp_app.ner.char_model`); either with a CRF layer on top when ``model.crf`` is set
(:mod:`nlp_app.ner.crf`: the layer is the model's ``crf`` attribute, so its scores train,
checkpoint and resume with the rest). Also the training loop's task (loss, validation entity F1)
and what a run keeps of its model::

    bert:          config.json  model.safetensors  tokenizer files  labels.json  [crf.json]
    bilstm / cnn:  tagger.json  model.safetensors  tokenizer files  labels.json  [crf.json]
"""
from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from nlp_app.common import token_tasks
from nlp_app.common.bert import pad_sequences
from nlp_app.common.runners import load_model as load_bert
from nlp_app.common.tokenization import character_tokenizer, load_tokenizer
from nlp_app.ner.char_model import CharTagger
from nlp_app.ner.crf import CRF, masked_scores, viterbi
from nlp_app.ner.features import IGNORE
from shared import distributed, metrics, runs
from shared.checkpoint import load_weights, unwrap_model
from shared.device import seed_everything
from shared.errors import UserError

HEAD = "token_classification"
CRF_FILE = "crf.json"
ARCH_FILE = "tagger.json"  # the character tagger's constructor arguments


def build_model(model_cfg, tokenizer, labels: Sequence[str], seed: int):
    """A fresh (or pre-trained) tagger over ``tokenizer``'s vocabulary, with a CRF if configured."""
    if model_cfg.encoder == "bert":
        model = token_tasks.build_model(HEAD, model_cfg, tokenizer, labels, seed)
    else:
        seed_everything(seed)
        model = CharTagger(len(tokenizer), len(labels), model_cfg.encoder, model_cfg.embedding_dim,
                           model_cfg.hidden_size, model_cfg.num_layers, model_cfg.dropout,
                           model_cfg.word_features, model_cfg.word_feature_dim)
    if model_cfg.crf:
        model.crf = CRF(labels)
    return model


def emissions(model, batch: dict) -> torch.Tensor:
    """Per-tag scores ``(B, T, L)`` of either model kind."""
    out = model(**{k: v for k, v in batch.items() if k != "labels"})
    return out if isinstance(out, torch.Tensor) else out.logits


def compact(scores: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The scored positions (labels not :data:`IGNORE`) moved to the left of each row, in order:
    ``(emissions, tags, mask)`` as :meth:`CRF.nll` wants them."""
    keep = labels != IGNORE
    order = torch.argsort((~keep).int(), dim=1, stable=True)[:, :max(int(keep.sum(1).max()), 1)]
    em = scores.gather(1, order.unsqueeze(2).expand(-1, -1, scores.size(2)))
    return em, labels.gather(1, order).clamp(min=0), keep.gather(1, order)


def decoder(crf_params: dict | None):
    """``decode(emissions (T, L)) -> tag ids``: Viterbi over valid sequences with a CRF, else argmax."""
    if crf_params is None:
        return lambda scores: np.asarray(scores).argmax(-1).tolist()
    scores = masked_scores(crf_params)
    return lambda em: viterbi(em, scores)


class NERTask:
    """What :func:`shared.training.fit` needs: the loss and the validation entity F1."""

    def __init__(self, labels: Sequence[str]):
        self.labels = list(labels)

    def loss(self, model, batch):
        inner = unwrap_model(model)  # under torchrun the model arrives wrapped in DDP
        crf = getattr(inner, "crf", None)
        if crf is None and not isinstance(inner, CharTagger):
            return model(**batch).loss  # BERT's own token-classification loss
        scores = emissions(model, batch)
        if crf is None:
            return F.cross_entropy(scores.flatten(0, 1).float(), batch["labels"].flatten(), ignore_index=IGNORE)
        return crf.nll(*compact(scores, batch["labels"]))

    def evaluate(self, model, loader) -> dict[str, float]:
        crf = getattr(unwrap_model(model), "crf", None)
        decode = decoder(None if crf is None else crf.params())
        y_true, y_pred = [], []
        for batch in loader:
            scores = emissions(model, batch).float().cpu().numpy()
            for s, g in zip(scores, batch["labels"].cpu().numpy()):
                keep = g != IGNORE
                y_true.append([self.labels[i] for i in g[keep]])
                y_pred.append([self.labels[i] for i in decode(s[keep])])
        return metrics.entity_f1(token_tasks.gather(y_true), token_tasks.gather(y_pred))


def collate(items: Sequence[dict]) -> dict[str, torch.Tensor]:
    """:func:`nlp_app.common.token_tasks.collate` plus the word-position input when present."""
    batch = token_tasks.collate(items)
    if "word_pos" in items[0]:
        batch["word_pos"] = pad_sequences([it["word_pos"] for it in items], 0)[0]
    return batch


def save_model_files(run: Path, model, tokenizer, labels: Sequence[str]) -> None:
    """Everything of the model but the weights (``fit`` wrote ``model.safetensors``); rank 0 only."""
    if not distributed.is_main_process():
        return
    if isinstance(model, CharTagger):
        tokenizer.save_pretrained(str(run))
        runs.write_json(run / "labels.json", list(labels))
        runs.write_json(run / ARCH_FILE, model.arch)
    else:
        token_tasks.save_model_files(run, model, tokenizer, labels)
    if getattr(model, "crf", None) is not None:
        model.crf.to_json(run / CRF_FILE)


def load_model(run: Path) -> torch.nn.Module:
    """The run's encoder in eval mode, returning per-tag scores (the CRF's scores are read from
    ``crf.json`` by the decoder, so every backend decodes alike)."""
    run = Path(run)
    if (run / ARCH_FILE).exists():
        model = CharTagger(**runs.read_json(run / ARCH_FILE))
        if (run / CRF_FILE).exists():  # its scores are in the weights file too
            model.crf = CRF(runs.read_json(run / "labels.json"))
        load_weights(model, run / "model.safetensors")
        return model.eval()
    if not (run / "config.json").exists():
        raise UserError(f"{run} has no NER model (tagger.json or config.json): train it first")
    with quiet_transformers():
        return load_bert(run, HEAD)


def load_run_tokenizer(run: Path):
    """The tokenizer saved in the run (a character tagger's run has no ``config.json``, so it is
    read as a tokenizer directory, not as a model's). A run saved before its tokenizer normalised
    and cut text into characters itself (:func:`character_tokenizer`) gets both here, in memory."""
    if (Path(run) / ARCH_FILE).exists():
        from transformers import AutoTokenizer

        return character_tokenizer(AutoTokenizer.from_pretrained(str(run)))
    return character_tokenizer(load_tokenizer(str(run)))


@contextlib.contextmanager
def quiet_transformers():
    """A BERT-CRF run's weights file also holds ``crf.*``, which ``from_pretrained`` reports as
    unused: expected, so not shown."""
    import transformers

    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()
    try:
        yield
    finally:
        transformers.logging.set_verbosity(verbosity)
