"""The train stage of ``task: rules``: baskets in, frequent itemsets and association rules out.

    python -m tabular_mining train --config configs/tabular_mining/rules.yaml [mining.min_support=0.02]

A run holds ``rules.csv`` (every kept rule with support, confidence, lift, leverage, conviction),
``RULES.md`` (the top-N as a table), ``itemsets.csv``, ``item_support.png``, ``rules.json`` and
``items.json`` (what the server loads), ``metrics.json`` (counts, seconds per step, held-out hit
rate of the recommendations against a popularity baseline, held-out rule confidence). Mining takes
seconds, so a resumed run simply mines again.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

from shared.runs import write_json, write_text
from tabular_mining.common.plots import item_support_chart
from tabular_mining.rules.config import RulesConfig
from tabular_mining.rules.data import encode, load_split
from tabular_mining.rules.evaluate import holdout_metrics, rule_confidence_on
from tabular_mining.rules.model import (
    MINERS,
    make_rules,
    mine_itemsets,
    rules_table,
    rules_to_records,
    select_rules,
)
from tabular_mining.rules.recommend import RuleRecommender

log = logging.getLogger(__name__)


def mine(cfg: RulesConfig, baskets: list) -> tuple[pd.DataFrame, pd.DataFrame, dict, dict]:
    """Encode, mine and derive rules; returns itemsets, selected rules, item supports, seconds."""
    m = cfg.mining
    t0 = time.perf_counter()
    matrix, items = encode(baskets)
    t1 = time.perf_counter()
    itemsets = mine_itemsets(matrix, items, m.min_support, m.algorithm, m.max_len, m.max_itemsets, m.max_matrix_mb)
    t2 = time.perf_counter()
    f = cfg.rules
    rules = select_rules(make_rules(itemsets, matrix.shape[0], f.min_confidence), f.min_lift, f.min_leverage,
                         f.max_antecedent_len, f.max_consequent_len, f.sort_by, f.max_rules)
    t3 = time.perf_counter()
    support = dict(zip(items, (np.asarray(matrix.sum(axis=0)).ravel() / matrix.shape[0]).tolist()))
    seconds = {"encode_s": t1 - t0, "mine_s": t2 - t1, "rules_s": t3 - t2}
    if m.compare_algorithms:
        for name in MINERS:
            s = time.perf_counter()
            other = mine_itemsets(matrix, items, m.min_support, name, m.max_len, m.max_itemsets, m.max_matrix_mb)
            seconds[f"{name}_s"] = time.perf_counter() - s
            if len(other) != len(itemsets):
                raise RuntimeError(f"{name} found {len(other)} itemsets, {m.algorithm} {len(itemsets)}")
    return itemsets, rules, support, seconds


def train(cfg: RulesConfig, run: Path) -> dict:
    """The train stage: mine the training baskets, keep the configured rules, check them on the
    held-out baskets; returns the counts, timings and held-out metrics."""
    t_start = time.perf_counter()
    train_b, test_b, manifest = load_split(cfg)
    t_loaded = time.perf_counter()
    itemsets, rules, support, seconds = mine(cfg, train_b)
    records = rules_to_records(rules)
    recommender = RuleRecommender(records, support)
    t_mined = time.perf_counter()
    _write_rules(run, cfg, manifest, itemsets, rules, records, support, len(train_b))

    metrics = {
        "baskets/train": len(train_b), "baskets/test": len(test_b), "items/count": len(support),
        "itemsets/count": len(itemsets), "rules/count": len(rules),
        "itemsets/max_len": int(itemsets["itemsets"].map(len).max()) if len(itemsets) else 0,
        "time/load_s": t_loaded - t_start, **{f"time/{k}": v for k, v in seconds.items()},
        "time/total_s": t_mined - t_start,
        "train/rule_confidence_mean": float(rules["confidence"].mean()) if len(rules) else float("nan"),
        "test/rule_confidence_mean": rule_confidence_on(rules, test_b),
    }
    held_out = holdout_metrics(recommender, test_b, cfg.eval.top_k, cfg.eval.rank_by, cfg.eval.fill_popular)
    metrics.update({f"test/{k}": v for k, v in held_out.items()})
    log.info("%d itemsets, %d rules (%s, %.3fs mining) → %s", len(itemsets), len(rules), cfg.mining.algorithm,
             seconds["mine_s"], run)
    return {**{k: v for k, v in metrics.items() if not (isinstance(v, float) and np.isnan(v))},
            "card": card_section(cfg, manifest, metrics)}


def _write_rules(run: Path, cfg: RulesConfig, manifest: dict, itemsets: pd.DataFrame, rules: pd.DataFrame,
                 records: list[dict], support: dict, n_baskets: int) -> None:
    """The rules (JSON for the server, CSV and the top-N table for people), itemsets, item supports."""
    write_json(run / "data_manifest.json", manifest)
    write_json(run / "rules.json", records)
    write_json(run / "items.json", dict(sorted(support.items(), key=lambda kv: (-kv[1], kv[0]))))
    table = rules_table(rules)
    write_text(run / "rules.csv", table.to_csv(index=False))
    sets = itemsets.assign(itemsets=itemsets["itemsets"].map(lambda s: ", ".join(sorted(s))),
                           length=itemsets["itemsets"].map(len))
    write_text(run / "itemsets.csv", sets.sort_values(["length", "support"], ascending=[True, False]).to_csv(index=False))
    write_text(run / "RULES.md", _top_table(table, cfg, n_baskets))
    item_support_chart(support, run / "item_support.png", top=30)


def _top_table(table: pd.DataFrame, cfg: RulesConfig, n_baskets: int) -> str:
    f = cfg.rules
    head = table.head(f.top_n)
    lines = [f"# Top {len(head)} of {len(table)} rules by {f.sort_by}", "",
             (f"{n_baskets} baskets; min_support={cfg.mining.min_support}, min_confidence={f.min_confidence}, "
              f"min_lift={f.min_lift}, max_len={cfg.mining.max_len}; algorithm {cfg.mining.algorithm}."), "",
             "| # | if the basket has | it also has | support | confidence | lift | leverage | conviction |",
             "|---|---|---|---|---|---|---|---|"]
    for i, r in enumerate(head.itertuples(index=False), 1):
        lines.append(f"| {i} | {r.antecedents} | {r.consequents} | {r.support:.4f} | {r.confidence:.3f} | "
                     f"{r.lift:.2f} | {r.leverage:.4f} | {r.conviction:.2f} |")
    return "\n".join(lines) + "\n"


def card_section(cfg: RulesConfig, manifest: dict, metrics: dict) -> str:
    """The rules part of the run's model card."""
    k = cfg.eval.top_k
    mined = (f"\n## Association rules\nData: {manifest['source']} ({metrics['baskets/train']} baskets mined, "
             f"{metrics['baskets/test']} held out; {metrics['items/count']} items). Mined with "
             f"{cfg.mining.algorithm}: {metrics['itemsets/count']} frequent itemsets at "
             f"min_support={cfg.mining.min_support}, {metrics['rules/count']} rules kept (`RULES.md`).\n\n")
    if f"test/hit_rate@{k}" not in metrics:
        held = ("Nothing was held out (data.test_size=0, or no held-out basket has two items): score baskets "
                "with `evaluate --data FILE`. ")
    else:
        held = (f"Held out: recommendations hit the hidden item in {metrics[f'test/hit_rate@{k}']:.3f} of "
                f"leave-one-out queries (top {k}; rules alone {metrics[f'test/hit_rate@{k}_rules_only']:.3f}); "
                f"the {k} most popular items hit {metrics[f'test/hit_rate@{k}_popularity']:.3f}. ")
    return mined + held + ("Rules describe co-occurrence in these baskets, not cause; mine again when the "
                           "assortment changes.\n")
