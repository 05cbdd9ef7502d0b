"""Plots of the mining tasks: item supports (rules), segments in two dimensions (segment),
predicted against actual values and residuals (regress).

Drawn with matplotlib's non-interactive backend and written atomically by :func:`shared.plots.save`.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from shared.plots import save


def item_support_chart(support: Mapping[str, float], path: str | Path, top: int = 30) -> Path:
    """Horizontal bars of the ``top`` most frequent items' support, the most frequent on top."""
    items = sorted(support.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    names, values = [k for k, _ in items][::-1], [v for _, v in items][::-1]
    fig, ax = plt.subplots(figsize=(7, max(2.5, 0.28 * len(items) + 1)))
    ax.barh(range(len(items)), values, color="tab:blue")
    ax.set_yticks(range(len(items)), names, fontsize=8)
    ax.set_xlabel("support (share of baskets)")
    ax.set_title(f"Item support (top {len(items)} of {len(support)})")
    return save(fig, path)


def segment_scatter(xy: np.ndarray, labels: Sequence[int], path: str | Path, title: str,
                    axis_labels: tuple[str, str] = ("PC 1", "PC 2"), max_points: int = 5000, seed: int = 0) -> Path:
    """A 2-D projection coloured by segment (-1, density noise, in grey); subsampled for speed."""
    labels = np.asarray(labels)
    if len(labels) > max_points:
        keep = np.random.default_rng(seed).choice(len(labels), max_points, replace=False)
        xy, labels = xy[keep], labels[keep]
    fig, ax = plt.subplots(figsize=(6, 5))
    for seg in sorted(set(labels.tolist())):
        m = labels == seg
        ax.scatter(xy[m, 0], xy[m, 1], s=6, alpha=0.6, label="noise" if seg == -1 else f"segment {seg}",
                   color="lightgrey" if seg == -1 else None)
    ax.set_xlabel(axis_labels[0])
    ax.set_ylabel(axis_labels[1])
    ax.set_title(title)
    ax.legend(markerscale=3, fontsize=8, loc="best")
    return save(fig, path)


def k_selection_chart(curve: Sequence[dict], chosen: int | None, path: str | Path) -> Path:
    """Silhouette and Davies–Bouldin against k, side by side (their scales differ), chosen k marked."""
    ks = [r["k"] for r in curve]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for ax, key, better in ((axes[0], "silhouette", "higher"), (axes[1], "davies_bouldin", "lower")):
        ax.plot(ks, [r.get(key, np.nan) for r in curve], marker="o")
        if chosen is not None:
            ax.axvline(chosen, color="grey", ls="--", lw=0.8, label=f"chosen k={chosen}")
            ax.legend(fontsize=8)
        ax.set_xlabel("k (segments)")
        ax.set_xticks(ks)
        ax.set_title(f"{key.replace('_', '–').title()} ({better} is better)", fontsize=10)
    return save(fig, path)


def _subsample(n: int, max_points: int, seed: int) -> np.ndarray:
    return np.sort(np.random.default_rng(seed).choice(n, max_points, replace=False)) if n > max_points else np.arange(n)


def predicted_vs_actual(y: np.ndarray, pred: np.ndarray, path: str | Path, title: str, target: str = "target",
                        max_points: int = 5000, seed: int = 0) -> Path:
    """Predicted against actual values, with the diagonal where they would be equal; subsampled for speed."""
    keep = _subsample(len(y), max_points, seed)
    y, pred = np.asarray(y, dtype=float)[keep], np.asarray(pred, dtype=float)[keep]
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.scatter(y, pred, s=6, alpha=0.5)
    low, high = float(min(y.min(), pred.min())), float(max(y.max(), pred.max()))
    ax.plot([low, high], [low, high], color="grey", ls="--", lw=0.8, label="predicted = actual")
    ax.set_xlabel(f"actual {target}")
    ax.set_ylabel(f"predicted {target}")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper left")
    return save(fig, path)


def residual_plot(y: np.ndarray, pred: np.ndarray, path: str | Path, title: str, target: str = "target",
                  max_points: int = 5000, seed: int = 0) -> Path:
    """Residuals (actual - predicted) against the prediction, and their histogram, side by side."""
    keep = _subsample(len(y), max_points, seed)
    y, pred = np.asarray(y, dtype=float)[keep], np.asarray(pred, dtype=float)[keep]
    resid = y - pred
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    axes[0].scatter(pred, resid, s=6, alpha=0.5)
    axes[0].axhline(0.0, color="grey", ls="--", lw=0.8)
    axes[0].set_xlabel(f"predicted {target}")
    axes[0].set_ylabel("residual (actual - predicted)")
    axes[1].hist(resid, bins=min(50, max(10, len(resid) // 10)), color="tab:blue")
    axes[1].set_xlabel("residual")
    axes[1].set_ylabel("rows")
    fig.suptitle(title)
    return save(fig, path)
