"""Pure text-cleaning and splitting functions (:mod:`nlp_app.common.corpus` applies them; QA and
NER use the half-width normalisation).

Normalisation (each a pure ``str -> str``): full-width ASCII to half-width, control and format
characters out, whitespace runs collapsed. Cleaning: drop empty texts, exact duplicates and texts
that carry two different labels. Splitting: seeded and stratified, on de-duplicated texts, so no
text is in two splits.
"""
from __future__ import annotations

import logging
import re
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import numpy as np
from sklearn.model_selection import train_test_split

from shared.errors import UserError

log = logging.getLogger(__name__)

_FULL_WIDTH_OFFSET = 0xFF01 - 0x21  # U+FF01..U+FF5E are full-width twins of ASCII ! .. ~
_WHITESPACE = re.compile(r"\s+")


def to_half_width(text: str) -> str:
    """Full-width ASCII letters, digits and punctuation (ＡＢＣ１２３！) and the ideographic space
    to their ASCII forms. Chinese punctuation with no ASCII twin (。、「」) is left alone."""
    out = []
    for ch in text:
        code = ord(ch)
        if code == 0x3000:
            out.append(" ")
        elif 0xFF01 <= code <= 0xFF5E:
            out.append(chr(code - _FULL_WIDTH_OFFSET))
        else:
            out.append(ch)
    return "".join(out)


def strip_control(text: str) -> str:
    """Remove control (Cc) and format (Cf: zero-width spaces, BOMs, direction marks) characters;
    tabs and line breaks become spaces so words on either side stay apart."""
    out = []
    for ch in text:
        if ch in "\t\n\r\x0b\x0c":
            out.append(" ")
        elif unicodedata.category(ch) not in ("Cc", "Cf"):
            out.append(ch)
    return "".join(out)


def collapse_whitespace(text: str) -> str:
    """Runs of whitespace to one space, trimmed at both ends."""
    return _WHITESPACE.sub(" ", text).strip()


def normalize_text(text: str, lowercase: bool = True) -> str:
    """The whole normalisation every model sees, at training and at serving time."""
    text = collapse_whitespace(strip_control(to_half_width(text)))
    return text.lower() if lowercase else text


@dataclass
class CleanReport:
    """What :func:`deduplicate` removed."""

    rows_in: int = 0
    empty: int = 0
    duplicates: int = 0
    conflicting_texts: int = 0
    conflicting_rows: int = 0
    rows_out: int = 0

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class Examples:
    texts: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    empty_rows: int = 0  # rows of the source file skipped for an empty text or label (data.on_empty=skip)

    def __len__(self) -> int:
        return len(self.texts)


def deduplicate(texts: list[str], labels: list[str]) -> tuple[Examples, CleanReport]:
    """Drop empty texts, keep one copy of each (text, label), and drop every text seen with
    more than one label (the corpus cannot tell which is right). Order of first appearance kept."""
    report = CleanReport(rows_in=len(texts))
    seen_labels: dict[str, set[str]] = defaultdict(set)
    order: list[str] = []
    first_label: dict[str, str] = {}
    for text, label in zip(texts, labels):
        if not text:
            report.empty += 1
            continue
        if text in first_label:
            if label in seen_labels[text]:
                report.duplicates += 1
            seen_labels[text].add(label)
            continue
        first_label[text] = label
        seen_labels[text].add(label)
        order.append(text)
    out = Examples()
    for text in order:
        if len(seen_labels[text]) > 1:
            report.conflicting_texts += 1
            continue
        out.texts.append(text)
        out.labels.append(first_label[text])
    report.rows_out = len(out)
    report.conflicting_rows = report.rows_in - report.empty - report.duplicates - report.rows_out
    return out, report


def label_map(labels: list[str]) -> list[str]:
    """The sorted distinct labels: index i of this list is class id i, everywhere."""
    names = sorted(set(labels))
    if len(names) < 2:
        raise UserError(f"the training data has a single class ({names[0] if names else 'none'}); "
                        "classification needs at least two")
    return names


