"""The evaluate stage of ``task: rules``: how well a run's rules hold on other baskets: the held-out
hit rate of their recommendations (beside a popularity baseline) and their re-measured confidence.

    python -m tabular_mining evaluate --run runs/tabular_mining/rules/latest [--data baskets.txt]

``--data FILE`` (in the run's ``data.format``, or another one given as an override such as
``data.format=long data.item_col=product``) writes ``<run>/evaluations/<file stem>/``:
``metrics.json`` with ``data/`` keys and the basket count, and ``item_support.png`` of the file's
baskets. Without it the run's held-out baskets go to ``<run>/evaluations/test-split/``. The run's own
``metrics.json`` is not changed.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from shared.errors import UserError
from shared.metrics import with_split
from shared.runs import evaluation_dir, read_json, write_json
from tabular_mining.common.plots import item_support_chart
from tabular_mining.rules.config import RulesConfig
from tabular_mining.rules.data import load_split, read_baskets
from tabular_mining.rules.recommend import RuleRecommender

TEST_SPLIT_DIR = "test-split"


def load_recommender(run: str | Path) -> RuleRecommender:
    """The run's rules and item supports (``rules.json``, ``items.json``) as a recommender."""
    path = Path(run)
    if not (path / "rules.json").exists():
        raise UserError(f"{path} has no rules.json: it is not a finished rules run (train it first)")
    return RuleRecommender(read_json(path / "rules.json"), read_json(path / "items.json"))


def holdout_metrics(recommender: RuleRecommender, test: list, top_k: int, rank_by: str,
                    fill_popular: bool = True) -> dict[str, float]:
    """Leave-one-out on held-out baskets: hide each item in turn, recommend from the rest.
    ``hit_rate@k`` (the recommender as served: rules blended with popularity unless
    ``fill_popular`` is off) beside ``hit_rate@k_rules_only`` and ``hit_rate@k_popularity``
    (the k most frequent items); ``coverage`` is the share of queries at least one rule fires for."""
    queries, hidden = [], []
    for b in test:
        if len(b) >= 2:
            for i, item in enumerate(b):
                queries.append(b[:i] + b[i + 1:])
                hidden.append(item)
    if not queries:
        return {}

    def hit_rate(recs: list[dict]) -> float:
        return float(np.mean([h in {r["item"] for r in rec["recommendations"]} for h, rec in zip(hidden, recs)]))

    rules_only = recommender.recommend(queries, top_k=top_k, rank_by=rank_by, max_rules=0, fill_popular=False)
    served = recommender.recommend(queries, top_k=top_k, rank_by=rank_by, max_rules=0, fill_popular=True) \
        if fill_popular else rules_only
    pop_hits = [h in [i for i in recommender.popularity if i not in set(q)][:top_k] for h, q in zip(hidden, queries)]
    return {f"hit_rate@{top_k}": hit_rate(served), f"hit_rate@{top_k}_rules_only": hit_rate(rules_only),
            f"hit_rate@{top_k}_popularity": float(np.mean(pop_hits)),
            "coverage": float(np.mean([bool(rec["recommendations"]) for rec in rules_only])), "queries": len(queries)}


def rule_confidence_on(rules: pd.DataFrame, baskets: list) -> float:
    """Mean confidence of ``rules`` re-measured on other baskets (how well they hold up)."""
    if rules.empty or not baskets:
        return float("nan")
    sets = [set(b) for b in baskets]
    conf = []
    for a, c in zip(rules["antecedents"], rules["consequents"]):
        n_a = sum(a <= s for s in sets)
        conf.append(sum((a | c) <= s for s in sets) / n_a if n_a else 0.0)
    return float(np.mean(conf))


def evaluate(cfg: RulesConfig, run: Path, data: Path | None) -> dict:
    """The evaluate stage: hit rate and rule confidence on ``data`` (a basket file in
    ``cfg.data.format``) or on the held-out baskets, written to ``evaluations/<stem>/``."""
    recommender = load_recommender(run)
    if data is None:
        _, baskets, _ = load_split(cfg)
        split, out = "test", Path(run) / "evaluations" / TEST_SPLIT_DIR
    else:
        baskets, _ = read_baskets(cfg.data, data)
        split, out = "data", evaluation_dir(run, data)
    rules = pd.DataFrame(read_json(Path(run) / "rules.json"))
    if len(rules):
        rules["antecedents"], rules["consequents"] = rules["antecedents"].map(frozenset), rules["consequents"].map(frozenset)
    values = holdout_metrics(recommender, baskets, cfg.eval.top_k, cfg.eval.rank_by, cfg.eval.fill_popular)
    values["rule_confidence_mean"] = rule_confidence_on(rules, baskets)
    values["baskets"] = len(baskets)
    metrics = {k: v for k, v in with_split(split, values).items() if not (isinstance(v, float) and np.isnan(v))}
    write_json(out / "metrics.json", metrics)
    support: dict[str, float] = {}
    for b in baskets:
        for item in b:
            support[item] = support.get(item, 0.0) + 1.0 / len(baskets)
    if support:
        item_support_chart(support, out / "item_support.png", top=30)
    return {"evaluation": str(out), **metrics}
