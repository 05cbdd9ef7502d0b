"""Recsys benchmarks, side by side in one run on this machine:

1. training time per model on the recipe's data (SASRec: one epoch, reported per epoch; its full
   recipe trains for up to ``train.epochs`` with early stopping), and in-process scoring time over
   the full catalogue for 1 user and for 64 users;
2. ``POST /predict`` over loopback HTTP against a real uvicorn server (``bench.loadgen``): one
   known user, K=10, the full catalogue scored: p50/p99 at concurrency 1, throughput and p99 at
   concurrency 16, micro-batching on vs off.

    python -m bench.recsys [--config configs/recsys_app/movielens.yaml] [--run DIR] [--duration 5]
                           [--models popularity,itemknn,ease,als,sasrec] [key=value ...]
    python -m bench.recsys --scale 10000,50000       # 3. only: fit / scoring time on generated catalogues

3. with ``--scale``: fit and per-user scoring time of each model on generated data with catalogues
   of those sizes (``recsys_app.recommend.synthetic``); EASE where its dense solve does not fit is
   refused by its memory guard, and the table says so. Writes bench/results/recsys_scale.{json,md}.

Writes bench/results/recsys.json and .md. Serves ``--run`` (default: the recipe's latest run;
trains the quick recipe first when there is none).
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.loadgen import batching_sweep, python, run_or_quick, sweep_markdown
from recsys_app.recommend.config import MODEL_NAMES, RecsysConfig
from recsys_app.recommend.data import APP, build_dataset, load_or_preprocess
from recsys_app.recommend.dataset import load_dataset
from recsys_app.recommend.model import build_model
from recsys_app.recommend.sasrec import training_windows
from recsys_app.recommend.synthetic import generate
from shared.config import load_config
from shared.errors import UserError
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


SASREC_STEPS = 10  # training steps timed at each catalogue size; the epoch figure extrapolates them


def _fit_row(cfg: RecsysConfig, ds, name: str, histories) -> dict:
    """Fit ``name`` on ``ds`` and time it, or say why its guard refused; then time scoring."""
    run_cfg = cfg.model_copy(deep=True)
    if name == "sasrec":  # a few steps, no validation: one epoch is their mean × batches per epoch
        run_cfg.train = run_cfg.train.model_copy(update={"max_steps": SASREC_STEPS, "monitor": None,
                                                         "progress": False, "early_stopping_patience": None})
    model = build_model(run_cfg, ds.n_items, name)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        try:
            info = model.fit(ds, Path(tmp))
        except UserError as exc:
            return {"refused": str(exc)}
        seconds = time.perf_counter() - t0
    row = {"per": "fit"}
    if name == "sasrec":
        windows = len(training_windows(ds.sequences(("train",)), cfg.model.sasrec.max_len))
        batches = -(-windows // cfg.train.batch_size)
        # time in the optimizer steps only (the loop's own clock): set-up, checkpoints excluded
        seconds = info["train_seconds"] / info["steps"] * batches
        row = {"per": f"epoch (est.: {info['steps']} of {batches:,} steps)", "steps_timed": info["steps"],
               "step_s": info["train_seconds"] / info["steps"], "batches_per_epoch": batches}
    one, many = histories[:1], histories[:64]
    model.score(one)
    return {**row, "fit_s": seconds, "score_1_user_ms": _median_ms(lambda: model.score(one), 10),
            "score_64_users_ms": _median_ms(lambda: model.score(many), 3)}


def scale(cfg: RecsysConfig, sizes: list[int], models: list[str]) -> list[dict]:
    """Fit and per-user scoring time on generated data (:mod:`recsys_app.recommend.synthetic`) with
    catalogues of ``sizes`` items (users = items / 2, ~60 interactions each). SASRec: the mean of
    ``SASREC_STEPS`` training steps × the batches of one epoch (validation not included). EASE
    beyond the machine's memory is refused by its guard, whose message the row keeps."""
    rows = []
    for n_items in sizes:
        t0 = time.perf_counter()
        ratings, _ = generate(users=n_items // 2, items=n_items, per_user=60, seed=0)
        ds = build_dataset(ratings.assign(row=np.arange(len(ratings))), None, cfg.data)
        histories = ds.sequences(("train", "valid"))
        print(f"{n_items} items: {ds.n_users} users, {len(ds.frame)} interactions "
              f"(generated and split in {time.perf_counter() - t0:.1f}s)", flush=True)
        for name in models:
            row = {"items": ds.n_items, "users": ds.n_users, "interactions": len(ds.frame), "model": name,
                   **_fit_row(cfg, ds, name, histories), "load_average": os.getloadavg()[0]}
            rows.append(row)
            if "refused" in row:
                print(f"  {name:10} refused: {row['refused']}", flush=True)
            else:
                print(f"  {name:10} fit {row['fit_s']:8.1f}s ({row['per']})  score 1 user "
                      f"{row['score_1_user_ms']:8.2f} ms  64 users {row['score_64_users_ms']:9.1f} ms  "
                      f"load {row['load_average']:.1f}", flush=True)
    return rows


def scale_markdown(rows: list[dict]) -> str:
    lines = ["| items | users | interactions | model | fit (s) | per | score 1 user (ms) | score 64 users (ms) | load |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        head = f"| {r['items']:,} | {r['users']:,} | {r['interactions']:,} | {r['model']} |"
        if "refused" in r:
            lines.append(head + f" refused by its memory guard | | | | {r['load_average']:.1f} |")
        else:
            lines.append(head + f" {r['fit_s']:.1f} | {r['per']} | {r['score_1_user_ms']:.2f} | "
                                f"{r['score_64_users_ms']:.1f} | {r['load_average']:.1f} |")
    refusals = [f"- {r['model']} at {r['items']:,} items: \"{r['refused']}\"" for r in rows if "refused" in r]
    return "\n".join(lines + ([""] + refusals if refusals else []))


def scale_header(command: str) -> str:
    """Where the figures come from: the command, the machine, its threads and load."""
    import torch

    return (f"`{command}`\n\nMachine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
            f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, torch threads "
            f"{torch.get_num_threads()}; load average at the end {os.getloadavg()[0]:.1f} (1 min), "
            f"{os.getloadavg()[1]:.1f} (5 min). The load column is the 1-minute load after each row.\n")


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
    ap.add_argument("--scale", default=None, metavar="N,N",
                    help="only the scale benchmark: generated catalogues of these sizes (e.g. 10000,50000)")
    ap.add_argument("overrides", nargs="*", metavar="key=value")
    args = ap.parse_args()
    cfg = load_config(RecsysConfig, args.config, args.overrides)
    if args.scale:
        rows = scale(cfg, [int(n) for n in args.scale.split(",")], [m.strip() for m in args.models.split(",")])
        header = scale_header("python -m bench.recsys " + " ".join(sys.argv[1:]))
        write_json(Path("bench/results/recsys_scale.json"), {"header": header, "rows": rows})
        md = header + "\n" + scale_markdown(rows) + "\n"
        write_text(Path("bench/results/recsys_scale.md"), md)
        print(md)
        return
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
