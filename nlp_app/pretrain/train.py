"""The ``train`` stage of masked-LM domain pre-training with whole-word masking
(:mod:`nlp_app.pretrain.masking`). The run directory is a Hugging Face model directory that
classification, QA and NER fine-tuning can start from::

    python -m nlp_app train --config configs/nlp_app/pretrain.yaml
    python -m nlp_app train --config configs/nlp_app/sentiment.yaml model.pretrained=runs/nlp_app/pretrain/latest

An interrupted run resumes from its checkpoints (the same command, or ``--run DIR``).
``snapshots.minutes=[0,5,10]`` also saves the encoder at those minutes of training and stops at
the last (:mod:`nlp_app.pretrain.snapshots`).
"""
from __future__ import annotations

import logging
import random
import time
from pathlib import Path

from nlp_app.common.bert import (
    bert_config,
    build_tokenizer,
    from_pretrained,
    pad_multiple_for,
    rank0_first,
    save_pretrained_files,
)
from nlp_app.pretrain.config import PretrainConfig
from nlp_app.pretrain.data import corpus
from nlp_app.pretrain.masking import MaskedLMTask, MaskedTexts, WholeWordMaskCollator
from nlp_app.pretrain.snapshots import SnapshottingMLMTask
from shared import distributed as dist
from shared import metrics
from shared.batching import LengthGroupedBatchSampler
from shared.config import to_dict
from shared.device import resolve_device, resolve_precision, seed_everything
from shared.errors import UserError
from shared.training import fit

log = logging.getLogger(__name__)


def build_mlm(cfg: PretrainConfig, tokenizer):
    """A BERT with a masked-LM head: from ``model.pretrained`` (continued pre-training) or new."""
    from transformers import AutoModelForMaskedLM, BertForMaskedLM

    if cfg.model.pretrained:
        return from_pretrained(AutoModelForMaskedLM, cfg.model)
    return BertForMaskedLM(bert_config(cfg.model, len(tokenizer)))


def collator(cfg: PretrainConfig, tokenizer) -> WholeWordMaskCollator:
    precision = resolve_precision(cfg.train.precision, resolve_device(cfg.train.device))
    return WholeWordMaskCollator(tokenizer, cfg.masking.probability, cfg.masking.whole_word,
                                 pad_multiple_for(precision))


def _task(cfg: PretrainConfig, run: Path, tokenizer) -> MaskedLMTask:
    if not cfg.snapshots.minutes:
        return MaskedLMTask()
    if dist.get_world_size() > 1 or cfg.train.grad_accum_steps > 1:
        raise UserError("snapshots.minutes needs one process and train.grad_accum_steps=1")
    return SnapshottingMLMTask(run, tokenizer, cfg.snapshots.minutes)


def _fit(cfg: PretrainConfig, run: Path, model, task, train_ds, valid_ds, collate, sampler) -> dict:
    """:func:`shared.training.fit` (which the last snapshot, if any, ends); returns the training
    figures and validation metrics."""
    result = fit(model, task, train_ds, valid_ds, cfg.train, run, collate_fn=collate,
                 train_batch_sampler=sampler, extra_state={"config": to_dict(cfg)})
    return {"train/wall_seconds": result.train_seconds, "train/samples_per_second": result.samples_per_second,
            "train/steps": result.steps, **metrics.with_split("valid", result.best_metrics or result.last_metrics)}


def train(cfg: PretrainConfig, run: Path) -> dict:
    """The ``train`` stage: pre-train a BERT with (whole-word) masked LM into ``run`` (resuming
    from its checkpoints when they exist; saving ``snapshots.minutes`` along the way); returns the
    validation MLM loss, perplexity and masked accuracy, and the training figures."""
    seed_everything(cfg.train.seed)
    t0 = time.perf_counter()
    texts, valid_texts = rank0_first(lambda: corpus(cfg))
    tokenizer = build_tokenizer(cfg.model, texts)
    model = build_mlm(cfg, tokenizer)
    train_ds = MaskedTexts(tokenizer, texts, cfg.model.max_length)
    valid_ds = MaskedTexts(tokenizer, valid_texts, cfg.model.max_length)
    collate = collator(cfg, tokenizer)
    valid_ds.fix_masks(collate, random.Random(cfg.train.seed))
    sampler = LengthGroupedBatchSampler(train_ds.lengths, cfg.train.batch_size, seed=cfg.train.seed,
                                        drop_last=cfg.train.drop_last)
    task = _task(cfg, run, tokenizer)
    figures = _fit(cfg, run, model, task, train_ds, valid_ds, collate, sampler)
    if dist.is_main_process():
        save_pretrained_files(run, model, tokenizer)
    start = cfg.model.pretrained or f"random init ({cfg.model.num_layers} layers, hidden {cfg.model.hidden_size})"
    marks = f" Snapshots at {cfg.snapshots.minutes} min under `snapshots/`." if cfg.snapshots.minutes else ""
    return {**figures, "train/total_seconds": time.perf_counter() - t0, "train/texts": len(texts),
            "card": (f"\n## Masked-LM pre-training\nStart: {start}; {len(texts)} texts, masking "
                     f"{cfg.masking.probability:.0%} ({'whole jieba words' if cfg.masking.whole_word else 'tokens'})."
                     f"{marks} Fine-tune from it with `model.pretrained=<this run>`.\n")}
