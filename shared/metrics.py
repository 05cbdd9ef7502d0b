"""Metrics for every app, as thin pure wrappers over scikit-learn (and, in the apps that need
them, torchmetrics / seqeval). Keys come back as ``metric`` names; :func:`with_split` prefixes
them as ``split/metric`` for ``metrics.json``. No hand-rolled metric where a library has one.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

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
    y_true: Sequence[int], proba: np.ndarray, labels: Sequence[str] | None = None, top_k: Sequence[int] = (),
    ovr_auc: bool = False,
) -> dict[str, float]:
    """Accuracy, macro/weighted F1, log-loss, top-k accuracy, per-class P/R/F1 (keys
    ``<label>/precision`` …), and ROC-AUC when there are exactly two classes (with ``ovr_auc``,
    for more classes too: the macro average of one-vs-rest ROC-AUCs, when ``y_true`` holds every
    class). ``proba`` is ``(n, n_classes)``; ``y_true`` holds class indices."""
    y = np.asarray(y_true).astype(int)
    proba = np.asarray(proba, dtype=float)
    n_classes = proba.shape[1]
    classes = list(range(n_classes))
    pred = proba.argmax(axis=1)
    out: dict[str, float] = {
        "accuracy": skm.accuracy_score(y, pred),
        "macro_f1": skm.f1_score(y, pred, average="macro", labels=classes, zero_division=0),
        "weighted_f1": skm.f1_score(y, pred, average="weighted", labels=classes, zero_division=0),
        "log_loss": skm.log_loss(y, _clipped_rows(proba), labels=classes),
    }
    for k in top_k:
        if 1 < k < n_classes:
            out[f"top{k}_accuracy"] = skm.top_k_accuracy_score(y, proba, k=k, labels=classes)
    if n_classes == 2 and len(np.unique(y)) == 2:
        out["roc_auc"] = skm.roc_auc_score(y, proba[:, 1])
    elif ovr_auc and n_classes > 2 and len(np.unique(y)) == n_classes:
        out["roc_auc"] = skm.roc_auc_score(y, proba, multi_class="ovr", average="macro", labels=classes)
    p, r, f, _support = skm.precision_recall_fscore_support(y, pred, labels=classes, zero_division=0)
    names = list(labels) if labels is not None else [str(c) for c in classes]
    for i, name in enumerate(names):
        out[f"{name}/precision"], out[f"{name}/recall"], out[f"{name}/f1"] = p[i], r[i], f[i]
    return {k: float(v) for k, v in out.items()}


def _clipped_rows(proba: np.ndarray) -> np.ndarray:
    """Probabilities clipped away from 0 and each row scaled back to a sum of 1 (float32 models'
    rows are off by ~1e-7, which scikit-learn's log-loss warns about)."""
    p = np.clip(proba, 1e-7, 1)
    return p / p.sum(axis=1, keepdims=True)


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


def entity_f1(y_true: Sequence[Sequence[str]], y_pred: Sequence[Sequence[str]]) -> dict[str, float]:
    """Entity-level precision/recall/F1 (seqeval, CoNLL rules: an entity counts only when its
    type and both boundaries match), micro-averaged (``precision``, ``recall``, ``f1``), macro
    ``macro_f1``, and per type (``<TYPE>/precision`` …, ``<TYPE>/support``). Tags are BIO strings."""
    from seqeval.metrics import classification_report

    report = classification_report(list(map(list, y_true)), list(map(list, y_pred)), output_dict=True,
                                   zero_division=0)
    micro, macro = report.pop("micro avg"), report.pop("macro avg")
    report.pop("weighted avg", None)
    out = {"precision": micro["precision"], "recall": micro["recall"], "f1": micro["f1-score"],
           "macro_f1": macro["f1-score"]}
    for name, row in sorted(report.items()):
        out[f"{name}/precision"], out[f"{name}/recall"] = row["precision"], row["recall"]
        out[f"{name}/f1"], out[f"{name}/support"] = row["f1-score"], row["support"]
    return {k: float(v) for k, v in out.items()}


# The CMRC 2018 evaluation (its official script, reimplemented: no library ships it). Chinese
# characters and punctuation are single tokens; runs of other characters split into words and
# punctuation (the script uses nltk.word_tokenize there; a regex does the same for plain text).
# (the script lists "……" as one string, so a lone "…" is not punctuation there either)
_CMRC_PUNCT = frozenset("-:_*^/\\~`+=，。：？！“”；’《》·、「」（）－～『』")


def _cmrc_tokens(text: str) -> list[str]:
    import re

    out, run = [], []
    for ch in str(text).lower().strip():
        if ch in _CMRC_PUNCT:
            continue  # punctuation is removed before scoring
        if "\u4e00" <= ch <= "\u9fa5":
            if run:
                out.extend(re.findall(r"\w+|[^\w\s]", "".join(run)))
                run = []
            out.append(ch)
        else:
            run.append(ch)
    if run:
        out.extend(re.findall(r"\w+|[^\w\s]", "".join(run)))
    return out


def _longest_common_run(a: Sequence[str], b: Sequence[str]) -> int:
    best, prev = 0, [0] * (len(b) + 1)
    for x in a:
        cur = [0] * (len(b) + 1)
        for j, y in enumerate(b, 1):
            if x == y:
                cur[j] = prev[j - 1] + 1
                best = max(best, cur[j])
        prev = cur
    return best


def span_em_f1(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> dict[str, float]:
    """CMRC 2018 exact match and F1 (fractions, not percent) of predicted answer texts against
    each question's reference answers (best over references). EM compares the texts with
    punctuation removed and case folded; F1 is over characters (words for non-Chinese runs),
    precision and recall taken from the longest common *contiguous* run, as CMRC scores."""
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} questions")
    em = f1 = 0.0
    for pred, refs in zip(predictions, references):
        pred_toks = _cmrc_tokens(pred)
        pred_bare = "".join(ch for ch in str(pred).lower().strip() if ch not in _CMRC_PUNCT)
        best_em = best_f1 = 0.0
        for ref in refs:
            if "".join(ch for ch in str(ref).lower().strip() if ch not in _CMRC_PUNCT) == pred_bare:
                best_em = 1.0
            ref_toks = _cmrc_tokens(ref)
            common = _longest_common_run(ref_toks, pred_toks)
            if common:
                p, r = common / len(pred_toks), common / len(ref_toks)
                best_f1 = max(best_f1, 2 * p * r / (p + r))
        em += best_em
        f1 += best_f1
    n = max(len(predictions), 1)
    return {"exact_match": em / n, "f1": f1 / n, "count": float(len(predictions))}
