"""The ``evaluate`` and ``predict`` stages of text classification.

``evaluate`` scores a run on its test split (metrics and plots into ``<run>/evaluations/test-split/``)
or on ``--data FILE``, any CSV/JSONL in the documented format (see :mod:`nlp_app.common.corpus`;
``data.text_column`` / ``data.label_column`` overrides name the columns): metrics and plots go to
``<run>/evaluations/<file stem>/``. The run's own ``metrics.json`` is train's record and stays as is.
The model is the one the run serves; ``serve.model=bert|baseline`` scores another of its models and
``serve.backend`` picks torch or ONNX Runtime for a BERT (metric keys then end in ``_<model>``,
``_onnx`` / ``_onnx-int8``, beside the served model's). Rows with an empty text or label follow
``data.on_empty`` (skipped and counted by default).
"""
from __future__ import annotations

import logging
from pathlib import Path

from nlp_app.classify.config import ClassifyConfig
from nlp_app.classify.export import classifier_for
from nlp_app.classify.scoring import score
from nlp_app.common.corpus import check_known_labels, load_splits, read_labelled, read_texts
from nlp_app.common.outputs import write_jsonl, write_scores
from shared import runs

log = logging.getLogger(__name__)
HEADLINE = ("accuracy", "macro", "roc")  # metric names shown in the summary


def evaluate(cfg: ClassifyConfig, run: Path, data: Path | None = None) -> dict:
    """Score ``run`` on its test split, or on ``data`` (written to ``evaluations/<stem>/``)."""
    # the file is read (and checked) before the model loads
    examples, split = (read_labelled(data, cfg.data), "data") if data else (load_splits(cfg.data)[0]["test"], "test")
    clf = classifier_for(cfg, run)
    if data:
        check_known_labels(examples, list(clf.labels), str(data))  # naming the file, before scoring
    parts = [clf.name] if cfg.serve.model else []
    parts += [cfg.serve.backend] if cfg.serve.backend != "torch" and clf.backend != "sklearn" else []
    tag = "_".join(parts)
    out = runs.evaluation_dir(run, data)
    values = score(clf, examples, split, out, tag=tag)
    if tag:
        values = {f"{k}_{tag}": v for k, v in values.items()}
    written = write_scores(out, values)["written"]
    return {"run": str(run), "model": clf.name, "written": written, "n": len(examples),
            "empty_rows_skipped": examples.empty_rows,
            **{k: round(v, 4) for k, v in values.items() if k.split("/")[-1].split("_")[0] in HEADLINE}}


def predict(cfg: ClassifyConfig, run: Path, input: Path, output: Path | str) -> dict:
    """Batch-score ``input`` (CSV/JSONL with ``data.text_column``, or .txt one text a line) into
    ``output`` (JSONL: text, label, probabilities; ``-`` = stdout); empty texts follow ``data.on_empty``."""
    texts = read_texts(input, cfg.data.text_column, lowercase=False, on_empty=cfg.data.on_empty,
                       column_names=cfg.data.column_names)
    clf = classifier_for(cfg, run)
    proba = clf.predict_proba(texts)
    rows = [{"text": text, "label": clf.labels[int(p.argmax())],
             "probabilities": {lab: round(float(v), 6) for lab, v in zip(clf.labels, p)}}
            for text, p in zip(texts, proba)]
    return write_jsonl(rows, output, run)
