"""Plots every app writes as PNG: confusion matrix, ROC, PR, calibration, training curves.

Each function takes plain arrays and a path, draws with matplotlib's non-interactive backend,
and writes the PNG atomically. Returns the path.

Chinese (any CJK) text in a figure is drawn with an installed CJK-capable font (Noto Sans CJK,
Source Han Sans, WenQuanYi …, placed after matplotlib's default font, so Latin text looks as before);
matplotlib's default font has no CJK glyphs and would draw empty boxes. With none installed, one
warning names a package that provides one (Debian/Ubuntu: ``fonts-noto-cjk`` or ``fonts-wqy-microhei``).
"""
from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve

from shared.runs import atomic_path

log = logging.getLogger(__name__)
# CJK-capable families, preferred first (names as matplotlib reports them), and pieces of their file
# names, to find one among the system's fonts when matplotlib's font cache was built before it came
CJK_FAMILIES = ("Noto Sans CJK SC", "Source Han Sans SC", "WenQuanYi Micro Hei", "WenQuanYi Zen Hei",
                "Noto Sans CJK TC", "Noto Sans CJK JP", "Source Han Sans CN", "Droid Sans Fallback", "SimHei",
                "Microsoft YaHei", "PingFang SC", "Heiti SC", "Arial Unicode MS")
CJK_FILES = ("notosanscjk", "sourcehansans", "wqymicrohei", "wqyzenhei", "droidsansfallback", "simhei", "msyh",
             "pingfang")
_cjk: dict[str, str | None] = {}  # "family": the one chosen (None: none installed), once per process


def has_cjk(texts: Iterable[str]) -> bool:
    """Whether any of ``texts`` holds a CJK character (ideographs, kana, hangul, full-width forms)."""
    return any(0x2E80 <= ord(ch) <= 0xFFEF for text in texts for ch in str(text))


def cjk_font() -> str | None:
    """The CJK-capable font plots use for Chinese text, added after the default in ``font.family``
    (found once per process); ``None`` when none is installed, with one warning saying which
    package provides one."""
    if "family" not in _cjk:
        family = _installed_cjk_family()
        _cjk["family"] = family
        if family is None:
            log.warning("no CJK font is installed: Chinese labels in plots are drawn as empty boxes; install "
                        "one (Debian/Ubuntu: apt-get install fonts-noto-cjk, or fonts-wqy-microhei)")
        else:
            families = [f for f in matplotlib.rcParams["font.family"] if f != family]
            matplotlib.rcParams["font.family"] = [*families, family]  # a fallback: per missing glyph
    return _cjk["family"]


def _installed_cjk_family() -> str | None:
    from matplotlib import font_manager

    manager = font_manager.fontManager

    def known() -> str | None:
        names = {f.name for f in manager.ttflist}
        return next((name for name in CJK_FAMILIES if name in names), None)

    if known() is None:  # the font cache may predate the font: look among the system's files
        for file in font_manager.findSystemFonts():
            if any(piece in Path(file).name.lower().replace("-", "") for piece in CJK_FILES):
                with contextlib.suppress(Exception):  # an unreadable font file is just skipped
                    manager.addfont(file)
    return known()


def _use_cjk_font(fig) -> None:
    """Give every text of ``fig`` that holds CJK characters the CJK font as a fallback (a text keeps
    the font family it was created with, so setting ``rcParams`` now would be too late for it)."""
    from matplotlib.text import Text

    texts = [t for t in fig.findobj(Text) if has_cjk([t.get_text()])]
    family = cjk_font() if texts else None
    for text in texts if family else []:
        text.set_fontfamily([*(f for f in text.get_fontfamily() if f != family), family])


def save(fig, path: str | os.PathLike) -> Path:
    """Write ``fig`` to ``path`` atomically and close it (with a CJK font where its text needs one)."""
    path = Path(path)
    _use_cjk_font(fig)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    plt.close(fig)
    return path


