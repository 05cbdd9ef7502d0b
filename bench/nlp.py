"""NLP benchmarks, side by side in one run on this machine:

1. training throughput (samples/s) of our loop (:func:`shared.training.fit`, length-grouped
   batches + dynamic padding) vs a plain ``transformers.Trainer`` (group-by-length sampling + dynamic
   padding) on the same BERT, data, batch size and steps (the Trainer needs ``accelerate``);
2. inference texts/s for torch fp32 vs ONNX Runtime fp32 vs ONNX Runtime int8 at batch 1 and 32,
   with the test accuracy of each;
3. ``POST /predict`` over loopback against a real uvicorn server: throughput and p99 at
   concurrency 1 and 32, micro-batching on vs off (one text per request).

    python -m bench.nlp [--run runs/nlp_app/sentiment/latest] [--duration 5] [--threads N] [--skip-train]

The served model and the test split come from the run's own config.

On a machine shared with other jobs, ``OMP_NUM_THREADS=1 python -m bench.nlp --threads 1``: torch's
OpenMP threads spin and thrash when the cores are oversubscribed.

Writes bench/results/nlp.json and nlp.md. Trains the quick recipe and exports it if there is no run.
"""
from __future__ import annotations

import argparse
import logging
import subprocess
import tempfile
import time
from pathlib import Path

import torch

from bench.loadgen import batching_sweep, python, run_or_quick, sweep_markdown
from nlp_app.classify.config import ClassifyConfig
from nlp_app.classify.export import export
from nlp_app.classify.model import build_classifier, load_classifier, model_dir
from nlp_app.classify.train import ClassificationTask
from nlp_app.common.bert import DynamicPadding, TokenizedTexts, build_tokenizer, encode
from nlp_app.common.corpus import load_splits
from shared import runs
from shared.batching import LengthGroupedBatchSampler
from shared.config import load_config
from shared.inference import ONNX_FILES
from shared.training import fit

log = logging.getLogger("bench.nlp")
QUICK = "configs/nlp_app/sentiment-quick.yaml"


def training_throughput(cfg_path: str, n_texts: int, steps: int, repeats: int = 2) -> dict:
    """Samples/s of our loop and of the Trainer, alternating runs, best of ``repeats`` each."""
    cfg = load_config(ClassifyConfig, cfg_path, ["train.device=cpu", "train.progress=false", f"train.max_steps={steps}",
                                 "train.epochs=100", "train.log_every_steps=1000", "train.monitor=null"])
    splits, labels, _ = load_splits(cfg.data)
    texts, y = splits["train"].texts[:n_texts], [labels.index(v) for v in splits["train"].labels[:n_texts]]
    tokenizer = build_tokenizer(cfg.model, texts)
    data = TokenizedTexts(encode(tokenizer, texts, cfg.model.max_length), y)
    collate = DynamicPadding(tokenizer.pad_token_id)
    samples = steps * cfg.train.batch_size

    def ours() -> float:
        torch.manual_seed(0)
        model = build_classifier(cfg.model, labels, tokenizer)
        sampler = LengthGroupedBatchSampler(data.lengths, cfg.train.batch_size, seed=0)
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            fit(model, ClassificationTask(), data, None, cfg.train, tmp, collate_fn=collate,
                train_batch_sampler=sampler, resume=False)
            return samples / (time.perf_counter() - t0)

    def trainer() -> float:
        from transformers import Trainer, TrainingArguments

        torch.manual_seed(0)
        model = build_classifier(cfg.model, labels, tokenizer)
        with tempfile.TemporaryDirectory() as tmp:
            args = TrainingArguments(output_dir=tmp, max_steps=steps, per_device_train_batch_size=cfg.train.batch_size,
                                     learning_rate=cfg.train.lr, weight_decay=cfg.train.weight_decay,
                                     warmup_steps=cfg.train.warmup_ratio, max_grad_norm=cfg.train.clip_grad_norm or 0,
                                     train_sampling_strategy="group_by_length", report_to=[], save_strategy="no", eval_strategy="no",
                                     logging_strategy="no", use_cpu=True, dataloader_num_workers=0,
                                     disable_tqdm=True, seed=0)
            hf = Trainer(model=model, args=args, train_dataset=data, data_collator=collate)
            t0 = time.perf_counter()
            hf.train()
            return samples / (time.perf_counter() - t0)

    out: dict = {"model": f"{cfg.model.num_layers}x{cfg.model.hidden_size}", "texts": len(texts), "steps": steps,
                 "batch_size": cfg.train.batch_size, "ours": [], "trainer": []}
    for _ in range(repeats):
        out["ours"].append(ours())
        try:
            out["trainer"].append(trainer())
        except ImportError as exc:
            out["trainer_error"] = str(exc).splitlines()[0]
    out["ours_samples_per_s"] = max(out["ours"])
    if out["trainer"]:
        out["trainer_samples_per_s"] = max(out["trainer"])
        out["ours_vs_trainer"] = out["ours_samples_per_s"] / out["trainer_samples_per_s"]
    return out


def bert_of(run: Path) -> str | None:
    """The name under which ``run`` keeps its BERT (None: a run of the older one-model layout)."""
    return "bert" if (run / "models" / "bert").is_dir() else None


