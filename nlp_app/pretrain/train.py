"""Masked-LM domain pre-training with whole-word masking (the ``pretrain`` stage).

Chinese BERTs tokenise by character, so plain MLM masks single characters that the model can
often guess from the rest of the word. Whole-word masking uses jieba's word boundaries: when a
word is picked, all of its characters are masked together. The output run directory is a
Hugging Face model directory that classification (and QA / NER) fine-tuning can start from::

    python -m nlp_app train --config configs/nlp_app/pretrain.yaml
    python -m nlp_app train --config configs/nlp_app/sentiment.yaml model.pretrained=runs/nlp_app/pretrain/latest

Masking is a pure function of a token → word map and a seeded RNG (:func:`choose_masked`,
:func:`apply_mask`); the collator draws the seed from torch's RNG, so runs are reproducible and a
resumed run continues the same stream.
"""
from __future__ import annotations

import logging
import random
import time
from collections.abc import Sequence
from pathlib import Path

import torch
from torch.utils.data import Dataset

from nlp_app.bert import (
    bert_config,
    build_tokenizer,
    from_pretrained,
    pad_multiple_for,
    pad_sequences,
    save_pretrained_files,
)
from nlp_app.config import PretrainConfig
from nlp_app.data import load_splits, read_texts
from nlp_app.tokenization import token_word_ids, word_spans
from shared import distributed as dist
from shared import metrics, runs
from shared.batching import LengthGroupedBatchSampler
from shared.config import to_dict
from shared.device import resolve_device, resolve_precision, seed_everything
from shared.training import fit

log = logging.getLogger(__name__)
IGNORE = -100  # label of positions that are not predicted


def choose_masked(word_ids: Sequence[int | None], probability: float, rng: random.Random,
                  whole_word: bool = True) -> list[bool]:
    """Which positions to predict: about ``probability`` of the non-special tokens, picked by
    whole word (every token sharing a word id) when ``whole_word``. ``None`` marks special tokens."""
    groups: dict[int, list[int]] = {}
    for pos, wid in enumerate(word_ids):
        if wid is not None:
            groups.setdefault(wid if whole_word else pos, []).append(pos)
    n_tokens = sum(len(g) for g in groups.values())
    chosen = [False] * len(word_ids)
    if not n_tokens:
        return chosen
    budget = max(1, round(n_tokens * probability))
    order = list(groups)
    rng.shuffle(order)
    taken = 0
    for key in order:
        if taken >= budget:
            break
        if taken + len(groups[key]) > budget and taken > 0:
            continue  # a long word would overshoot: try shorter ones
        for pos in groups[key]:
            chosen[pos] = True
        taken += len(groups[key])
    return chosen


def apply_mask(input_ids: Sequence[int], chosen: Sequence[bool], mask_id: int, n_special: int, vocab_size: int,
               rng: random.Random) -> tuple[list[int], list[int]]:
    """BERT's recipe on the chosen positions: 80% ``[MASK]``, 10% a random token, 10% unchanged.
    Returns ``(inputs, labels)``; labels are ``-100`` where nothing is predicted."""
    inputs, labels = list(input_ids), [IGNORE] * len(input_ids)
    for pos, pick in enumerate(chosen):
        if not pick:
            continue
        labels[pos] = inputs[pos]
        r = rng.random()
        if r < 0.8:
            inputs[pos] = mask_id
        elif r < 0.9:
            inputs[pos] = rng.randrange(n_special, vocab_size)
    return inputs, labels


class MaskedTexts(Dataset):
    """Token ids plus the jieba word id of each token; ``fixed_seed`` pre-masks every example
    once (validation: the same masks at every evaluation)."""

    def __init__(self, tokenizer, texts: Sequence[str], max_length: int):
        enc = tokenizer(list(texts), truncation=True, max_length=max_length, return_offsets_mapping=True)
        self.input_ids = enc["input_ids"]
        self.word_ids = [token_word_ids(off, word_spans(text)) for off, text in zip(enc["offset_mapping"], texts)]
        self.fixed: list[tuple[list[int], list[int]]] | None = None

    def __len__(self) -> int:
        return len(self.input_ids)

    def __getitem__(self, i: int) -> dict:
        if self.fixed is not None:
            return {"input_ids": self.fixed[i][0], "labels": self.fixed[i][1]}
        return {"input_ids": self.input_ids[i], "word_ids": self.word_ids[i]}

    @property
    def lengths(self) -> list[int]:
        return [len(x) for x in self.input_ids]


