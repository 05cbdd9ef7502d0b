"""The ``compare`` stage: baseline vs BERT from random init vs BERT after masked-LM
pre-training, on one split and the same fine-tuning budget; one table::

    python -m nlp_app compare --config configs/nlp_app/sentiment.yaml

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


def compare(cfg: SentimentConfig) -> dict:
    out = runs.create_run("nlp_app", f"{cfg.name}-compare")
    runs.write_yaml(out / "config.yaml", to_dict(cfg))
    rows, scores = [], {}
    for name in cfg.compare.models:
        extra_seconds, note = 0.0, ""
        if name == "baseline":
            summary = train(_variant(cfg, name="baseline"))
        elif name == "bert_scratch":
            summary = train(_variant(cfg, name="bert", pretrained=None))
        else:
            pre_cfg = pretrain_config_for(cfg)
            pre = pretrain(pre_cfg)
            extra_seconds = runs.load_metrics(pre["run"])["train/total_seconds"]
            note = f"pre-trained {pre_cfg.train.epochs} epochs ({Path(pre['run']).name})"
            summary = train(_variant(cfg, name="bert", pretrained=pre["run"]))
        run = Path(summary["run"])
        m = runs.load_metrics(run)
        rows.append({"model": name, "run": run.name, "accuracy": m["test/accuracy"], "macro_f1": m["test/macro_f1"],
                     "roc_auc": m.get("test/roc_auc"), "train_seconds": m["train/total_seconds"],
                     "pretrain_seconds": extra_seconds, "total_seconds": m["train/total_seconds"] + extra_seconds,
                     "note": note})
        scores[name] = run
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
    lines = [f"Test split: {n_test} texts.", "",
             "| model | accuracy | macro-F1 | ROC-AUC | fine-tune s | pre-train s | total s | note |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        auc = f"{r['roc_auc']:.4f}" if r["roc_auc"] is not None else "-"
        lines.append(f"| {r['model']} | {r['accuracy']:.4f} | {r['macro_f1']:.4f} | {auc} | {r['train_seconds']:.0f} "
                     f"| {r['pretrain_seconds']:.0f} | {r['total_seconds']:.0f} | {r['note']} |")
    return "\n".join(lines) + "\n"


def compare_stage(args) -> dict:
    result = compare(load_recipe(args.config, args.overrides))
    return {"run": result["run"], **{r["model"]: round(r["accuracy"], 4) for r in result["rows"]}}
