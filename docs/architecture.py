"""Draws docs/images/architecture.png, the picture in the README: the four apps on the shared core,
the stages every task has, and where runs go. Regenerate after a change to the design::

    .venv/bin/python docs/architecture.py
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

APPS = [
    ("nlp_app", "classify · pretrain · qa · ner", "#dbeafe"),
    ("tabular_mining", "classify · segment · rules", "#dcfce7"),
    ("vision_app", "classify · segment · detect", "#fef3c7"),
    ("recsys_app", "recommend", "#fce7f3"),
]
STAGES = ["preprocess", "train", "evaluate", "predict", "export", "serve"]
CORE = ["tasks, cli (run_app)", "config, runs, cards", "device, training, inference", "metrics, plots",
        "serving (FastAPI, batcher, limits)"]


def box(ax, x, y, w, h, text, color, size=10, weight="normal"):
    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.02,rounding_size=0.08", fc=color, ec="#334155"))
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=size, weight=weight, wrap=True)


def arrow(ax, start, end):
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=12, color="#475569", lw=1.2))


def draw(path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(12, 6.6))
    ax.set_xlim(0, 12)
    ax.set_ylim(0, 6.6)
    ax.axis("off")
    ax.text(6, 6.35, "mlref: four apps, one task contract, one shared core", ha="center", fontsize=14, weight="bold")
    for i, (name, tasks, color) in enumerate(APPS):
        x = 0.3 + i * 2.95
        box(ax, x, 4.55, 2.7, 1.4, f"{name}\n\n{tasks}", color, size=10, weight="bold")
        ax.text(x + 1.35, 4.35, "tasks.py → Task(config, stages)", ha="center", fontsize=8, color="#334155")
        arrow(ax, (x + 1.35, 4.25), (x + 1.35, 3.55))
    box(ax, 0.3, 2.35, 11.55, 1.15, "shared/\n" + "   ·   ".join(CORE), "#e2e8f0", size=10)
    for i, stage in enumerate(STAGES):
        x = 0.3 + i * 1.95
        box(ax, x, 1.1, 1.7, 0.6, stage, "#f8fafc", size=10)
        if i:
            arrow(ax, (x - 0.25, 1.4), (x, 1.4))
    ax.text(0.3, 0.7, "python -m <app> <stage> --config configs/<app>/<recipe>.yaml [key=value …]   "
                      "(stages after train read the run: --run DIR, else runs/<app>/<recipe>/latest)",
            fontsize=9, color="#334155")
    ax.text(0.3, 0.3, "runs/<app>/<recipe>/<run-id>/: config.yaml · run.json · metrics.json · model files · "
                      "README.md (card) · evaluations/<file>/ · latest → newest finished run",
            fontsize=9, color="#334155")
    arrow(ax, (6.05, 2.3), (6.05, 1.75))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


if __name__ == "__main__":
    print(draw(Path(__file__).parent / "images" / "architecture.png"))