def confusion_matrix(cm: np.ndarray, labels: Sequence[str], path, title: str = "Confusion matrix") -> Path:
    n = len(labels)
    size = max(4.0, 0.45 * n + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), labels, rotation=45, ha="right")
    ax.set_yticks(range(n), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    if n <= 30:
        for i in range(n):
            for j in range(n):
                ax.text(j, i, str(cm[i, j]), ha="center", va="center",
                        color="white" if norm[i, j] > 0.5 else "black", fontsize=8)
    return save(fig, path)


def roc_curves(y_true, scores: Mapping[str, np.ndarray], path, title: str = "ROC") -> Path:
    """One ROC curve per model name in ``scores`` (positive-class probabilities)."""
    fig, ax = plt.subplots(figsize=(5, 5))
    for name, p in scores.items():
        fpr, tpr, _ = skm.roc_curve(y_true, p)
        ax.plot(fpr, tpr, label=f"{name} (AUC {skm.auc(fpr, tpr):.3f})")
    ax.plot([0, 1], [0, 1], "k--", lw=0.8)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(title)
    ax.legend(loc="lower right")
    return save(fig, path)


def pr_curves(y_true, scores: Mapping[str, np.ndarray], path, title: str = "Precision-recall") -> Path:
    fig, ax = plt.subplots(figsize=(5, 5))
    for name, p in scores.items():
        prec, rec, _ = skm.precision_recall_curve(y_true, p)
        ax.plot(rec, prec, label=f"{name} (AP {skm.average_precision_score(y_true, p):.3f})")
    ax.axhline(float(np.mean(y_true)), color="k", ls="--", lw=0.8, label="base rate")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title(title)
    ax.legend(loc="upper right")
    return save(fig, path)


def calibration(y_true, scores: Mapping[str, np.ndarray], path, bins: int = 10) -> Path:
    fig, ax = plt.subplots(figsize=(5, 5))
    for name, p in scores.items():
        frac, mean = calibration_curve(y_true, p, n_bins=bins, strategy="quantile")
        ax.plot(mean, frac, marker="o", label=name)
    ax.plot([0, 1], [0, 1], "k--", lw=0.8, label="perfect")
    ax.set_xlabel("mean predicted probability")
    ax.set_ylabel("observed frequency")
    ax.set_title("Calibration")
    ax.legend(loc="upper left")
    return save(fig, path)


def curves(series: Mapping[str, Sequence[float]], path, xlabel: str = "step", ylabel: str = "",
           x: Sequence[float] | None = None, title: str = "") -> Path:
    """Line plot of named series (training curves, k-selection curves …)."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, ys in series.items():
        ax.plot(x if x is not None else range(len(ys)), ys, marker="o" if len(ys) < 30 else None, label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()
    return save(fig, path)


def training_curves(records: Sequence[Mapping], path, monitor: str | None = None) -> Path:
    """One panel each for train loss, learning rate and a validation metric against the step,
    from ``history.jsonl`` records (``{"step", "train/loss", "lr"}`` and ``{"step", "valid/…"}``).
    The metric is ``valid/<monitor>``; without a monitor, the first validation metric logged."""
    keys = [k for r in records for k in r if k.startswith("valid/")]
    metric = f"valid/{monitor}" if monitor and f"valid/{monitor}" in keys else next(iter(keys), None)
    panels = [("train/loss", "train loss"), ("lr", "learning rate")]
    if metric is not None:
        panels.append((metric, metric.replace("valid/", "validation ")))
    # separate panels: loss, LR and metrics live on scales a shared y axis would flatten
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.2), squeeze=False)
    for ax, (key, title) in zip(axes[0], panels):
        points = [(r["step"], r[key]) for r in records if key in r and "step" in r]
        if points:
            steps, values = zip(*points)
            ax.plot(steps, values, marker="o" if len(points) < 30 else None)
        ax.set_title(title)
        ax.set_xlabel("step")
    fig.tight_layout()
    return save(fig, path)
