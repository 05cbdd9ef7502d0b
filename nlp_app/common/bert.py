"""BERT pieces shared by every NLP task: building a model (from a pretrained directory / hub id,
or at a configured size over a character vocabulary), tokenising into a dataset, and the
dynamic-padding collator.

A run directory of a BERT model is a Hugging Face model directory (``config.json``,
``model.safetensors``, ``tokenizer.json``), so ``model.pretrained: runs/nlp_app/pretrain/latest``
and ``AutoModel*.from_pretrained(run_dir)`` both work.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch.utils.data import Dataset

from nlp_app.common.config import BertArch
from nlp_app.common.tokenization import build_char_vocab, char_tokenizer, load_tokenizer, resolve_pretrained
from shared import distributed, runs
from shared.errors import UserError

log = logging.getLogger(__name__)
T = TypeVar("T")


def bert_config(arch: BertArch, vocab_size: int, **extra):
    """A ``BertConfig`` of the size in ``arch`` (used when starting from random weights)."""
    from transformers import BertConfig

    return BertConfig(vocab_size=vocab_size, hidden_size=arch.hidden_size, num_hidden_layers=arch.num_layers,
                      num_attention_heads=arch.num_heads, intermediate_size=arch.intermediate_size,
                      hidden_dropout_prob=arch.dropout, attention_probs_dropout_prob=arch.dropout,
                      max_position_embeddings=max(512, arch.max_length), pad_token_id=0, **extra)


def build_tokenizer(arch: BertArch, corpus: Sequence[str]):
    """The pretrained model's tokenizer, or a character vocabulary built from ``corpus``."""
    if arch.pretrained:
        return load_tokenizer(arch.pretrained)
    vocab = build_char_vocab(corpus, arch.vocab_min_freq, arch.vocab_max_size)
    log.info("character vocabulary: %d tokens from %d texts", len(vocab), len(corpus))
    return char_tokenizer(vocab, model_max_length=arch.max_length)


def from_pretrained(auto_class, arch: BertArch, **kwargs):
    """``auto_class.from_pretrained(arch.pretrained, **kwargs)`` with a user-facing error."""
    import transformers

    src = resolve_pretrained(arch.pretrained)
    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()  # the new-head "newly initialised" report is expected
    try:
        return auto_class.from_pretrained(src, **kwargs)
    except OSError as exc:
        raise UserError(f"cannot load model.pretrained={arch.pretrained!r}: {str(exc).splitlines()[0]} "
                        "(offline: give a local directory)") from None
    finally:
        transformers.logging.set_verbosity(verbosity)


def save_pretrained_files(run: Path, model, tokenizer) -> None:
    """``config.json`` and the tokenizer files beside the weights the training loop wrote, making
    ``run`` a Hugging Face model directory. ``config.json`` names the model class under
    ``architectures`` (a model built from a config has none), which ``transformers.pipeline`` and
    the Hub read to pick the head."""
    model.config.architectures = [type(model).__name__]
    runs.write_text(run / "config.json", model.config.to_json_string())
    tokenizer.save_pretrained(str(run))


def encode(tokenizer, texts: Sequence[str], max_length: int) -> list[list[int]]:
    """Token ids with ``[CLS]``/``[SEP]``, truncated to ``max_length``; no padding (the collator pads)."""
    return tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]


class TokenizedTexts(Dataset):
    """Examples as ``{"input_ids": [...], "labels": int}`` dicts (labels optional)."""

    def __init__(self, input_ids: list[list[int]], labels: Sequence[int] | None = None):
        self.input_ids = input_ids
        self.labels = None if labels is None else list(labels)

    def __len__(self) -> int:
        return len(self.input_ids)

    def __getitem__(self, i: int) -> dict[str, Any]:
        item: dict[str, Any] = {"input_ids": self.input_ids[i]}
        if self.labels is not None:
            item["labels"] = self.labels[i]
        return item

    @property
    def lengths(self) -> list[int]:
        return [len(ids) for ids in self.input_ids]


def pad_sequences(seqs: Sequence[Sequence[int]], pad_id: int, multiple_of: int | None = None,
                  value_dtype=torch.long) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad to the longest sequence (rounded up to ``multiple_of``); returns ``(ids, mask)``."""
    longest = max((len(s) for s in seqs), default=0)
    if multiple_of and longest % multiple_of:
        longest += multiple_of - longest % multiple_of
    ids = torch.full((len(seqs), longest), pad_id, dtype=value_dtype)
    mask = torch.zeros((len(seqs), longest), dtype=torch.long)
    for row, seq in enumerate(seqs):
        ids[row, : len(seq)] = torch.as_tensor(list(seq), dtype=value_dtype)
        mask[row, : len(seq)] = 1
    return ids, mask


class DynamicPadding:
    """Collate ``{"input_ids", "labels"?}`` examples into tensors padded to the batch's longest
    example (a multiple of ``pad_to_multiple_of`` under mixed precision, for tensor cores)."""

    def __init__(self, pad_id: int = 0, pad_to_multiple_of: int | None = None):
        self.pad_id, self.pad_to_multiple_of = pad_id, pad_to_multiple_of

    def __call__(self, examples: Sequence[dict]) -> dict[str, torch.Tensor]:
        ids, mask = pad_sequences([e["input_ids"] for e in examples], self.pad_id, self.pad_to_multiple_of)
        batch = {"input_ids": ids, "attention_mask": mask}
        if "labels" in examples[0]:
            batch["labels"] = torch.as_tensor([e["labels"] for e in examples], dtype=torch.long)
        return batch


def pad_multiple_for(precision: str) -> int | None:
    """8 under mixed precision (tensor-core friendly shapes), none in fp32."""
    return 8 if precision in ("bf16", "fp16") else None


def rank0_first(load: Callable[[], T]) -> T:
    """``load()`` (which preprocesses on a cold cache) on rank 0 first, then on the other ranks,
    so that under ``torchrun`` one process writes the data cache."""
    if distributed.is_main_process():
        out = load()
    distributed.barrier()
    if not distributed.is_main_process():
        out = load()
    return out
