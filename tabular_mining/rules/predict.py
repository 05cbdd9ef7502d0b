"""The predict stage of ``task: rules``: recommendations for every basket of a file (in the run's
``data.format``; a telco run takes a basket file) as JSON lines, ``-`` for stdout.

    python -m tabular_mining predict --run runs/tabular_mining/rules/latest --input baskets.txt --output recs.jsonl
"""
from __future__ import annotations

import json
from pathlib import Path

from shared.runs import write_text
from tabular_mining.rules.config import RulesConfig
from tabular_mining.rules.data import read_baskets
from tabular_mining.rules.evaluate import load_recommender


def predict(cfg: RulesConfig, run: Path, input: Path, output: Path | str) -> dict:
    """The predict stage: one JSON line per basket of ``input``: the basket, the rules that fire
    and the recommended items (``eval.top_k``, ranked by ``eval.rank_by``)."""
    recommender = load_recommender(run)
    baskets, source = read_baskets(cfg.data, input)
    results = recommender.recommend(baskets, top_k=cfg.eval.top_k, rank_by=cfg.eval.rank_by,
                                    fill_popular=cfg.eval.fill_popular)
    lines = "".join(json.dumps({"basket": b, **r}, ensure_ascii=False) + "\n" for b, r in zip(baskets, results))
    if str(output) == "-":
        print(lines, end="")
    else:
        write_text(output, lines)
    return {"baskets": len(baskets), "output": str(output), "source": source}
