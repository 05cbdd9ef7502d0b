"""Metrics for every app, as thin pure wrappers over scikit-learn (and, in the apps that need
them, torchmetrics / seqeval). Keys come back as ``metric`` names; :func:`with_split` prefixes
them as ``split/metric`` for ``metrics.json``. No hand-rolled metric where a library has one.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
from sklearn import metrics as skm


def with_split(split: str, values: Mapping[str, float]) -> dict[str, float]:
    """``{"auc": .9}`` → ``{"test/auc": .9}``."""
    return {f"{split}/{k}": _num(v) for k, v in values.items()}


def _num(v):
    return float(v) if isinstance(v, (int, float, np.floating, np.integer)) else v


def binary_classification(y_true: Sequence[int], p_pos: Sequence[float], threshold: float = 0.5) -> dict[str, float]:
    """ROC-AUC, PR-AUC, log-loss and Brier from the positive-class probability; accuracy, F1,
    precision and recall at ``threshold``. ``y_true`` holds 0/1."""
    y = np.asarray(y_true).astype(int)
    p = np.clip(np.asarray(p_pos, dtype=float), 1e-7, 1 - 1e-7)
    pred = (p >= threshold).astype(int)
    out = {
        "accuracy": skm.accuracy_score(y, pred),
        "f1": skm.f1_score(y, pred, zero_division=0),
        "precision": skm.precision_score(y, pred, zero_division=0),
        "recall": skm.recall_score(y, pred, zero_division=0),
        "log_loss": skm.log_loss(y, p, labels=[0, 1]),
        "brier": skm.brier_score_loss(y, p),
    }
    if len(np.unique(y)) == 2:
        out["roc_auc"] = skm.roc_auc_score(y, p)
        out["pr_auc"] = skm.average_precision_score(y, p)
    return {k: float(v) for k, v in out.items()}


def multiclass_classification(
    y_true: Sequence[int], proba: np.ndarray, labels: Sequence[str] | None = None, top_k: Sequence[int] = ()
) -> dict[str, float]:
    """Accuracy, macro/weighted F1, log-loss, top-k accuracy, per-class P/R/F1 (keys
    ``<label>/precision`` …), and ROC-AUC when there are exactly two classes.
    ``proba`` is ``(n, n_classes)``; ``y_true`` holds class indices."""
    y = np.asarray(y_true).astype(int)
    proba = np.asarray(proba, dtype=float)
    n_classes = proba.shape[1]
    classes = list(range(n_classes))
    pred = proba.argmax(axis=1)
    out: dict[str, float] = {
        "accuracy": skm.accuracy_score(y, pred),
        "macro_f1": skm.f1_score(y, pred, average="macro", labels=classes, zero_division=0),
        "weighted_f1": skm.f1_score(y, pred, average="weighted", labels=classes, zero_division=0),
        "log_loss": skm.log_loss(y, np.clip(proba, 1e-7, 1), labels=classes),
    }
    for k in top_k:
        if 1 < k < n_classes:
            out[f"top{k}_accuracy"] = skm.top_k_accuracy_score(y, proba, k=k, labels=classes)
    if n_classes == 2 and len(np.unique(y)) == 2:
        out["roc_auc"] = skm.roc_auc_score(y, proba[:, 1])
    p, r, f, s = skm.precision_recall_fscore_support(y, pred, labels=classes, zero_division=0)
    names = list(labels) if labels is not None else [str(c) for c in classes]
    for i, name in enumerate(names):
        out[f"{name}/precision"], out[f"{name}/recall"], out[f"{name}/f1"] = p[i], r[i], f[i]
    return {k: float(v) for k, v in out.items()}


def regression(y_true: Sequence[float], y_pred: Sequence[float]) -> dict[str, float]:
    """RMSE, MAE, R² and MAPE."""
    y, p = np.asarray(y_true, dtype=float), np.asarray(y_pred, dtype=float)
    return {
        "rmse": float(np.sqrt(skm.mean_squared_error(y, p))),
        "mae": float(skm.mean_absolute_error(y, p)),
        "r2": float(skm.r2_score(y, p)),
        "mape": float(skm.mean_absolute_percentage_error(y, p)),
    }


def confusion(y_true: Sequence[int], y_pred: Sequence[int], n_classes: int) -> np.ndarray:
    return skm.confusion_matrix(y_true, y_pred, labels=list(range(n_classes)))


def mean_std(per_fold: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Fold metrics → ``metric_mean`` / ``metric_std`` (population std over folds)."""
    keys = per_fold[0].keys()
    out = {}
    for k in keys:
        vals = np.array([f[k] for f in per_fold], dtype=float)
        out[f"{k}_mean"], out[f"{k}_std"] = float(vals.mean()), float(vals.std())
    return out
