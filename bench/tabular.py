"""Churn serving benchmarks, side by side in one run on this machine:

1. in-process predict latency (1 row) and throughput (10k rows) per model, from records through
   our encoder, next to the library's own pandas path (``predict`` on a one-row DataFrame);
2. ``POST /predict`` over loopback HTTP against a real uvicorn server: p50/p99 at concurrency 1,
   throughput and p99 at concurrency 8 and 32, micro-batching on vs off (one instance per request),
   next to the ceiling (:mod:`bench.ceiling`), all driven side by side (:mod:`bench.loadgen`);
3. the same with ``"contributions": true`` (TreeSHAP through the native booster, which costs per
   call: where micro-batching has a model call to amortise), batching on vs off;
4. ``serve.workers`` 1 vs 2 (batching on) at concurrency 1 and 32.

    python -m bench.tabular [--duration 5] [--run runs/tabular_mining/churn/latest]

Writes bench/results/tabular.json and .md. Trains the quick churn recipe first if there is no run.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bench.loadgen import (
    batching_sweep,
    python,
    run_or_quick,
    sweep_markdown,
    workers_markdown,
    workers_sweep,
)
from shared.runs import load_run_config, write_json, write_text
from tabular_mining.classify.data import load_splits
from tabular_mining.classify.evaluate import load_classify_run
from tabular_mining.classify.serve import ClassifyPredictor
from tabular_mining.common.features import encode_frame, encode_records
from tabular_mining.common.table import TableData


def _median_ms(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1000)


def in_process(run: Path, rows: pd.DataFrame) -> list[dict]:
    loaded = load_classify_run(run)
    schema = loaded.schema
    record = ClassifyPredictor(load_classify_run(run, only_served=True), 0.5).example()["instances"][0]
    big = pd.concat([rows] * (10_000 // len(rows) + 1), ignore_index=True).head(10_000)
    out = []
    for name, model in loaded.models.items():
        def one(model=model):
            return model.predict_proba(encode_records([record], schema))

        one()
        t0 = time.perf_counter()
        model.predict_proba(encode_frame(big, schema))
        bulk = time.perf_counter() - t0
        row = {"model": name, "one_row_ms": _median_ms(one, 500), "rows_per_s_10k": 10_000 / bulk}
        row["pandas_one_row_ms"] = _median_ms(lambda name=name, model=model: _pandas_path(name, model, rows.head(1),
                                                                                         schema), 200)
        out.append(row)
    return out


def _pandas_path(name, model, frame: pd.DataFrame, schema):
    """The library's own DataFrame path, the usual way a model is called in a notebook."""
    X = frame[schema.names].copy()
    for f in schema.features:
        if f.kind == "categorical":
            X[f.name] = pd.Categorical(X[f.name].astype(object), categories=f.categories)
    if name == "xgboost":
        import xgboost as xgb

        return model.booster.predict(xgb.DMatrix(X, enable_categorical=True))
    if name == "lightgbm":
        return model.booster.predict(X)
    return model.predict_proba(encode_frame(frame, schema))


def to_markdown(result: dict) -> str:
    lines = ["### In-process (served model and the others)", "",
             "| model | 1 row, our encoder (ms) | 1 row, library on a DataFrame (ms) | 10k rows (rows/s) |",
             "|---|---|---|---|"]
    for r in result["in_process"]:
        lines.append(f"| {r['model']} | {r['one_row_ms']:.3f} | {r['pandas_one_row_ms']:.3f} | "
                     f"{r['rows_per_s_10k']:,.0f} |")
    title = f"### POST /predict over loopback ({result['served_model']}, scored with {result['scoring']}, one per request)"
    lines += ["", title, "", sweep_markdown(result["http"]), ""]
    if result.get("contributions"):
        lines += ["### The same with `\"contributions\": true` (TreeSHAP through the native booster, a cost per call)",
                  "", sweep_markdown(result["contributions"]), ""]
    lines += ["### serve.workers (batching on)", "", workers_markdown(result["workers"]), ""]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", default=None)
    ap.add_argument("--duration", type=float, default=5.0, help="seconds per load level")
    args = ap.parse_args()
    run = run_or_quick("tabular_mining", "churn", "configs/tabular_mining/churn-quick.yaml", args.run)
    loaded = load_classify_run(run, only_served=True)
    config = load_run_config(run)
    rows = load_splits(config["name"], TableData.model_validate(config["data"])).test
    predictor = ClassifyPredictor(loaded, config["eval"]["threshold"])
    body = predictor.example()
    body["contributions"] = False
    serve = [python(), "-m", "tabular_mining", "serve", "--run", str(run)]
    result = {"run": str(run), "served_model": loaded.served, "scoring": predictor.scoring,
              "in_process": in_process(run, rows), "http": batching_sweep(serve, body, (1, 8, 32), args.duration),
              "contributions": batching_sweep(serve, {**body, "contributions": True}, (1, 32), args.duration,
                                              ceiling=False),
              "workers": workers_sweep(serve, body, (1, 32), args.duration)}
    out = Path("bench/results")
    write_json(out / "tabular.json", result)
    md = to_markdown(result)
    write_text(out / "tabular.md", md)
    print(md)


if __name__ == "__main__":
    main()
