"""Scale benchmarks for tabular_mining, each on generated data (no download):

1. ``rules``: association-rule mining end to end (parse a basket file + encode + mine + rules)
   per miner (our eclat, mlxtend's apriori / fpgrowth / hmine) against minimum support, with
   itemset and rule counts, beside mlxtend apriori as its documentation runs it and
   efficient-apriori (mining + rules only, baskets already parsed) when it is installed. The baskets imitate the public
   9,835-basket, 169-item grocery set: skewed item frequencies plus co-bought themes.
2. ``dask``: XGBoost and LightGBM fit time, single process vs ``distributed: dask`` (a
   LocalCluster of worker processes), on a synthetic table (1M rows by default), same rounds.
3. ``stream``: records/s through the ``stream`` stage (JSON lines in, JSON lines out) with a
   trained churn run, per micro-batch size.

    python -m bench.tabular_scale [--only rules,dask,stream] [--rows 1000000] [--repeat 5]

Writes bench/results/tabular_scale.json and .md.
"""
from __future__ import annotations

import argparse
import io
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from shared.runs import write_json, write_text
from tabular_mining.rules.data import encode, read_basket_file
from tabular_mining.rules.model import MINERS, make_rules, mine_itemsets

OUT = Path("bench/results")


def grocery_like(n_baskets: int = 9835, n_items: int = 169, seed: int = 0) -> list[list[str]]:
    """Zipf-like item popularity, 1 + Poisson(3.4) draws per basket, and in half the baskets a
    few items of one of 24 six-item themes (what makes rules with real lift)."""
    rng = np.random.default_rng(seed)
    w = 1.0 / np.arange(1, n_items + 1)
    w /= w.sum()
    themes = [rng.choice(n_items, size=6, replace=False, p=w) for _ in range(24)]
    names = [f"item_{i:03d}" for i in range(n_items)]
    baskets = []
    for _ in range(n_baskets):
        items = set(rng.choice(n_items, size=1 + rng.poisson(3.4), p=w).tolist())
        if rng.random() < 0.5:
            theme = themes[rng.integers(len(themes))]
            items.update(theme[rng.random(len(theme)) < 0.45].tolist())
        baskets.append([names[i] for i in sorted(items)])
    return baskets


