"""Whole-word masking for masked-LM pre-training, as pure functions and the pieces the training
loop needs (dataset, collator, loss and metrics).

Chinese BERTs tokenise by character, so plain MLM masks single characters that the model can
often guess from the rest of the word. Whole-word masking uses jieba's word boundaries: when a
word is picked, all of its characters are masked together. Masking is a pure function of a
token → word map and a seeded RNG (:func:`choose_masked`, :func:`apply_mask`); the collator draws
the seed from torch's RNG, so runs are reproducible and a resumed run continues the same stream.
"""
from __future__ import annotations

import random
from collections.abc import Sequence

import torch
from torch.utils.data import Dataset

from nlp_app.common.bert import pad_sequences
from nlp_app.common.tokenization import token_word_ids, word_spans
from shared import distributed as dist

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

    def fix_masks(self, collate: WholeWordMaskCollator, rng: random.Random) -> None:
        """Mask every example once, now (held-out text: the same masks at every evaluation)."""
        self.fixed = [collate.mask_example(self[i], rng) for i in range(len(self))]


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
    """The MLM loss, and the MLM loss, perplexity and accuracy over the masked positions."""

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
