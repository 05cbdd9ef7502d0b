"""The ``evaluate`` and ``predict`` stages of NER.

``evaluate`` scores a run's tags at entity level (seqeval: precision, recall, F1, per type) on its
test split (``<run>/evaluations/test-split/metrics.json``) or on ``--data FILE``, a BIO/BMES file in
``data.scheme`` or a JSON span file (CLUENER, doccano, Label Studio: :mod:`nlp_app.ner.spans`)
(``<run>/evaluations/<file stem>/metrics.json``). ``predict`` tags one text per line and writes
``{"text", "entities"}`` JSON lines.
"""
from __future__ import annotations

from pathlib import Path

from nlp_app.common.outputs import read_lines, write_jsonl, write_scores
from nlp_app.ner.config import NERConfig
from nlp_app.ner.data import load_splits, read_sentences
from nlp_app.ner.tagger import load_tagger
from shared import metrics, runs


def evaluate(cfg: NERConfig, run: Path, data: Path | None = None) -> dict:
    """Score ``run`` on its test split, or on ``data`` (a BIO/BMES file in ``data.scheme``, or a JSON
    span file). Entity types the run does not know count as missed, like any wrong type."""
    sentences = read_sentences(data, cfg.data.scheme) if data else load_splits(cfg)[0]["test"]
    pred = load_tagger(cfg, run).tag([t for t, _ in sentences])
    split = "data" if data else "test"
    values = metrics.with_split(split, metrics.entity_f1([tags for _, tags in sentences], pred))
    written = write_scores(runs.evaluation_dir(run, data), values)["written"]
    return {"run": str(run), "written": written, "sentences": len(sentences),
            **{f"{split}/{k}": values[f"{split}/{k}"] for k in ("precision", "recall", "f1")}}


def predict(cfg: NERConfig, run: Path, input: Path | str, output: Path | str) -> dict:
    """One text per line in, one JSON line ``{"text", "entities"}`` per text out."""
    texts = read_lines(input)
    found = load_tagger(cfg, run).entities(texts)
    return write_jsonl([{"text": t, "entities": e} for t, e in zip(texts, found)], output, run)