def _median_s(fn, repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def _mlxtend_as_documented(baskets: list[list[str]], support: float, min_confidence: float):
    """The peer as its documentation runs it: TransactionEncoder → apriori → association_rules."""
    from mlxtend.frequent_patterns import apriori, association_rules
    from mlxtend.preprocessing import TransactionEncoder

    onehot = TransactionEncoder().fit(baskets)
    df = pd.DataFrame(onehot.transform(baskets), columns=onehot.columns_)
    itemsets = apriori(df, min_support=support, use_colnames=True)
    return itemsets, association_rules(itemsets, num_itemsets=len(baskets), metric="confidence",
                                       min_threshold=min_confidence)


def bench_rules(repeat: int, supports=(0.02, 0.01, 0.005, 0.003, 0.002), min_confidence: float = 0.3) -> list[dict]:
    baskets = grocery_like()
    path = Path(tempfile.mkdtemp()) / "baskets.txt"
    path.write_text("\n".join(",".join(b) for b in baskets) + "\n")
    try:
        from efficient_apriori import apriori as efficient_apriori
    except ImportError:
        efficient_apriori = None
    rows = []
    for support in supports:
        for algorithm in MINERS:
            def end_to_end(algorithm=algorithm, support=support):
                matrix, items = encode(read_basket_file(path))
                itemsets = mine_itemsets(matrix, items, support, algorithm, max_len=None)
                return itemsets, make_rules(itemsets, matrix.shape[0], min_confidence)

            seconds, (itemsets, rules) = _median_s(end_to_end, repeat)
            label = "ours: eclat" if algorithm == "eclat" else f"ours: mlxtend {algorithm}"
            rows.append({"min_support": support, "tool": label, "seconds": seconds,
                         "itemsets": len(itemsets), "rules": len(rules), "includes": "parse+encode+mine+rules"})
        def parsed(support=support):  # like for like with the peers below: the baskets already parsed
            matrix, items = encode(baskets)
            itemsets = mine_itemsets(matrix, items, support, "eclat", max_len=None)
            return itemsets, make_rules(itemsets, matrix.shape[0], min_confidence)

        seconds, (itemsets, rules) = _median_s(parsed, repeat)
        rows.append({"min_support": support, "tool": "ours: eclat, baskets already parsed", "seconds": seconds,
                     "itemsets": len(itemsets), "rules": len(rules), "includes": "encode+mine+rules"})
        seconds, (itemsets, rules) = _median_s(lambda support=support: _mlxtend_as_documented(baskets, support,
                                                                                            min_confidence), repeat)
        rows.append({"min_support": support, "tool": "mlxtend apriori as documented", "seconds": seconds,
                     "itemsets": len(itemsets), "rules": len(rules),
                     "includes": "TransactionEncoder+apriori+rules (baskets already parsed)"})
        if efficient_apriori is not None:
            tx = [tuple(b) for b in baskets]
            seconds, (itemsets, rules) = _median_s(
                lambda tx=tx, support=support: efficient_apriori(tx, min_support=support, min_confidence=min_confidence),
                repeat)
            rows.append({"min_support": support, "tool": "efficient-apriori", "seconds": seconds,
                         "itemsets": sum(len(v) for v in itemsets.values()), "rules": len(rules),
                         "includes": "mine+rules (baskets already parsed)"})
        print(f"rules min_support={support}: " + ", ".join(f"{r['tool']} {r['seconds']:.3f}s ({r['itemsets']} itemsets)"
                                                           for r in rows if r["min_support"] == support), flush=True)
    return rows


def synthetic_table(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({f"x{i}": rng.normal(size=n).astype(np.float32) for i in range(12)})
    for i, k in enumerate((3, 5, 8, 20)):
        df[f"c{i}"] = pd.Series(rng.integers(0, k, size=n)).map(lambda v, i=i: f"c{i}_{v}")
    logit = df["x0"] - 0.8 * df["x1"] + 0.5 * df["x2"] * df["x3"] + (df["c0"] == "c0_1") - 1.0
    df["target"] = np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), "yes", "no")
    return df


