"""The report ``make demo`` ends with: every recipe's latest run, its headline metric, whether it
was a ``-quick`` run, the full recipe's figure from the README and the target beside it, and the
next commands to try::

    python -m shared.report [--runs DIR]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from shared.runs import read_json, run_status, runs_root

# (app, recipe) -> the headline metric, the full recipe's figure in the README (Results), and the target
REFERENCE = {
    ("tabular_mining", "churn"): ("test/roc_auc", 0.852, "≥ 0.845"),
    ("tabular_mining", "segments"): ("test/silhouette", 0.204, "k chosen by silhouette"),
    ("tabular_mining", "rules"): ("test/hit_rate@3", 0.806, "≥ popularity (0.731)"),
    ("nlp_app", "sentiment"): ("test/accuracy", 0.850, "≥ 0.845"),
    ("nlp_app", "ner"): ("test/f1", 0.927, "≥ 0.88 (published BiLSTM-CRF ≈ 0.90)"),
    ("nlp_app", "ner-bert"): ("test/f1", 0.792, "the BERT tagger from scratch"),
    ("nlp_app", "qa"): ("test/f1", 0.91, "generated set (quick); CMRC dev in the guide"),
    ("nlp_app", "pretrain"): ("test/masked_accuracy", None, "feeds fine-tuning"),
    ("vision_app", "classify"): ("test/accuracy", 0.9944, "≥ 0.994"),
    ("vision_app", "segment"): ("test/mean_iou", 0.981, "≥ 0.90"),
    ("vision_app", "detect"): ("test/map_50", 0.957, "≥ 0.90"),
    ("vision_app", "detect_fasterrcnn"): ("test/map_50", 1.000, "≥ 0.90"),
    ("recsys_app", "movielens"): ("test/ndcg@10", 0.0400, "EASE; peers in the guide"),
}
FALLBACK_KEYS = ("test/roc_auc", "test/accuracy", "test/f1", "test/mean_iou", "test/map_50", "test/ndcg@10",
                 "test/hit_rate@3", "test/silhouette")
NEXT = """next:
  make serve-tabular                      # serve the churn model on http://127.0.0.1:8000
  open http://127.0.0.1:8000/             # its demo page (the API: /docs)
  make train-tabular                      # the full churn recipe (every app: make train-<app>)"""


def _row(run: Path) -> tuple[str, str, str, str, str]:
    app, recipe = run.parent.parent.name, run.parent.name
    metrics = read_json(run / "metrics.json") if (run / "metrics.json").exists() else {}
    key, full, target = REFERENCE.get((app, recipe), (None, None, ""))
    if key not in metrics:
        key = next((k for k in FALLBACK_KEYS if k in metrics), None)
    value = f"{key.split('/', 1)[1]} {metrics[key]:.4g}" if key else "(no test metric)"
    quick = "quick" if "-quick" in str(run_status(run).get("command", "")) else "full"
    return f"{app}/{recipe}", quick, value, "" if full is None else f"{full:.4g}", target


def report(root: Path) -> str | None:
    """The report's text, or ``None`` when there is no run under ``root``."""
    rows = [_row(link.resolve()) for link in sorted(root.glob("*/*/latest")) if link.exists()]
    if not rows:
        return None
    widths = [max(len(r[i]) for r in rows + [("recipe", "run", "headline (test)", "full recipe", "target")])
              for i in range(5)]
    line = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()
    out = [line(("recipe", "run", "headline (test)", "full recipe", "target")), *map(line, rows), "",
           "quick runs are the minute-long -quick recipes; 'full recipe' is the README's figure for the",
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
