"""The report ``make demo`` ends with: every recipe's latest run, its headline metric, whether it
was a ``-quick`` run, the full recipe's figure from its app guide and the target beside it, and the
next commands to try::

    python -m shared.report [--runs DIR]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NamedTuple

from shared.runs import read_json, run_status, runs_root


class Reference(NamedTuple):
    """A full recipe's headline: the metric key, its figure as the app's guide writes it, the target,
    and where the figure stands (the guide, and a phrase shortly before the figure in it).
    ``tests/shared/test_report.py`` checks that each figure stands there, so a guide and the report
    cannot drift apart: change the guide, and the test names the entry to change."""

    key: str
    figure: str | None
    target: str
    guide: str = ""
    anchor: str = ""


REFERENCE = {
    ("tabular_mining", "churn"): Reference("test/roc_auc", "0.8520", "≥ 0.845",
                                           "tabular_mining/README_mining.md", "churn test ROC-AUC"),
    ("tabular_mining", "penguins"): Reference("test/accuracy", "0.986", "three species; macro F1 0.988",
                                              "tabular_mining/README_mining.md", "served logistic model has accuracy"),
    ("tabular_mining", "house_prices"): Reference("test/r2", "0.916", "≥ 0.9 (RMSE 23,461; the mean: 81,048)",
                                                  "tabular_mining/README_regression.md",
                                                  "configs/tabular_mining/house_prices.yaml` | XGBoost"),
    ("tabular_mining", "segments"): Reference("test/silhouette", "0.2043", "k chosen by silhouette",
                                              "tabular_mining/README_mining.md", "segments k = 2, silhouette"),
    ("tabular_mining", "rules"): Reference("test/hit_rate@3", "0.806", "≥ popularity (0.731)",
                                           "tabular_mining/README_mining.md", "hit rate@3"),
    ("nlp_app", "sentiment"): Reference("test/accuracy", "0.8502", "≥ 0.845",
                                        "nlp_app/README.md", "**baseline** (served)"),
    ("nlp_app", "ner"): Reference("test/f1", "0.933", "≥ 0.88 (published BiLSTM-CRF ≈ 0.90)",
                                  "nlp_app/README_qa_ner.md", "`configs/nlp_app/ner.yaml`"),
    ("nlp_app", "ner-bert"): Reference("test/f1", "0.815", "the BERT tagger from scratch",
                                       "nlp_app/README_qa_ner.md", "`configs/nlp_app/ner_bert.yaml`"),
    ("nlp_app", "qa"): Reference("test/f1", "0.084", "CMRC 2018 dev from scratch (pre-trained RBT3: 0.786)",
                                 "nlp_app/README_qa_ner.md", "from scratch (2 layers, hidden 256"),
    ("nlp_app", "pretrain"): Reference("test/masked_accuracy", None, "feeds fine-tuning"),
    ("vision_app", "classify"): Reference("test/accuracy", "0.9944", "≥ 0.994",
                                          "vision_app/README.md", "`classify.yaml` (60 epochs"),
    ("vision_app", "segment"): Reference("test/mean_iou", "0.981", "≥ 0.90",
                                         "vision_app/README.md", "`segment.yaml`: `OMP_NUM_THREADS=1"),
    ("vision_app", "detect"): Reference("test/map_50", "0.957", "≥ 0.90",
                                        "vision_app/README_detection.md", "| `detect.yaml` (yolo, random init) |"),
    ("vision_app", "detect_fasterrcnn"): Reference(
        "test/map_50", "1.000", "≥ 0.90", "vision_app/README_detection.md",
        "| `detect_fasterrcnn.yaml` (ResNet-18 FPN, random init) |"),
    ("recsys_app", "movielens"): Reference("test/ndcg@10", "0.0416", "EASE (served); peers in the guide",
                                           "recsys_app/README.md", "| ease |"),
}
FALLBACK_KEYS = ("test/roc_auc", "test/r2", "test/accuracy", "test/f1", "test/mean_iou", "test/map_50", "test/ndcg@10",
                 "test/hit_rate@3", "test/silhouette")
NEXT = """next:
  make serve-tabular                      # serve the churn model on http://127.0.0.1:8000
  open http://127.0.0.1:8000/             # its demo page (the API: /docs)
  make train-tabular                      # the full churn recipe (every app: make train-<app>)"""


def _row(run: Path) -> tuple[str, str, str, str, str]:
    app, recipe = run.parent.parent.name, run.parent.name
    metrics = read_json(run / "metrics.json") if (run / "metrics.json").exists() else {}
    key, full, target = REFERENCE.get((app, recipe), Reference("", None, ""))[:3]
    if key not in metrics:
        key = next((k for k in FALLBACK_KEYS if k in metrics), None)
    value = f"{key.split('/', 1)[1]} {metrics[key]:.4g}" if key else "(no test metric)"
    quick = "quick" if "-quick" in str(run_status(run).get("command", "")) else "full"
    return f"{app}/{recipe}", quick, value, full or "", target


def report(root: Path) -> str | None:
    """The report's text, or ``None`` when there is no run under ``root``."""
    rows = [_row(link.resolve()) for link in sorted(root.glob("*/*/latest")) if link.exists()]
    if not rows:
        return None
    widths = [max(len(r[i]) for r in rows + [("recipe", "run", "headline (test)", "full recipe", "target")])
              for i in range(5)]
    line = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()
    out = [line(("recipe", "run", "headline (test)", "full recipe", "target")), *map(line, rows), "",
           "quick runs are the minute-long -quick recipes; 'full recipe' is the figure the app's guide gives the",
           "full recipe (train it with make train-<app> CONFIG=configs/<app>/<recipe>.yaml).",
           f"every metric: {root}/<app>/<recipe>/latest/metrics.json; the model card: latest/README.md", "", NEXT]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.report",
                                     description="Print the headline metric of every recipe's latest run.")
    parser.add_argument("--runs", type=Path, default=None, help="the runs folder (default: $MLREF_HOME/runs or ./runs)")
    args = parser.parse_args(argv)
    root = args.runs or runs_root()
    text = report(root)
    if text is None:
        print(f"no runs under {root}/ yet: try `make demo`", file=sys.stderr)
        return 1
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
