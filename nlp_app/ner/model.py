"""The NER model's pieces around the BERT token-classification head: encoding token lists (each
token's tag on its first sub-token), the training loop's task (loss, validation entity F1), and
tagging texts with a runner (:mod:`nlp_app.common.runners`: torch or ONNX Runtime), texts longer
than the model's window in chunks."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from nlp_app.common import token_tasks
from nlp_app.common.normalize import to_half_width
from nlp_app.common.runners import run_batches
from nlp_app.ner.data import Sentence
from shared import metrics

HEAD = "token_classification"
IGNORE = -100  # label of special tokens and continuation sub-tokens: not scored, not trained


def encode(sentences: Sequence[Sentence] | Sequence[list[str]], tokenizer, label2id: dict[str, int] | None,
           max_length: int) -> list[dict]:
    """Token lists (+ tags) → model inputs; each token's tag goes on its first sub-token, every other
    position is :data:`IGNORE`. Also returns ``word_ids`` to map predictions back to tokens."""
    # half-width forms as in pre-training (a one-to-one map: one token stays one token)
    token_lists = [[to_half_width(t) for t in (s[0] if isinstance(s, tuple) else s)] for s in sentences]
    enc = tokenizer(token_lists, is_split_into_words=True, truncation=True, max_length=max_length)
    out = []
    for i, sent in enumerate(sentences):
        word_ids = enc.word_ids(i)
        item = {"input_ids": enc["input_ids"][i], "attention_mask": enc["attention_mask"][i],
                "token_type_ids": enc["token_type_ids"][i], "word_ids": word_ids}
        if label2id is not None and isinstance(sent, tuple):
            tags, prev, labels = sent[1], None, []
            for w in word_ids:
                labels.append(IGNORE if w is None or w == prev else label2id.get(tags[w], 0))
                prev = w
            item["labels"] = labels
        out.append(item)
    return out


def tags_from_logits(logits: np.ndarray, word_ids: Sequence[int | None], n_tokens: int, id2label: Sequence[str]) -> list[str]:
    """Per-token tags from one sequence's logits: the first sub-token's argmax; tokens that got no
    sub-token (truncated, or whitespace) are ``O``."""
    tags = ["O"] * n_tokens
    prev = None
    pred = np.asarray(logits).argmax(-1)
    for pos, w in enumerate(word_ids):
        if w is not None and w != prev:
            tags[w] = id2label[int(pred[pos])]
        prev = w
    return tags


class NERTask:
    """What :func:`shared.training.fit` needs: the loss and the validation entity F1."""

    def __init__(self, labels: Sequence[str]):
        self.labels = list(labels)

    def loss(self, model, batch):
        return model(**batch).loss

    def evaluate(self, model, loader) -> dict[str, float]:
        y_true, y_pred = [], []
        for batch in loader:
            logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits.float()
            pred, gold = logits.argmax(-1).cpu().numpy(), batch["labels"].cpu().numpy()
            for p, g in zip(pred, gold):
                keep = g != IGNORE
                y_true.append([self.labels[i] for i in g[keep]])
                y_pred.append([self.labels[i] for i in p[keep]])
        y_true, y_pred = token_tasks.gather(y_true), token_tasks.gather(y_pred)
        return metrics.entity_f1(y_true, y_pred)


def predict_tags(runner, tokenizer, token_lists: Sequence[list[str]], labels: Sequence[str], max_length: int,
                 batch_size: int = 32) -> list[list[str]]:
    """BIO tags for each token list; lists longer than the model's window are cut into chunks."""
    step = max_length - 2
    chunks, owner = [], []
    for i, tokens in enumerate(token_lists):
        for start in range(0, max(len(tokens), 1), step):
            chunks.append(tokens[start:start + step])
            owner.append(i)
    feats = encode(chunks, tokenizer, None, max_length)
    outputs = run_batches(runner, feats, batch_size)
    out: list[list[str]] = [[] for _ in token_lists]
    for i, chunk, feat, (logits,) in zip(owner, chunks, feats, outputs):
        out[i].extend(tags_from_logits(logits, feat["word_ids"], len(chunk), labels))
    return out


def entities(text: str, tags: Sequence[str]) -> list[dict]:
    """``[{"type", "text", "start", "end"}]`` (character offsets, ``end`` exclusive) from per-character tags."""
    from seqeval.metrics.sequence_labeling import get_entities

    return [{"type": t, "text": text[a:b + 1], "start": a, "end": b + 1} for t, a, b in get_entities(list(tags))]
