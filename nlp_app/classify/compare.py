"""The ``compare`` stage: baseline vs BERT from random init vs BERT after masked-LM
pre-training, on one split and the same fine-tuning budget; one table::

    python -m nlp_app compare --config configs/nlp_app/sentiment.yaml
    python -m nlp_app compare --config configs/nlp_app/sentiment.yaml \
        compare.pretrained_run=runs/nlp_app/pretrain/<id> "compare.seeds=[0,1,2]"

``compare.pretrained_run`` reuses a pre-training run (its wall time, and that of the runs it
continued, is still counted); ``compare.seeds`` fine-tunes each BERT once per seed, so a
difference can be read against the spread between seeds.

Writes ``runs/nlp_app/<name>-compare/<id>/`` with ``comparison.md`` / ``comparison.json``,
``metrics.json`` (``test/accuracy_<model>`` …) and ``roc_test.png``; each model is also an
ordinary run of its own. Pre-training reads the same data section (so the same split: no
validation or test text is pre-trained on) and its wall time is counted in the total.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from nlp_app.config import PretrainConfig, PretrainDataConfig, SentimentConfig, load_recipe
from nlp_app.data import load_splits
from nlp_app.inference import load_classifier
from nlp_app.pretrain import pretrain
from nlp_app.train import train
from shared import plots, runs
from shared.config import load_config, to_dict

log = logging.getLogger(__name__)


def _variant(cfg: SentimentConfig, **model) -> SentimentConfig:
    data = to_dict(cfg)
    data["model"].update(model)
    return SentimentConfig.model_validate(data)


def pretrain_config_for(cfg: SentimentConfig) -> PretrainConfig:
    """The recipe's pre-training config, on the fine-tuning recipe's data (same split)."""
    pre = load_config(PretrainConfig, cfg.compare.pretrain_config, cfg.compare.pretrain_overrides)
    data = {**cfg.data.model_dump(), "use_train_texts": True, "text_files": pre.data.text_files}
    return pre.model_copy(update={"data": PretrainDataConfig.model_validate(data)})


def pretrain_chain(run: Path) -> tuple[float, list[str]]:
    """Pre-training seconds of ``run`` plus every pre-training run it continued (its
    ``model.pretrained`` chain), and their names, oldest first."""
    seconds, names, seen = 0.0, [], set()
    current: Path | None = runs.resolve_run(run)
    while current is not None and current not in seen and (current / "metrics.json").exists():
        seen.add(current)
        seconds += runs.load_metrics(current).get("train/total_seconds", 0.0)
        names.insert(0, current.name)
        parent = runs.load_run_config(current).get("model", {}).get("pretrained")
        current = Path(parent).resolve() if parent and Path(parent, "config.yaml").exists() else None
    return seconds, names


def _seeded(cfg: SentimentConfig, seed: int) -> SentimentConfig:
    return cfg.model_copy(update={"train": cfg.train.model_copy(update={"seed": seed})})




def compare(cfg: SentimentConfig) -> dict:
    out = runs.create_run("nlp_app", f"{cfg.name}-compare")
    runs.write_yaml(out / "config.yaml", to_dict(cfg))
    rows, scores = [], {}
    for name in cfg.compare.models:
        extra_seconds, note, pretrained = 0.0, "", None
        if name == "bert_pretrained":
            if cfg.compare.pretrained_run:
                pretrained = str(runs.resolve_run(cfg.compare.pretrained_run))
            else:
                pre_cfg = pretrain_config_for(cfg)
                pretrained = pretrain(pre_cfg)["run"]
            extra_seconds, chain = pretrain_chain(Path(pretrained))
            note = f"pre-trained in {len(chain)} run(s): {' → '.join(chain)}"
        if name == "baseline":  # deterministic: one run whatever the seeds
            variants = [_variant(cfg, name="baseline")]
        else:
            bert = _variant(cfg, name="bert", pretrained=pretrained)
            variants = [_seeded(bert, seed) for seed in cfg.compare.seeds]
        trained = [Path(train(v)["run"]) for v in variants]
        per_seed = [runs.load_metrics(r) for r in trained]
        accuracies = [m["test/accuracy"] for m in per_seed]
        aucs = [m["test/roc_auc"] for m in per_seed if m.get("test/roc_auc") is not None]
        fine_tune_seconds = float(np.mean([m["train/total_seconds"] for m in per_seed]))
        rows.append({"model": name, "run": trained[0].name, "runs": [r.name for r in trained],
                     "seeds": len(per_seed), "accuracy": float(np.mean(accuracies)),
                     "accuracy_std": float(np.std(accuracies, ddof=1)) if len(accuracies) > 1 else 0.0,
                     "accuracies": accuracies, "macro_f1": float(np.mean([m["test/macro_f1"] for m in per_seed])),
                     "roc_auc": float(np.mean(aucs)) if aucs else None, "train_seconds": fine_tune_seconds,
                     "pretrain_seconds": extra_seconds, "total_seconds": fine_tune_seconds + extra_seconds,
                     "note": note})
        scores[name] = trained[0]  # the ROC plot shows the first seed
    test = load_splits(cfg.data)[0]["test"]
    probas = {name: load_classifier(run, "torch", cfg.eval.batch_size).predict_proba(test.texts)
              for name, run in scores.items()}
    labels = runs.read_json(next(iter(scores.values())) / "labels.json")
    if len(labels) == 2:
        y = np.array([labels.index(lab) for lab in test.labels])
        plots.roc_curves(y, {k: p[:, 1] for k, p in probas.items()}, out / "roc_test.png", title="ROC, test split")
    runs.write_json(out / "comparison.json", rows)
    runs.write_text(out / "comparison.md", comparison_table(rows, len(test)))
    metrics = {}
    for r in rows:
        metrics.update({f"test/accuracy_{r['model']}": r["accuracy"], f"test/macro_f1_{r['model']}": r["macro_f1"],
                        f"train/total_seconds_{r['model']}": r["total_seconds"]})
    runs.update_metrics(out, metrics)
    runs.mark_latest(out)
    print(comparison_table(rows, len(test)))
    return {"run": str(out), "rows": rows}


def comparison_table(rows: list[dict], n_test: int) -> str:
    seeds = max(r["seeds"] for r in rows)
    head = f"Test split: {n_test} texts."
    if seeds > 1:
        head += f" BERT rows: mean ± std over {seeds} fine-tuning seeds."
    lines = [head, "", "| model | accuracy | macro-F1 | ROC-AUC | fine-tune s | pre-train s | total s | note |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        auc = f"{r['roc_auc']:.4f}" if r["roc_auc"] is not None else "-"
        acc = f"{r['accuracy']:.4f}" + (f" ± {r['accuracy_std']:.4f}" if r["seeds"] > 1 else "")
        note = r["note"]
        if r["seeds"] > 1:
            note += f" (per seed: {', '.join(f'{a:.4f}' for a in r['accuracies'])})"
        lines.append(f"| {r['model']} | {acc} | {r['macro_f1']:.4f} | {auc} | {r['train_seconds']:.0f} "
                     f"| {r['pretrain_seconds']:.0f} | {r['total_seconds']:.0f} | {note.strip()} |")
    return "\n".join(lines) + "\n"


def compare_stage(args) -> dict:
    result = compare(load_recipe(args.config, args.overrides))
    return {"run": result["run"], **{r["model"]: round(r["accuracy"], 4) for r in result["rows"]}}
