"""The ``train`` stage of text classification: ``model.name`` picks the models.

- ``baseline``: jieba + TF-IDF + logistic regression (:mod:`nlp_app.classify.baseline`), seconds on a CPU.
- ``bert``: a BERT fine-tuned with the shared loop (:func:`shared.training.fit`): dynamic
  padding, length-grouped batches, checkpoints (an interrupted run resumes from them), DDP under
  ``torchrun``.
- ``all`` (the recipes' default): both on the same split; the better on the validation split
  (``model.select_by``) is the one served, evaluated and exported. On a CPU that is usually the
  baseline; with ``model.pretrained`` or a GPU's budget the same recipe serves the BERT when it wins.

The run directory (from :func:`shared.runs.start_run`) gets ``models/<name>/`` per model (the
BERT's ``checkpoints/``, ``history.jsonl`` and ``curves.png`` in its folder), ``selection.json``
(the served model and why), ``comparison.md`` / ``comparison.json``, ``labels.json`` and the served
model's ``confusion_test.png`` / ``roc_test.png``; the returned scores become ``metrics.json`` and
the model card (:func:`shared.runs.finish_run`): the served model's ``valid/*`` and ``test/*``, and
each model's headline scores as ``test/accuracy_<name>`` ….
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import torch

from nlp_app.classify.baseline import BaselineClassifier, load_baseline
from nlp_app.classify.config import ClassifyConfig
from nlp_app.classify.distill import teacher_scores, with_teacher
from nlp_app.classify.model import SELECTION, build_classifier, load_classifier
from nlp_app.classify.scoring import score
from nlp_app.classify.selection import comparison_rows, comparison_table, pick_best
from nlp_app.common.bert import (
    DynamicPadding,
    TokenizedTexts,
    build_tokenizer,
    encode,
    pad_multiple_for,
    rank0_first,
    save_pretrained_files,
)
from nlp_app.common.corpus import load_splits
from nlp_app.common.tokenization import normalizing_tokenizer
from shared import distributed as dist
from shared import metrics, runs, tracking
from shared.batching import LengthGroupedBatchSampler
from shared.config import to_dict
from shared.device import resolve_device, resolve_precision, seed_everything
from shared.training import fit

log = logging.getLogger(__name__)


class ClassificationTask:
    """Loss and validation metrics of a sequence classifier for :func:`shared.training.fit`."""

    def loss(self, model, batch):
        return model(**batch).loss

    def evaluate(self, model, loader) -> dict[str, float]:
        logits, labels = [], []
        for batch in loader:
            logits.append(model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.float())
            labels.append(batch["labels"])
        logits, labels = dist.gather_cat(torch.cat(logits)), dist.gather_cat(torch.cat(labels))
        proba = torch.softmax(logits.double(), -1).cpu().numpy()
        values = metrics.multiclass_classification(labels.cpu().numpy(), proba)
        return {k: values[k] for k in ("accuracy", "macro_f1", "log_loss")}


def train_baseline(cfg: ClassifyConfig, folder: Path) -> dict:
    """Fit the TF-IDF + logistic-regression baseline into ``folder`` (rank 0 only: one process's work)."""
    if not dist.is_main_process():
        return {}
    splits, labels, _ = load_splits(cfg.data)
    t0 = time.perf_counter()
    model = BaselineClassifier(cfg.model.baseline, labels).fit(splits["train"].texts, splits["train"].labels)
    wall = time.perf_counter() - t0
    model.save(folder)
    check_reload(model, load_baseline(folder), splits["valid"].texts[:200])
    return {"train/wall_seconds": wall}


def check_reload(fitted, reloaded, texts: list[str]) -> None:
    """Refuse to finish a run whose saved model does not give the fitted model's probabilities
    (``train`` scores the reloaded model: a broken round trip would look like a bad model)."""
    gap = float(np.abs(fitted.predict_proba(texts) - reloaded.predict_proba(texts)).max()) if texts else 0.0
    if gap > 1e-5:
        raise RuntimeError(f"the saved baseline differs from the fitted one by {gap:.3g} in probability; "
                           "this is a bug in saving it, please report it")


def train_bert(cfg: ClassifyConfig, folder: Path) -> dict:
    """Fine-tune a BERT into ``folder``, resuming from ``folder/checkpoints`` when they exist;
    returns training figures (on every rank)."""
    seed_everything(cfg.train.seed)
    splits, labels, _ = load_splits(cfg.data)
    # the text normalisation lives in the saved tokenizer: pipeline(models/bert) sees what the server sees
    tokenizer = normalizing_tokenizer(build_tokenizer(cfg.model, splits["train"].texts), cfg.data.lowercase)
    model = build_classifier(cfg.model, labels, tokenizer)
    index = {name: i for i, name in enumerate(labels)}
    data = {name: TokenizedTexts(encode(tokenizer, splits[name].texts, cfg.model.max_length),
                                 [index[y] for y in splits[name].labels]) for name in ("train", "valid")}
    precision = resolve_precision(cfg.train.precision, resolve_device(cfg.train.device))
    collate = DynamicPadding(tokenizer.pad_token_id, pad_multiple_for(precision))
    # the CLI joined any process group already, so the sampler shards by the real world size
    sampler = LengthGroupedBatchSampler(data["train"].lengths, cfg.train.batch_size, seed=cfg.train.seed,
                                        drop_last=cfg.train.drop_last)
    task, train_data, collate = with_teacher(cfg, ClassificationTask(), data["train"], splits["train"].texts,
                                             labels, collate)
    result = fit(model, task, train_data, data["valid"], cfg.train, folder, collate_fn=collate,
                 train_batch_sampler=sampler, extra_state={"config": to_dict(cfg)})
    if dist.is_main_process():
        save_pretrained_files(folder, model, tokenizer)
    lengths = np.array(data["train"].lengths)
    return {"train/wall_seconds": result.train_seconds, "train/samples_per_second": result.samples_per_second,
            "train/steps": result.steps, "train/epochs": result.epochs_completed,
            "train/mean_tokens": float(lengths.mean()), "train/parameters": sum(p.numel() for p in model.parameters())}


MODELS = {"baseline": train_baseline, "bert": train_bert}
HEADLINE = ("valid/accuracy", "valid/macro_f1", "valid/log_loss", "test/accuracy", "test/macro_f1", "test/roc_auc",
            "test/texts_per_second")


def train(cfg: ClassifyConfig, run: Path) -> dict:
    """The ``train`` stage: train each model of ``model.name`` into ``run/models/<name>/`` (a BERT
    resumes from its last checkpoint), score them on the valid and test splits (rank 0), serve the
    better on validation; returns the metrics and the model card's section."""
    t0 = time.perf_counter()
    _, labels, _ = rank0_first(lambda: load_splits(cfg.data))
    figures, seconds = {}, {}
    for name in cfg.model.to_train():
        out = MODELS[name](cfg, run / "models" / name)
        seconds[name] = out.pop("train/wall_seconds", 0.0)
        figures.update(out)
    if not dist.is_main_process():  # rank 0 scores and writes
        return figures
    tracking.log_pyfunc_at_finish(run, column="text")  # MLflow: a pyfunc model of a `text` column
    splits = load_splits(cfg.data)[0]
    runs.write_json(run / "labels.json", labels)
    scores, served = score_and_select(cfg, run, splits)
    teacher = {"teacher": teacher_scores(cfg, splits, labels)} if cfg.model.distill.teacher else {}
    table = record_selection(cfg, run, scores, seconds, served, teacher)
    values = {**figures, **scores[served], "train/wall_seconds": seconds[served],
              "train/total_seconds": time.perf_counter() - t0}
    for name, those in {**(scores if len(scores) > 1 else {}), **teacher}.items():
        values.update({f"{key}_{name}": those[key] for key in HEADLINE if key in those})
        values.update({f"train/wall_seconds_{name}": seconds[name]} if name in seconds else {})
    counts = {name: len(part) for name, part in splits.items()}
    return {**values, "served_model": served, "model": cfg.model.name, "pretrained": cfg.model.pretrained,
            "card": card(cfg, labels, counts, served, table)}


def score_and_select(cfg: ClassifyConfig, run: Path, splits: dict) -> tuple[dict[str, dict], str]:
    """Each trained model's valid and test scores (the reloaded models: what serving will run), and
    the one to serve; the served model's test plots go into ``run``."""
    clfs = {name: load_classifier(run, "torch", cfg.eval.batch_size, model=name) for name in cfg.model.to_train()}
    scores = {name: score(clf, splits["valid"], "valid") for name, clf in clfs.items()}
    served = pick_best(scores, cfg.model.select_by)
    for name, clf in clfs.items():
        scores[name].update(score(clf, splits["test"], "test", run if name == served else None))
    return scores, served


def record_selection(cfg: ClassifyConfig, run: Path, scores: dict, seconds: dict, served: str,
                     teacher: dict) -> str:
    """``selection.json`` (what serving loads) and ``comparison.md`` / ``.json`` (with the teacher's
    row when distilling); returns the table."""
    by = f"valid/{cfg.model.select_by}"
    runs.write_json(run / SELECTION, {"served": served, "by": by, "models": list(scores),
                                      "valid": {name: scores[name][by] for name in scores}})
    rows = comparison_rows({**scores, **teacher}, seconds, served)
    table = comparison_table(rows, cfg.model.select_by)
    runs.write_json(run / "comparison.json", rows)
    runs.write_text(run / "comparison.md", table)
    log.info("served: %s (%s %s)\n%s", served, by, {n: round(scores[n][by], 4) for n in scores}, table)
    return table


def card(cfg: ClassifyConfig, labels: list[str], counts: dict, served: str, table: str) -> str:
    """The classification section of the model card (the metrics table is the shared card's)."""
    m = cfg.model
    if served == "baseline":
        what = "jieba word + character n-gram TF-IDF, logistic regression"
    elif m.pretrained:
        what = f"BERT fine-tuned from {m.pretrained}"
    else:
        what = f"BERT from random init: {m.num_layers} layers, hidden {m.hidden_size}, character vocabulary"
    if served == "bert" and m.distill.teacher:
        what += f", distilled from {m.distill.teacher} (alpha {m.distill.alpha}, temperature {m.distill.temperature})"
    return (f"\n## Text classification\n- served model: {served}: {what}\n- data: {cfg.data.source}, split {counts}\n"
            f"- labels: {labels}\n\nInputs are normalised (full-width to half-width, control characters out, "
            "lower case) in training and serving alike; the BERT's own tokenizer does it (`tokenizer.json`), so "
            "`transformers.pipeline` on `models/bert` gives the server's answers.\n\n## Models trained on this split\n\n"
            + table)
