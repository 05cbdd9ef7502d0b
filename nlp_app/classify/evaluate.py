"""Scoring a trained classifier: the ``evaluate`` and ``predict`` stages.

Metrics: accuracy, macro-F1, per-class precision/recall/F1, ROC-AUC when binary; plots: the
confusion matrix (and the ROC curve when binary). ``evaluate --data FILE`` scores any CSV/JSONL
in the documented format (see :mod:`nlp_app.data`).
"""
from __future__ import annotations

import io
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

from nlp_app.config import DataConfig
from nlp_app.data import check_known_labels, load_splits, read_labelled, read_texts
from nlp_app.inference import load_classifier
from nlp_app.preprocess import Examples
from shared import metrics, plots, runs
from shared.errors import UserError

log = logging.getLogger(__name__)


def score(clf, data: Examples, split: str, plot_dir: Path | None = None, tag: str = "") -> dict[str, float]:
    """``split/metric`` scores of ``clf`` on ``data`` (labels must be in ``clf.labels``);
    plots go to ``plot_dir`` when given."""
    labels = list(clf.labels)
    check_known_labels(data, labels, f"the {split} data")
    y = np.array([labels.index(lab) for lab in data.labels])
    t0 = time.perf_counter()
    proba = clf.predict_proba(data.texts)
    seconds = time.perf_counter() - t0
    values = metrics.multiclass_classification(y, proba, labels)
    values["texts_per_second"] = len(y) / max(seconds, 1e-9)
    if plot_dir is not None:
        suffix = f"_{tag}" if tag else ""
        cm = metrics.confusion(y, proba.argmax(1), len(labels))
        plots.confusion_matrix(cm, labels, plot_dir / f"confusion_{split}{suffix}.png",
                               title=f"Confusion matrix ({split}{', ' + tag if tag else ''})")
        if len(labels) == 2 and len(set(y.tolist())) == 2:
            plots.roc_curves(y, {tag or "model": proba[:, 1]}, plot_dir / f"roc_{split}{suffix}.png")
    return metrics.with_split(split, values)


def _run_arg(args, default_name: str) -> Path:
    return runs.resolve_run(args.run or runs.task_dir("nlp_app", default_name) / "latest")


def evaluate(run: Path, data_file: str | None = None, backend: str = "torch") -> dict:
    """Score ``run`` on its test split, or on ``data_file``; merges into the run's metrics.json."""
    cfg = runs.load_run_config(run)
    data_cfg = DataConfig.model_validate(cfg["data"])
    clf = load_classifier(run, backend, batch_size=cfg.get("eval", {}).get("batch_size", 64))
    if data_file:
        data = read_labelled(data_file, data_cfg)
        split = "data"
    else:
        splits, _, _ = load_splits(data_cfg)
        data, split = splits["test"], "test"
    tag = "" if backend in ("torch", "sklearn") or clf.backend == "sklearn" else backend
    values = score(clf, data, split, run, tag=tag)
    if tag:
        values = {f"{k}_{tag}": v for k, v in values.items()}
    if data_file:
        runs.write_json(run / f"metrics_{Path(data_file).stem}.json", values)
    else:
        runs.update_metrics(run, values)
    return {"run": str(run), "n": len(data), **{k: round(v, 4) for k, v in values.items()
                                                 if k.split("/")[-1].split("_")[0] in ("accuracy", "macro", "roc")}}


def evaluate_stage(args) -> dict:
    from nlp_app.config import load_recipe

    recipe = load_recipe(args.config, args.overrides)
    return evaluate(_run_arg(args, recipe.name), args.data, recipe.serve.backend)


def predict_stage(args) -> dict:
    """Batch-score ``--input`` (CSV/JSONL with the text column, or .txt) into ``--output``
    (JSONL: text, label, probabilities; '-' or none = stdout)."""
    from nlp_app.config import load_recipe

    recipe = load_recipe(args.config, args.overrides)
    if not args.input:
        raise UserError("predict needs --input FILE (CSV/JSONL with a text column, or .txt one text a line)")
    run = _run_arg(args, recipe.name)
    clf = load_classifier(run, recipe.serve.backend, recipe.eval.batch_size, recipe.serve.threads)
    texts = read_texts(args.input, recipe.data.text_column, lowercase=False)
    proba = clf.predict_proba(texts)
    buf = io.StringIO()
    for text, p in zip(texts, proba):
        record = {"text": text, "label": clf.labels[int(p.argmax())],
                  "probabilities": {lab: round(float(v), 6) for lab, v in zip(clf.labels, p)}}
        buf.write(json.dumps(record, ensure_ascii=False) + "\n")
    if args.output and args.output != "-":
        runs.write_text(args.output, buf.getvalue())
        return {"run": str(run), "n": len(texts), "output": args.output}
    sys.stdout.write(buf.getvalue())
    return {}
