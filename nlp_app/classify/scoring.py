"""Scoring a text classifier on labelled texts: accuracy, macro-F1, per-class precision/recall/F1,
log loss, ROC-AUC when binary; the confusion matrix (and the ROC curve when binary) as plots."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from nlp_app.common.corpus import check_known_labels
from nlp_app.common.normalize import Examples
from shared import metrics, plots


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