def stratified_split(data: Examples, valid_fraction: float, test_fraction: float,
                     seed: int) -> dict[str, Examples]:
    """Seeded, stratified train/valid/test split of de-duplicated examples. A class too small for
    the held-out share to hold two of its rows (3 rows of 93) gets one valid and one test row, the
    rest in train; the other classes are split as a whole (unchanged by the small ones)."""
    y = np.asarray(data.labels)
    counts = Counter(data.labels)
    if min(counts.values()) < 3:
        rare = sorted(k for k, v in counts.items() if v < 3)
        raise UserError(f"labels {rare[:5]} have fewer than 3 examples (" + ", ".join(str(counts[k]) for k in rare[:5])
                        + "): too few to split into train/valid/test; add examples, merge them into another class "
                          f"with 'data.label_map={{\"{rare[0]}\": \"<class>\"}}', or drop their rows")
    held = valid_fraction + test_fraction
    small = sorted(k for k, v in counts.items() if v * held < 2)
    parts: dict[str, list[np.ndarray]] = {"train": [], "valid": [], "test": []}
    rng = np.random.default_rng(seed)
    for label in small:
        rows = rng.permutation(np.flatnonzero(y == label))
        parts["valid"].append(rows[:1])
        parts["test"].append(rows[1:2])
        parts["train"].append(rows[2:])
    rest = np.flatnonzero(~np.isin(y, small)) if small else np.arange(len(y))
    if len(rest):
        for name, part in _split_by_share(rest, y[rest], held, test_fraction, seed).items():
            parts[name].insert(0, part)
    return {name: Examples([data.texts[i] for i in np.concatenate(part)], [data.labels[i] for i in np.concatenate(part)])
            for name, part in parts.items()}


def _split_by_share(idx: np.ndarray, y: np.ndarray, held: float, test_fraction: float,
                    seed: int) -> dict[str, np.ndarray]:
    """``idx`` split in two stratified steps: ``held`` of it out of train, then that into valid and test."""
    n, n_classes = len(idx), len(set(y.tolist()))
    n_held = max(2 * n_classes, round(n * held))
    if n_held >= n:
        raise UserError(f"{n} examples are too few to hold out {held:.0%} for valid+test")
    train_idx, rest_idx, _, y_rest = train_test_split(idx, y, test_size=n_held, stratify=y, random_state=seed)
    n_test = max(n_classes, round(n_held * test_fraction / held))
    n_test = min(n_test, len(rest_idx) - n_classes)
    valid_idx, test_idx = train_test_split(rest_idx, test_size=n_test, stratify=y_rest, random_state=seed)
    return {"train": train_idx, "valid": valid_idx, "test": test_idx}


def remove_leaks(splits: dict[str, Examples]) -> dict[str, int]:
    """For ready-made splits: drop from valid and test any text that is in train (and from test
    any text in valid), so no text is scored that the model was fitted or tuned on."""
    dropped = {}
    seen = set(splits["train"].texts)
    for name in ("valid", "test"):
        part = splits[name]
        keep = [i for i, t in enumerate(part.texts) if t not in seen]
        dropped[name] = len(part) - len(keep)
        splits[name] = Examples([part.texts[i] for i in keep], [part.labels[i] for i in keep])
        seen |= set(splits[name].texts)
    return dropped


def subsample(data: Examples, n: int, seed: int) -> Examples:
    """A seeded subset of ``n`` examples (quick recipes), stratified when every label has two or more."""
    if n >= len(data):
        return data
    labels = np.asarray(data.labels)
    counts = Counter(data.labels)
    stratify = labels if min(counts.values()) >= 2 and len(counts) <= n <= len(data) - len(counts) else None
    idx, _ = train_test_split(np.arange(len(data)), train_size=n, stratify=stratify, random_state=seed)
    idx = sorted(idx)
    return Examples([data.texts[i] for i in idx], [data.labels[i] for i in idx])