class WholeWordMaskCollator:
    """Pad a batch and mask it (examples that arrive already masked are only padded)."""

    def __init__(self, tokenizer, probability: float = 0.15, whole_word: bool = True, pad_to_multiple_of=None):
        self.pad_id = tokenizer.pad_token_id
        self.mask_id = tokenizer.mask_token_id
        self.vocab_size = len(tokenizer)
        specials = sorted(tokenizer.all_special_ids)
        # random replacements skip the special tokens when they lead the vocabulary (our char vocabs)
        self.n_special = len(specials) if specials == list(range(len(specials))) else 0
        self.probability, self.whole_word, self.multiple = probability, whole_word, pad_to_multiple_of

    def mask_example(self, example: dict, rng: random.Random) -> tuple[list[int], list[int]]:
        chosen = choose_masked(example["word_ids"], self.probability, rng, self.whole_word)
        return apply_mask(example["input_ids"], chosen, self.mask_id, self.n_special, self.vocab_size, rng)

    def __call__(self, examples: Sequence[dict]) -> dict[str, torch.Tensor]:
        rng = random.Random(int(torch.randint(0, 2**31 - 1, (1,))))
        pairs = [(e["input_ids"], e["labels"]) if "labels" in e else self.mask_example(e, rng) for e in examples]
        ids, mask = pad_sequences([p[0] for p in pairs], self.pad_id, self.multiple)
        labels, _ = pad_sequences([p[1] for p in pairs], IGNORE, self.multiple)
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}


class MaskedLMTask:
    def loss(self, model, batch):
        return model(**batch).loss

    def evaluate(self, model, loader) -> dict[str, float]:
        total = torch.zeros(3, dtype=torch.float64)  # summed loss, correct predictions, predicted tokens
        for batch in loader:
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.float()
            labels = batch["labels"]
            keep = labels != IGNORE
            loss = torch.nn.functional.cross_entropy(logits[keep], labels[keep], reduction="sum")
            total += torch.tensor([loss.item(), (logits[keep].argmax(-1) == labels[keep]).sum().item(),
                                   keep.sum().item()], dtype=torch.float64)
        total = dist.all_reduce_sum(total)
        mean = float(total[0] / total[2].clamp(min=1))
        return {"mlm_loss": mean, "perplexity": float(torch.exp(torch.tensor(min(mean, 50.0)))),
                "masked_accuracy": float(total[1] / total[2].clamp(min=1))}


def corpus(cfg: PretrainConfig) -> tuple[list[str], list[str]]:
    """Unlabelled (train, valid) texts: the training split's texts and/or the text files; the
    validation split's texts (or 5% of the files' lines) measure the MLM loss."""
    texts, valid = [], []
    if cfg.data.use_train_texts:
        splits, _, _ = load_splits(cfg.data)
        texts += splits["train"].texts
        valid = splits["valid"].texts
    extra = [t for path in cfg.data.text_files for t in read_texts(path, lowercase=cfg.data.lowercase)]
    if extra and not valid:
        cut = max(1, len(extra) // 20)
        valid, extra = extra[:cut], extra[cut:]
    texts += extra
    if not texts:
        from shared.errors import UserError

        raise UserError("no pre-training text: set data.use_train_texts=true or list data.text_files")
    return texts, valid


def pretrain(cfg: PretrainConfig) -> dict:
    """Pre-train a BERT with (whole-word) masked LM into a new run; returns a summary."""
    from transformers import AutoModelForMaskedLM, BertForMaskedLM

    seed_everything(cfg.train.seed)
    t0 = time.perf_counter()
    device, owns_group = dist.setup_distributed(resolve_device(cfg.train.device))
    try:
        run = None
        if dist.is_main_process():
            run = runs.create_run("nlp_app", cfg.name)
            runs.write_yaml(run / "config.yaml", to_dict(cfg))
        run = Path(dist.broadcast_object(str(run)))
        is_main = dist.is_main_process()
        texts, valid_texts = corpus(cfg)
        tokenizer = build_tokenizer(cfg.model, texts)
        if cfg.model.pretrained:
            model = from_pretrained(AutoModelForMaskedLM, cfg.model)
        else:
            model = BertForMaskedLM(bert_config(cfg.model, len(tokenizer)))
        train_ds = MaskedTexts(tokenizer, texts, cfg.model.max_length)
        valid_ds = MaskedTexts(tokenizer, valid_texts, cfg.model.max_length)
        collate = WholeWordMaskCollator(tokenizer, cfg.masking.probability, cfg.masking.whole_word,
                                        pad_multiple_for(resolve_precision(cfg.train.precision, device)))
        rng = random.Random(cfg.train.seed)
        valid_ds.fixed = [collate.mask_example(valid_ds[i], rng) for i in range(len(valid_ds))]
        sampler = LengthGroupedBatchSampler(train_ds.lengths, cfg.train.batch_size, seed=cfg.train.seed,
                                            drop_last=cfg.train.drop_last)
        result = fit(model, MaskedLMTask(), train_ds, valid_ds, cfg.train, run, collate_fn=collate,
                     train_batch_sampler=sampler, extra_state={"config": to_dict(cfg)})
        if is_main:
            save_pretrained_files(run, model, tokenizer)
    finally:
        if owns_group:
            dist.teardown_distributed()
    if not is_main:
        return {}
    values = {"train/wall_seconds": result.train_seconds, "train/total_seconds": time.perf_counter() - t0,
              "train/samples_per_second": result.samples_per_second, "train/steps": result.steps,
              "train/texts": len(texts), **metrics.with_split("valid", result.best_metrics or result.last_metrics)}
    runs.update_metrics(run, values)
    runs.mark_latest(run)
    return {"run": str(run), **{k: round(v, 4) for k, v in values.items()}}