def bench_dask(rows: int, rounds: int, workers: int) -> list[dict]:
    import dask.dataframe as dd

    from shared.metrics import binary_classification
    from tabular_mining.classify.config import DaskConfig, LightGBMParams, XGBoostParams
    from tabular_mining.classify.dask import _encoded, dask_client, fit_lightgbm_dask, fit_xgboost_dask
    from tabular_mining.classify.model import LightGBMModel, XGBoostModel
    from tabular_mining.common.features import encode_frame, encode_target, infer_schema

    df = synthetic_table(rows)
    n_valid = min(100_000, rows // 10)
    train, valid = df.iloc[n_valid:], df.iloc[:n_valid]
    schema = infer_schema(train.head(20_000), "target", ["no", "yes"])
    X, y = encode_frame(train, schema), encode_target(train["target"], schema)
    Xv, yv = encode_frame(valid, schema), encode_target(valid["target"], schema)
    params = {"xgboost": XGBoostParams(n_estimators=rounds, learning_rate=0.1, max_depth=6, early_stopping_rounds=rounds),
              "lightgbm": LightGBMParams(n_estimators=rounds, learning_rate=0.1, num_leaves=63,
                                         early_stopping_rounds=rounds)}
    single = {"xgboost": XGBoostModel, "lightgbm": LightGBMModel}
    out = []
    for name, cls in single.items():
        t0 = time.perf_counter()
        model = cls.fit(schema, X, y, Xv, yv, params[name], seed=0)
        out.append({"model": name, "mode": "single process", "rows": len(train), "rounds": rounds,
                    "fit_s": time.perf_counter() - t0, "valid_auc": binary_classification(yv, model.predict_proba(Xv))["roc_auc"]})
        print(out[-1], flush=True)
    cluster = DaskConfig(n_workers=workers, threads_per_worker=1, processes=True)
    with dask_client(cluster) as client:
        frame = dd.from_pandas(train, npartitions=workers * 4)
        vframe = dd.from_pandas(valid, npartitions=workers)
        (dX, dy), (dXv, dyv) = _encoded(frame, schema), _encoded(vframe, schema)
        dX, dy, dXv, dyv = client.persist([dX, dy, dXv, dyv])
        for name, fit in (("xgboost", fit_xgboost_dask), ("lightgbm", fit_lightgbm_dask)):
            t0 = time.perf_counter()
            model = fit(client, schema, dX, dy, dXv, dyv, params[name], 0)
            out.append({"model": name, "mode": f"dask LocalCluster {workers}×1", "rows": len(train), "rounds": rounds,
                        "fit_s": time.perf_counter() - t0,
                        "valid_auc": binary_classification(yv, model.predict_proba(Xv))["roc_auc"]})
            print(out[-1], flush=True)
    return out


def bench_stream(records: int, batch_sizes=(16, 256, 1024)) -> list[dict]:
    from shared.cli import run_app, run_config
    from shared.runs import latest_run
    from tabular_mining.common.stream import LineSink, LineSource, StreamConfig, run_stream
    from tabular_mining.common.table import load_telco
    from tabular_mining.tasks import TASKS

    overrides = ["name=bench-stream", "eval.cv_folds=0", "model.name=xgboost"]
    assert run_app("tabular_mining", TASKS, argv=["train", "--config", "configs/tabular_mining/churn-quick.yaml",
                                                  *overrides]) == 0
    run = latest_run("tabular_mining", "bench-stream")
    _, task, cfg = run_config("tabular_mining", TASKS, run, [])
    predictor = task.predictor(cfg, run)
    rows = load_telco()[predictor.schema.names]
    lines = [json.dumps({k: (None if pd.isna(v) else v) for k, v in r.items()})
             for r in rows.sample(records, replace=True, random_state=0).to_dict("records")]
    text = "\n".join(lines) + "\n"
    out = []
    for bs in batch_sizes:
        summary = run_stream(predictor, LineSource(io.StringIO(text)), LineSink(io.StringIO()),
                             StreamConfig(batch_size=bs, max_wait_ms=1000), errors=io.StringIO())
        out.append({"batch_size": bs, "records": summary["records"], "seconds": summary["seconds"],
                    "records_per_s": summary["records_per_s"]})
        print(out[-1], flush=True)
    return out


def _table(rows: list[dict]) -> str:
    if not rows:
        return ""
    keys = list(rows[0])
    fmt = lambda v: f"{v:.3f}" if isinstance(v, float) else str(v)
    return "\n".join(["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)] +
                     ["| " + " | ".join(fmt(r.get(k, "")) for k in keys) + " |" for r in rows]) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="rules,dask,stream")
    ap.add_argument("--repeat", type=int, default=5, help="rules: median of this many runs")
    ap.add_argument("--rows", type=int, default=1_000_000, help="dask: rows of the synthetic table")
    ap.add_argument("--rounds", type=int, default=100, help="dask: boosting rounds")
    ap.add_argument("--workers", type=int, default=2, help="dask: LocalCluster worker processes")
    ap.add_argument("--records", type=int, default=20_000, help="stream: JSON records")
    args = ap.parse_args(argv)
    parts = args.only.split(",")
    results = {"machine": f"{platform.processor() or platform.machine()}, {__import__('os').cpu_count()} CPUs"}
    if "rules" in parts:
        results["rules"] = bench_rules(args.repeat)
    if "dask" in parts:
        results["dask"] = bench_dask(args.rows, args.rounds, args.workers)
    if "stream" in parts:
        results["stream"] = bench_stream(args.records)
    OUT.mkdir(parents=True, exist_ok=True)
    write_json(OUT / "tabular_scale.json", results)
    md = [f"# tabular_mining scale benchmarks\n\nMachine: {results['machine']}.\n"]
    for key, title in (("rules", "Rule mining (synthetic grocery-like baskets: 9,835 × 169 items, min_confidence 0.3)"),
                       ("dask", "XGBoost / LightGBM fit: single process vs Dask"), ("stream", "Stream throughput")):
        if key in results:
            md += [f"## {title}\n", _table(results[key])]
    write_text(OUT / "tabular_scale.md", "\n".join(md))
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
