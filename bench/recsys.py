"""Recsys benchmarks, side by side in one run on this machine:

1. training time per model on the recipe's data (SASRec: one epoch, reported per epoch; its full
   recipe trains for up to ``train.epochs`` with early stopping), and in-process scoring time over
   the full catalogue for 1 user and for 64 users;
2. ``POST /predict`` over loopback HTTP against a real uvicorn server (``bench.loadgen``): one
   known user, K=10, the full catalogue scored: p50/p99 at concurrency 1, throughput and p99 at
   concurrency 16, micro-batching on vs off.

    python -m bench.recsys [--config configs/recsys_app/movielens.yaml] [--run DIR] [--duration 5]
                           [--models popularity,itemknn,ease,sasrec] [key=value ...]

Writes bench/results/recsys.json and .md. Serves ``--run`` (default: the recipe's latest run;
trains the quick recipe first when there is none).
"""
from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.loadgen import batching_sweep, python, run_or_quick, sweep_markdown
from recsys_app.recommend.config import MODEL_NAMES, RecsysConfig
from recsys_app.recommend.data import APP, load_or_preprocess
from recsys_app.recommend.dataset import load_dataset
from recsys_app.recommend.model import build_model
from shared.config import load_config
from shared.runs import load_run_config, write_json, write_text


def _median_ms(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1000)


def training(cfg: RecsysConfig, models: list[str]) -> list[dict]:
    ds = load_or_preprocess(cfg)
    histories = ds.sequences(("train", "valid"))
    one, many = histories[:1], histories[:64]
    out = []
    for name in models:
        run_cfg = cfg.model_copy(deep=True)
        if name == "sasrec":  # one epoch, no validation: the per-epoch cost
            run_cfg.train = run_cfg.train.model_copy(update={"epochs": 1, "monitor": None, "progress": False,
                                                             "early_stopping_patience": None})
        model = build_model(run_cfg, ds.n_items, name)
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            model.fit(ds, Path(tmp))
            seconds = time.perf_counter() - t0
        model.to(cfg.train.device)
        model.score(one)
        row = {"model": name, "train_s": seconds, "per": "epoch" if name == "sasrec" else "fit",
               "score_1_user_ms": _median_ms(lambda m=model: m.score(one), 20),
               "score_64_users_ms": _median_ms(lambda m=model: m.score(many), 3)}
        print(f"{name:10} train {seconds:8.1f}s/{row['per']}  score 1 user {row['score_1_user_ms']:7.2f} ms  "
              f"64 users {row['score_64_users_ms']:8.1f} ms", flush=True)
        out.append(row)
    return out


def to_markdown(result: dict) -> str:
    lines = [f"Data: {result['data']}. Machine: {result['machine']}.", "",
             "### Training and in-process scoring (full catalogue)", "",
             "| model | train (s) | per | score 1 user (ms) | score 64 users (ms) |", "|---|---|---|---|---|"]
    for r in result["training"]:
        lines.append(f"| {r['model']} | {r['train_s']:.1f} | {r['per']} | {r['score_1_user_ms']:.3f} | "
                     f"{r['score_64_users_ms']:.1f} |")
    lines += ["", f"### POST /predict over loopback ({result['served_model']}, one user per request, K=10)", "",
              sweep_markdown(result["http"]), ""]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/recsys_app/movielens.yaml")
    ap.add_argument("--run", default=None, help="run to serve (default: the recipe's latest)")
    ap.add_argument("--duration", type=float, default=5.0, help="seconds per load level")
    ap.add_argument("--models", default=",".join(MODEL_NAMES))
    ap.add_argument("overrides", nargs="*", metavar="key=value")
    args = ap.parse_args()
    cfg = load_config(RecsysConfig, args.config, args.overrides)
    run = run_or_quick(APP, cfg.name, "configs/recsys_app/movielens-quick.yaml", args.run)
    served = load_run_config(run)["model"]["name"]
    ds = load_or_preprocess(cfg)
    result = {"config": args.config, "overrides": args.overrides, "run": str(run), "served_model": served,
              "data": f"{ds.n_users} users, {ds.n_items} items, {len(ds.frame)} interactions",
              "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
              "training": training(cfg, [m.strip() for m in args.models.split(",") if m.strip()])}
    user = load_dataset(run).user_ids[0]
    result["http"] = batching_sweep([python(), "-m", "recsys_app", "serve", "--run", str(run)],
                                    {"instances": [{"user": user, "k": 10}]}, (1, 16), args.duration)
    out = Path("bench/results")
    write_json(out / "recsys.json", result)
    md = to_markdown(result)
    write_text(out / "recsys.md", md)
    print(md)


if __name__ == "__main__":
    main()
