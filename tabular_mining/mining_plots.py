"""Plots of the mining tasks: item supports (rules) and segments in two dimensions (segment).

Drawn with matplotlib's non-interactive backend and written atomically by :func:`shared.plots.save`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

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
