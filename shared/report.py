"""Print the headline metrics of every app's latest run (``make demo`` ends with this)::

    python -m shared.report [runs-dir]
"""
from __future__ import annotations

import sys
from pathlib import Path

from shared.runs import read_json, runs_root

HEADLINE = ("test/roc_auc", "test/accuracy", "test/macro_f1", "test/mean_iou", "test/map_50", "test/map",
            "test/ndcg@10", "test/recall@10", "test/f1", "test/exact_match", "test/silhouette", "segments/count",
            "rules/count", "itemsets/count", "test/hit_rate@3")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    root = Path(argv[0]) if argv else runs_root()
    rows = []
    for metrics_file in sorted(root.glob("*/*/latest/metrics.json")):
        run = metrics_file.parent
        metrics = read_json(metrics_file)
        shown = {k: v for k, v in metrics.items() if k in HEADLINE} or dict(list(metrics.items())[:4])
        rows.append((f"{run.parent.parent.name}/{run.parent.name}", run.resolve().name, shown))
    if not rows:
        print(f"no runs under {root}/ yet: try `make demo`")
        return 1
    print(f"\n{'recipe':34} {'run':24} headline metrics")
    for recipe, run_id, shown in rows:
        text = "  ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in shown.items())
        print(f"{recipe:34} {run_id:24} {text}")
    print(f"\nfull metrics: {root}/<app>/<recipe>/latest/metrics.json; plots beside them")
    return 0


if __name__ == "__main__":
    sys.exit(main())
