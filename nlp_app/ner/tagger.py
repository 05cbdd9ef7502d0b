"""A trained NER run, ready to tag: its model on ``serve.backend`` (torch, onnx or onnx-int8, one
:func:`shared.inference.build_runner` underneath; a missing ONNX file is exported on first use),
its tokenizer and tags, and its decoder (CRF Viterbi over valid sequences, else argmax). What
``evaluate``, ``predict``, ``serve`` and the Python API all use::

    tagger = load_tagger(cfg, run)
    tags = tagger.tag([list("江泽民在北京。")])        # [['B-PER', 'I-PER', 'I-PER', 'O', 'B-LOC', …]]
    found = tagger.entities(["江泽民在北京。"])       # [[{'type': 'PER', 'text': '江泽民', 'start': 0, 'end': 3}, …]]

Texts longer than the model's window are tagged in chunks.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from nlp_app.common.runners import run_batches
from nlp_app.ner.config import NERConfig
from nlp_app.ner.crf import load_params
from nlp_app.ner.export import export
from nlp_app.ner.features import encode, first_subtokens, input_names
from nlp_app.ner.model import CRF_FILE, decoder, emissions, load_model, load_run_tokenizer
from shared import runs
from shared.errors import UserError
from shared.inference import build_runner


class Tagger:
    """Token lists in, BIO tags out (see the module docstring)."""

    def __init__(self, runner, tokenizer, labels: Sequence[str], crf_params: dict | None, cfg: NERConfig):
        self.runner, self.tokenizer, self.labels = runner, tokenizer, list(labels)
        self.decode = decoder(crf_params)
        self.names = input_names(cfg.model)
        self.max_length, self.batch_size = cfg.model.max_length, cfg.eval.batch_size
        self.word_features = cfg.model.encoder != "bert" and cfg.model.word_features

    def tag(self, token_lists: Sequence[list[str]]) -> list[list[str]]:
        """BIO tags for each token list; tokens that got no sub-token (whitespace) are ``O``."""
        return [[t or "O" for t in tags] for tags in self._tags(token_lists)]

    def _tags(self, token_lists: Sequence[list[str]]) -> list[list[str | None]]:
        """:meth:`tag`, with ``None`` for the tokens that got no sub-token."""
        step = self.max_length - 2
        chunks, owner = [], []
        for i, tokens in enumerate(token_lists):
            for start in range(0, max(len(tokens), 1), step):
                chunks.append(tokens[start:start + step])
                owner.append(i)
        feats = encode(chunks, self.tokenizer, None, self.max_length, self.word_features)
        outputs = run_batches(self.runner, feats, self.batch_size, names=self.names)
        out: list[list[str | None]] = [[] for _ in token_lists]
        for i, chunk, feat, (scores,) in zip(owner, chunks, feats, outputs):
            tags: list[str | None] = [None] * len(chunk)
            positions, tokens = first_subtokens(feat["word_ids"])
            for w, t in zip(tokens, self.decode(scores[positions])):
                tags[w] = self.labels[t]
            out[i].extend(tags)
        return out

    def entities(self, texts: Sequence[str]) -> list[list[dict]]:
        """The entities of each text (see :func:`entities`)."""
        return [entities(t, tags) for t, tags in zip(texts, self._tags([list(t) for t in texts]))]


def entities(text: str, tags: Sequence[str | None]) -> list[dict]:
    """``[{"type", "text", "start", "end"}]`` (character offsets, ``end`` exclusive) from per-character
    tags. A character the model never saw (tag ``None``: whitespace, control characters, which the
    tokenizer drops) is skipped, so an entity spans it when the tags on either side continue it
    (``B-PER``, space, ``I-PER``): the model read those characters as neighbours, and
    ``transformers.pipeline(..., aggregation_strategy="simple")`` groups them so too."""
    from seqeval.metrics.sequence_labeling import get_entities

    seen = [i for i, tag in enumerate(tags) if tag is not None]
    return [{"type": t, "text": text[seen[a]:seen[b] + 1], "start": seen[a], "end": seen[b] + 1}
            for t, a, b in get_entities([tags[i] for i in seen])]


def load_tagger(cfg: NERConfig, run: Path) -> Tagger:
    """The run's tagger on ``serve.backend`` (``serve.threads`` caps the CPU threads)."""
    run = Path(run)
    if not (run / "labels.json").exists():
        raise UserError(f"{run} has no labels.json: it is not a finished NER run")
    runner = build_runner(run, cfg.serve.backend, load_model=lambda: load_model(run),
                          export=lambda: export(cfg, run), forward=emissions, threads=cfg.serve.threads)
    return Tagger(runner, load_run_tokenizer(run), runs.read_json(run / "labels.json"),
                  load_params(run / CRF_FILE), cfg)

