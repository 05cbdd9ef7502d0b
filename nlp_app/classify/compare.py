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

from nlp_app.classify.config import ClassifyConfig
from nlp_app.classify.model import load_classifier
from nlp_app.classify.train import train
from nlp_app.common.corpus import load_splits
from shared import plots, runs
from shared.config import load_config, to_dict
from shared.tasks import Task

log = logging.getLogger(__name__)
APP = "nlp_app"


def _variant(cfg: ClassifyConfig, **model) -> ClassifyConfig:
    data = to_dict(cfg)
    data["model"].update(model)
    return ClassifyConfig.model_validate(data)


def _seeded(cfg: ClassifyConfig, seed: int) -> ClassifyConfig:
    return cfg.model_copy(update={"train": cfg.train.model_copy(update={"seed": seed})})


def pretrain_config_for(cfg: ClassifyConfig, pretrain: Task):
    """The recipe's pre-training config (``pretrain``'s config model), on the fine-tuning recipe's
    data (the same split)."""
    pre = to_dict(load_config(pretrain.config, cfg.compare.pretrain_config, cfg.compare.pretrain_overrides))
    data = {**to_dict(cfg)["data"], "use_train_texts": True, "text_files": pre["data"]["text_files"]}
    return pretrain.config.model_validate({**pre, "data": data})


def run_stage(cfg, stage) -> Path:
    """One ordinary run of ``cfg`` through a task's ``train`` stage (begun and finished like the CLI does)."""
    run = runs.start_run(APP, cfg)
    runs.finish_run(run, cfg, stage(cfg, run))
    return run


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


def _row(name: str, trained: list[Path], pretrain_seconds: float, note: str) -> dict:
    per_seed = [runs.load_metrics(r) for r in trained]
    accuracies = [m["test/accuracy"] for m in per_seed]
    aucs = [m["test/roc_auc"] for m in per_seed if m.get("test/roc_auc") is not None]
    fine_tune_seconds = float(np.mean([m["train/total_seconds"] for m in per_seed]))
    return {"model": name, "run": trained[0].name, "run_dir": str(trained[0]), "runs": [r.name for r in trained],
            "seeds": len(per_seed), "accuracy": float(np.mean(accuracies)),
            "accuracy_std": float(np.std(accuracies, ddof=1)) if len(accuracies) > 1 else 0.0,
            "accuracies": accuracies, "macro_f1": float(np.mean([m["test/macro_f1"] for m in per_seed])),
            "roc_auc": float(np.mean(aucs)) if aucs else None, "train_seconds": fine_tune_seconds,
            "pretrain_seconds": pretrain_seconds, "total_seconds": fine_tune_seconds + pretrain_seconds,
            "note": note}


def _train_model(cfg: ClassifyConfig, name: str, pretrain: Task) -> dict:
    """The comparison row of model ``name``: a pre-training first for ``bert_pretrained`` (or the
    reused ``compare.pretrained_run``), then one fine-tuning run per seed (one baseline run)."""
    pretrain_seconds, note, pretrained = 0.0, "", None
    if name == "bert_pretrained":
        if cfg.compare.pretrained_run:
            pretrained = str(runs.resolve_run(cfg.compare.pretrained_run))
        else:
            pretrained = str(run_stage(pretrain_config_for(cfg, pretrain), pretrain.train))
        pretrain_seconds, chain = pretrain_chain(Path(pretrained))
        note = f"pre-trained in {len(chain)} run(s): {' → '.join(chain)}"
    if name == "baseline":  # deterministic: one run whatever the seeds
        variants = [_variant(cfg, name="baseline")]
    else:
        bert = _variant(cfg, name="bert", pretrained=pretrained)
        variants = [_seeded(bert, seed) for seed in cfg.compare.seeds]
    return _row(name, [run_stage(v, train) for v in variants], pretrain_seconds, note)


def compare(cfg: ClassifyConfig, run: Path, *, pretrain: Task) -> dict:
    """The ``compare`` stage: train every model of ``compare.models`` (each an ordinary run of its
    own) on one split and budget; the table, the ROC plot and ``test/accuracy_<model>`` … go to ``run``.
    ``pretrain`` is the pre-training task (its config and ``train`` stage: ``nlp_app.tasks`` binds it),
    so this task never reaches into another's modules."""
    rows = [_train_model(cfg, name, pretrain) for name in cfg.compare.models]
    test = load_splits(cfg.data)[0]["test"]
    first = {r["model"]: Path(r["run_dir"]) for r in rows}  # the ROC plot shows the first seed
    labels = runs.read_json(next(iter(first.values())) / "labels.json")
    if len(labels) == 2:
        y = np.array([labels.index(lab) for lab in test.labels])
        probas = {name: load_classifier(r, "torch", cfg.eval.batch_size).predict_proba(test.texts)[:, 1]
                  for name, r in first.items()}
        plots.roc_curves(y, probas, run / "roc_test.png", title="ROC, test split")
    table = comparison_table(rows, len(test))
    runs.write_json(run / "comparison.json", rows)
    runs.write_text(run / "comparison.md", table)
    log.info("comparison:\n%s", table)
    metrics = {}
    for r in rows:
        metrics.update({f"test/accuracy_{r['model']}": r["accuracy"], f"test/macro_f1_{r['model']}": r["macro_f1"],
                        f"train/total_seconds_{r['model']}": r["total_seconds"]})
    return {**metrics, "table": str(run / "comparison.md"), "rows": rows, "card": "\n## Comparison\n" + table}


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
