"""Lift of masked-LM pre-training against pre-training minutes, on sentiment and on NER
(``python -m bench.nlp_pretrain``):

    OMP_NUM_THREADS=1 python -m bench.nlp_pretrain --marks 0 5 10 20 30 [--seeds 0 1] [--threads 1]

1. One pre-training run of ``configs/nlp_app/pretrain_packaged.yaml`` (every Chinese text the
   installed packages carry, no validation/test sentence of either task) with
   ``snapshots.minutes=<marks>``: the encoder is saved at each mark and training stops at the last.
   Mark 0 is the initial weights: the random-init point, with the same vocabulary as the others.
2. From each snapshot: ``sentiment.yaml model.name=bert`` at the guide's compare settings (2 epochs,
   AdamW 5e-4, max length 64; test accuracy) and ``ner_bert-quick.yaml`` (3,000 People's Daily
   sentences, 3 epochs, lr 5e-4; test entity F1): the same fine-tuning budget for every mark.
3. The TF-IDF baseline on the same sentiment split, as the line to beat.

Results: ``bench/results/nlp_pretrain.json`` and ``.md`` (a row per mark: minutes, steps and
sequences of pre-training, masked-LM figures, fine-tuned scores and the lift over mark 0) and
``bench/results/nlp_pretrain_lift-vs-minutes.png``. ``--pretrain-run DIR`` reuses a run's snapshots;
``--pretrain-set``, ``--sentiment-set``, ``--ner-set`` add recipe overrides (key=value); ``--reuse``
takes finished fine-tuning runs of the same names as they are (to finish an interrupted sweep, or to
tabulate some marks of one: ``--pretrain-run DIR --marks 0 5 --reuse``).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import time
from pathlib import Path

import torch

from nlp_app.pretrain.config import PretrainConfig
from nlp_app.pretrain.data import packaged_cache
from nlp_app.tasks import TASKS
from shared import runs
from shared.cli import run_app
from shared.config import load_config, resolve_recipe
from shared.runs import latest_run, read_json, write_json, write_text

log = logging.getLogger("bench.nlp_pretrain")
PRETRAIN = "configs/nlp_app/pretrain_packaged.yaml"
SENTIMENT = ["--config", "configs/nlp_app/sentiment.yaml", "model.name=bert", "train.lr=5e-4",
             "model.max_length=64"]
NER = ["--config", "configs/nlp_app/ner_bert-quick.yaml", "train.lr=5e-4"]
QUIET = ["train.progress=false"]
RESULTS = Path("bench/results")


def _train(argv: list[str], name: str, reuse: bool = False) -> tuple[Path, float | None]:
    """``python -m nlp_app train ARGV name=NAME`` in this process; the run and its wall seconds
    (with ``reuse``, a finished run of that name is taken as it is: seconds ``None``)."""
    if reuse and (runs.task_dir("nlp_app", name) / "latest").exists():
        return latest_run("nlp_app", name), None
    t0 = time.perf_counter()
    status = run_app("nlp_app", TASKS, argv=["train", *argv, f"name={name}", *QUIET])
    if status:
        raise SystemExit(f"train {' '.join(argv)} failed with status {status}")
    return latest_run("nlp_app", name), time.perf_counter() - t0


def pretrain(marks: list[float], overrides: list[str]) -> Path:
    minutes = "[" + ",".join(f"{m:g}" for m in marks) + "]"
    run, _ = _train(["--config", PRETRAIN, *overrides, f"snapshots.minutes={minutes}"], "pretrain-packaged-lift")
    return run


def finetune(snapshot: Path, seeds: list[int], args) -> dict:
    """Sentiment (per seed) and NER (seed 0) fine-tuned from ``snapshot``."""
    mark = snapshot.name
    sentiment = []
    for seed in seeds:
        run, secs = _train([*SENTIMENT, f"model.pretrained={snapshot}", f"train.seed={seed}", *args.sentiment_set],
                           f"ptlift-sentiment-{mark}-s{seed}", args.reuse)
        m = read_json(run / "metrics.json")
        sentiment.append({"seed": seed, "accuracy": m["test/accuracy"], "roc_auc": m.get("test/roc_auc"),
                          "seconds": secs and round(secs, 1), "run": str(run)})
    run, secs = _train([*NER, f"model.pretrained={snapshot}", *args.ner_set], f"ptlift-ner-{mark}", args.reuse)
    m = read_json(run / "metrics.json")
    ner = {"f1": m["test/f1"], **{t: m.get(f"test/{t}/f1") for t in ("PER", "LOC", "ORG")},
           "seconds": secs and round(secs, 1), "run": str(run)}
    return {"sentiment": sentiment, "sentiment_accuracy": statistics.mean(r["accuracy"] for r in sentiment),
            "ner": ner, "ner_f1": ner["f1"]}


def masked_lm_scores(snapshot: Path, pretrain_run: Path) -> dict:
    """The MLM validation figures logged nearest before this snapshot (none for mark 0)."""
    steps = read_json(snapshot / "mark.json")["steps"]
    best = {}
    for line in (pretrain_run / "history.jsonl").read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        if "valid/mlm_loss" in rec and 0 < rec["step"] <= steps:
            best = {"at_step": rec["step"], "mlm_loss": rec["valid/mlm_loss"],
                    "masked_accuracy": rec["valid/masked_accuracy"]}
    return best


def draw(rows: list[dict], baseline: float | None, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = [r["seconds"] / 60 for r in rows]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    n_seeds = len(rows[0]["sentiment"])
    ax1.plot(x, [r["sentiment_accuracy"] for r in rows], "o-",
             label=f"BERT 2×128 fine-tuned (mean of {n_seeds} seeds)" if n_seeds > 1 else "BERT 2×128 fine-tuned")
    if n_seeds > 1:
        ax1.plot([xi for xi, r in zip(x, rows) for _ in r["sentiment"]],
                 [s["accuracy"] for r in rows for s in r["sentiment"]], ".", color="C0", alpha=0.4, label="each seed")
    if baseline is not None:
        ax1.axhline(baseline, ls="--", color="gray", label=f"TF-IDF baseline {baseline:.3f}")
    ax1.set(title="sentiment: test accuracy", xlabel="pre-training minutes (1 thread)", ylabel="accuracy")
    accs = [s["accuracy"] for r in rows for s in r["sentiment"]] + ([baseline] if baseline is not None else [])
    ax1.set_ylim(min(accs) - 0.035, max(accs) + 0.01)  # room for the legend under the points
    ax1.legend(loc="lower right", fontsize=8)
    ax2.plot(x, [r["ner_f1"] for r in rows], "s-", color="C1", label="BERT 2×128 tagger fine-tuned")
    ax2.set(title="NER (People's Daily): test entity F1", xlabel="pre-training minutes (1 thread)",
            ylabel="entity F1")
    ax2.legend(loc="upper left")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
    fig.suptitle("Lift of masked-LM pre-training on packaged Chinese text (0 min = random init)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def table(rows: list[dict], baseline: float | None) -> str:
    lines = [("| pre-train min | steps | sequences | MLM valid masked acc / loss | sentiment test acc (per seed) | lift | "
              "NER test F1 | lift | PER / LOC / ORG F1 |"), "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        mlm = r["masked_lm"]
        mlm_text = f"{mlm['masked_accuracy']:.3f} / {mlm['mlm_loss']:.2f} (step {mlm['at_step']:,})" if mlm else "–"
        per_seed = ", ".join(f"{x['accuracy']:.4f}" for x in r["sentiment"])
        seeds = f" ({per_seed})" if len(r["sentiment"]) > 1 else ""
        types = " / ".join(f"{r['ner'][t]:.3f}" if r["ner"].get(t) is not None else "–" for t in ("PER", "LOC", "ORG"))
        lines.append(f"| {r['seconds'] / 60:.1f} | {r['steps']:,} | {r['sequences']:,} | {mlm_text} | "
                     f"{r['sentiment_accuracy']:.4f}{seeds} | {r['sentiment_lift']:+.4f} | {r['ner_f1']:.4f} | "
                     f"{r['ner_lift']:+.4f} | {types} |")
    if baseline is not None:
        lines.append(f"\nTF-IDF baseline on the same sentiment test split: {baseline:.4f}.")
    return "\n".join(lines) + "\n"


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--marks", type=float, nargs="+", default=[0, 5, 10, 20, 30],
                        help="pre-training minutes at which the encoder is saved and fine-tuned (0: random init)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="sentiment fine-tuning seeds")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--pretrain-run", type=Path, default=None, help="reuse this run's snapshots/")
    parser.add_argument("--pretrain-set", nargs="*", default=[], help="overrides of the pre-training recipe")
    parser.add_argument("--sentiment-set", nargs="*", default=[], help="overrides of the sentiment fine-tuning")
    parser.add_argument("--ner-set", nargs="*", default=[], help="overrides of the NER fine-tuning")
    parser.add_argument("--reuse", action="store_true",
                        help="take finished fine-tuning runs of the same names as they are (an interrupted sweep)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the TF-IDF baseline line")
    parser.add_argument("--out", type=Path, default=RESULTS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse(argv)
    torch.set_num_threads(args.threads)
    started, load_start = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), os.getloadavg()
    run = args.pretrain_run or pretrain(sorted(args.marks), args.pretrain_set)
    snapshots = sorted((p for p in (run / "snapshots").iterdir()
                        if (p / "mark.json").exists() and read_json(p / "mark.json")["minutes"] in args.marks),
                       key=lambda p: read_json(p / "mark.json")["minutes"])
    rows = []
    for snap in snapshots:
        mark = read_json(snap / "mark.json")
        rows.append({**{k: mark[k] for k in ("minutes", "seconds", "steps", "sequences")},
                     "masked_lm": masked_lm_scores(snap, run), **finetune(snap, args.seeds, args)})
    for r in rows:
        r["sentiment_lift"] = r["sentiment_accuracy"] - rows[0]["sentiment_accuracy"]
        r["ner_lift"] = r["ner_f1"] - rows[0]["ner_f1"]
    baseline = None
    if not args.no_baseline:
        base_run, _ = _train(["--config", "configs/nlp_app/sentiment.yaml", "model.name=baseline"], "ptlift-baseline",
                             args.reuse)
        baseline = read_json(base_run / "metrics.json")["test/accuracy"]
    cfg = load_config(PretrainConfig, resolve_recipe("nlp_app", PRETRAIN), args.pretrain_set)
    manifest = packaged_cache(cfg) / "manifest.json"
    result = {"command": "python -m bench.nlp_pretrain " + " ".join(argv if argv is not None else []),
              "threads": args.threads, "started": started, "load_average_start": load_start,
              "load_average_end": os.getloadavg(), "pretrain_run": str(run), "seeds": args.seeds,
              "corpus": read_json(manifest) if manifest.exists() else None, "baseline_accuracy": baseline,
              "rows": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "nlp_pretrain.json", result)
    write_text(args.out / "nlp_pretrain.md", table(rows, baseline))
    draw(rows, baseline, args.out / "nlp_pretrain_lift-vs-minutes.png")
    return result


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