def inference_speed(run: Path, texts: list[str], batch_sizes=(1, 32), threads: int | None = None) -> list[dict]:
    """Texts/s per backend and batch size (batch 1 on the first 200 texts), plus test accuracy."""
    report = runs.read_json(run / "export.json") if (run / "export.json").exists() else {}
    folder, name = model_dir(run, bert_of(run)), bert_of(run)
    rows = []
    for backend in ("torch", "onnx", "onnx-int8"):
        if backend != "torch" and not (folder / ONNX_FILES[backend]).exists():
            continue
        for bs in batch_sizes:
            clf = load_classifier(run, backend, batch_size=bs, threads=threads, model=name)
            sample = texts[:200] if bs == 1 else texts[:1024]
            clf.predict_proba(sample[: 2 * bs])  # warm up
            t0 = time.perf_counter()
            clf.predict_proba(sample)
            seconds = time.perf_counter() - t0
            acc = report.get(f"test/accuracy_{backend}")
            rows.append({"backend": backend, "batch_size": bs, "texts_per_s": len(sample) / seconds,
                         "test_accuracy": acc})
    base = {r["batch_size"]: r["texts_per_s"] for r in rows if r["backend"] == "torch"}
    for r in rows:
        r["speedup_vs_torch"] = r["texts_per_s"] / base[r["batch_size"]]
    return rows


def serving_load(run: Path, duration: float, concurrencies=(1, 32)) -> list[dict]:
    body = {"instances": ["这本书写得很好，内容丰富，印刷也清楚，值得推荐给朋友。"]}
    cmd = [python(), "-m", "nlp_app", "serve", "--run", str(run)] + ([f"serve.model={bert_of(run)}"] if bert_of(run) else [])
    return batching_sweep(cmd, body, concurrencies, duration)


def run_config(run: Path) -> ClassifyConfig:
    """The run's config, set to use its BERT (whichever model the run serves)."""
    saved = runs.load_run_config(run)
    saved.setdefault("serve", {})["model"] = bert_of(run)
    return ClassifyConfig.model_validate(saved)


def ensure_run(run_arg: str | None) -> Path:
    """A run with a BERT and its ONNX files: ``run_arg``, else the latest sentiment run with a BERT,
    else the quick recipe's BERT, trained now."""
    run = run_or_quick("nlp_app", "sentiment", QUICK, run_arg)
    if not run_arg and not (model_dir(run, bert_of(run)) / "config.json").exists():  # no BERT in the latest
        subprocess.run([python(), "-m", "nlp_app", "train", "--config", QUICK, "model.name=bert"], check=True)
        run = runs.latest_run("nlp_app", "sentiment")
    if not (run / "export.json").exists() or not (model_dir(run, bert_of(run)) / "model.int8.onnx").exists():
        export(run_config(run), run)
    return run


def to_markdown(result: dict) -> str:
    t = result.get("training", {})
    lines = ["# nlp_app benchmarks", "", f"Run: `{result['run']}`; {result['machine']}", ""]
    if t:
        lines += ["## Training throughput (samples/s, CPU fp32)", "",
                  (f"BERT {t['model']}, {t['texts']} texts, batch {t['batch_size']}, {t['steps']} steps, "
                   f"best of {len(t['ours'])}."), "", "| loop | samples/s |", "|---|---|",
                  f"| shared.training.fit | {t['ours_samples_per_s']:.1f} |"]
        if "trainer_samples_per_s" in t:
            lines += [f"| transformers.Trainer | {t['trainer_samples_per_s']:.1f} |", "",
                      f"ours / Trainer = {t['ours_vs_trainer']:.2f}"]
        else:
            lines += ["", f"Trainer not run: {t.get('trainer_error')}"]
        lines.append("")
    lines += ["## Inference (texts/s)", "", "| backend | batch | texts/s | × torch | test accuracy |", "|---|---|---|---|---|"]
    for r in result["inference"]:
        acc = f"{r['test_accuracy']:.4f}" if r["test_accuracy"] is not None else "-"
        lines.append(f"| {r['backend']} | {r['batch_size']} | {r['texts_per_s']:.1f} | {r['speedup_vs_torch']:.2f} | {acc} |")
    if result.get("serving"):
        lines += ["", "## POST /predict over loopback (one text per request)", "", sweep_markdown(result["serving"])]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", default=None, help="a BERT run (default: runs/nlp_app/sentiment/latest)")
    p.add_argument("--duration", type=float, default=5.0, help="seconds per load level")
    p.add_argument("--train-steps", type=int, default=30)
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads for torch and ONNX Runtime alike (default: the libraries' own)")
    p.add_argument("--skip-train", action="store_true")
    p.add_argument("--skip-serve", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    if args.threads:
        torch.set_num_threads(args.threads)
    run = ensure_run(args.run)
    test = load_splits(run_config(run).data)[0]["test"].texts
    result = {"run": str(run), "machine": f"{torch.get_num_threads()} torch threads, torch {torch.__version__}"}
    if not args.skip_train:
        result["training"] = training_throughput(QUICK, n_texts=1024, steps=args.train_steps)
        log.info("training: %s", result["training"])
    result["inference"] = inference_speed(run, test, threads=args.threads)
    log.info("inference: %s", result["inference"])
    if not args.skip_serve:
        result["serving"] = serving_load(run, args.duration)
    out = Path("bench/results")
    runs.write_json(out / "nlp.json", result)
    runs.write_text(out / "nlp.md", to_markdown(result))
    print(to_markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
