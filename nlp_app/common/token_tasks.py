"""What QA and NER share: a BERT with a token-level head (span start/end, or a tag per token)
built from scratch or from a pre-trained start, trained with :func:`shared.training.fit`, and
saved as a run directory that is also a Hugging Face model directory (``config.json``,
``model.safetensors``, tokenizer files, ``labels.json`` for NER), so
``model.pretrained: runs/nlp_app/<name>/latest`` starts a new fine-tune from it. Running and
exporting the trained model: :mod:`nlp_app.common.runners`.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import torch

from nlp_app.common.bert import bert_config, from_pretrained, pad_sequences, save_pretrained_files
from nlp_app.common.runners import TOKEN_INPUTS, model_class
from shared import distributed, runs
from shared.batching import LengthGroupedBatchSampler
from shared.config import to_dict
from shared.device import seed_everything
from shared.errors import UserError
from shared.training import evaluate_model, fit

log = logging.getLogger(__name__)


def build_model(head: str, arch, tokenizer, labels: Sequence[str] | None = None, seed: int = 0):
    """A BERT with ``head`` on top: the encoder from ``arch.pretrained`` (its own head, if any, is
    replaced) or freshly initialised at ``arch``'s size over ``tokenizer``'s vocabulary."""
    seed_everything(seed)
    label_args = {}
    if labels is not None:
        label_args = {"num_labels": len(labels), "id2label": dict(enumerate(labels)),
                      "label2id": {t: i for i, t in enumerate(labels)}}
    if arch.pretrained:
        model = from_pretrained(model_class(head), arch, **label_args)
        if model.config.max_position_embeddings < arch.max_length:
            raise UserError(f"model.max_length={arch.max_length} exceeds the pre-trained model's "
                            f"{model.config.max_position_embeddings} positions")
        return model
    return model_class(head)(bert_config(arch, len(tokenizer), **label_args))


def collate(items: Sequence[dict]) -> dict[str, torch.Tensor]:
    """Dynamic padding: inputs with 0 (``[PAD]`` is id 0 in every BERT vocabulary here), token
    labels with -100; scalar targets (span start/end) stacked. Non-tensor keys are dropped."""
    batch: dict[str, torch.Tensor] = {}
    for key in items[0]:
        if key in TOKEN_INPUTS or key == "labels":
            batch[key] = pad_sequences([it[key] for it in items], -100 if key == "labels" else 0)[0]
        elif isinstance(items[0][key], int):
            batch[key] = torch.tensor([it[key] for it in items])
    return batch


def fit_model(model, task, train_items: list[dict], valid_items: list[dict], cfg, run: Path,
              collate_fn=collate):
    """:func:`shared.training.fit` with length-grouped batches (short sentences pad little); resumes
    from ``run/checkpoints`` when the run was interrupted. ``collate_fn``: for extra inputs."""
    sampler = LengthGroupedBatchSampler([len(it["input_ids"]) for it in train_items], cfg.train.batch_size,
                                        seed=cfg.train.seed, drop_last=cfg.train.drop_last)
    return fit(model, task, train_items, valid_items, cfg.train, run, collate_fn=collate_fn,
               train_batch_sampler=sampler, extra_state={"config": to_dict(cfg)})


def evaluate_on(model, task, items: list[dict], cfg, collate_fn=collate) -> dict[str, float]:
    return evaluate_model(model, task, items, cfg.train, collate_fn=collate_fn)


def gather(items: list) -> list:
    """This rank's list → everyone's, in rank order (a no-op in one process)."""
    return distributed.gather_list(items)


def save_model_files(run: Path, model, tokenizer, labels: Sequence[str] | None = None) -> None:
    """Everything of the model but the weights (``fit`` wrote ``model.safetensors``); rank 0 only."""
    if not distributed.is_main_process():
        return
    save_pretrained_files(run, model, tokenizer)
    if labels is not None:
        runs.write_json(run / "labels.json", list(labels))

