"""Vision plots: a grid of the worst classification mistakes, segmentation overlays.
(Confusion matrices and curves come from :mod:`shared.plots`.)"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from shared.plots import plt, save


def mistakes_grid(images: Sequence[np.ndarray], true: Sequence[str], pred: Sequence[str],
                  confidence: Sequence[float], path: str | Path, cols: int = 5) -> Path:
    """Each image titled ``true → predicted (confidence)``; pass them worst first."""
    n = max(1, len(images))
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 2.4 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, img, t, p, c in zip(axes.flat, images, true, pred, confidence):
        ax.imshow(img, cmap="gray" if img.ndim == 2 else None, interpolation="nearest")
        ax.set_title(f"{t} → {p} ({c:.2f})", fontsize=8, color="firebrick")
    if not len(images):
        axes.flat[0].text(0.5, 0.5, "no mistakes", ha="center", va="center")
    fig.suptitle("Most confident mistakes (true → predicted)", fontsize=10)
    return save(fig, path)


def colourise(mask: np.ndarray, palette: Sequence[int]) -> np.ndarray:
    """Class-id mask → ``HxWx3`` uint8 via a flat palette ``[r0, g0, b0, r1, …]``."""
    pal = np.asarray(list(palette) + [0] * (768 - len(palette)), dtype=np.uint8).reshape(256, 3)
    return pal[np.clip(mask, 0, 255).astype(np.int64)]


def overlay(image: np.ndarray, mask: np.ndarray, palette: Sequence[int], alpha: float = 0.5) -> np.ndarray:
    colour = colourise(mask, palette).astype(np.float32)
    out = image.astype(np.float32)
    fg = mask > 0
    out[fg] = (1 - alpha) * out[fg] + alpha * colour[fg]
    return out.round().astype(np.uint8)


def segmentation_overlays(images: Sequence[np.ndarray], truths: Sequence[np.ndarray], preds: Sequence[np.ndarray],
                          palette: Sequence[int], classes: Sequence[str], path: str | Path) -> Path:
    """One row per image: the image, ground truth overlaid, prediction overlaid."""
    n = max(1, len(images))
    fig, axes = plt.subplots(n, 3, figsize=(7.5, 2.5 * n), squeeze=False)
    for row, (img, t, p) in enumerate(zip(images, truths, preds)):
        for col, (pic, title) in enumerate(((img, "image"), (overlay(img, t, palette), "ground truth"),
                                            (overlay(img, p, palette), "prediction"))):
            axes[row, col].imshow(pic, interpolation="nearest")
            axes[row, col].set_title(title, fontsize=8)
            axes[row, col].axis("off")
    handles = [plt.Rectangle((0, 0), 1, 1, color=np.array(palette[3 * i:3 * i + 3]) / 255) for i in range(1, len(classes))]
    fig.legend(handles, list(classes[1:]), loc="lower center", ncol=min(6, len(classes) - 1), fontsize=8)
    return save(fig, path)
