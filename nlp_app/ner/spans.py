"""NER span files: JSON records of a text and its entity spans → character BIO sentences.

The layouts people export (a file is told from a token-per-line BIO file by its first non-blank
character: ``{`` JSON lines, ``[`` a JSON list; a BIO file whose first token is ``{``/``[``,
``[ O``, stays BIO). Each record is one sentence; its layout is told by its keys:

- **CLUENER 2020** (``train.json``/``dev.json``): ``{"text": …, "label": {"name": {"叶老桂":
  [[9, 11]]}}}``: a type maps entity strings to ``[start, end]`` pairs, ``end`` **inclusive**; the
  string must equal the text there.
- **doccano**: ``{"text": …, "label": [[0, 3, "ORG"]]}`` (``labels`` too), or ``{"text": …,
  "entities": [{"start_offset": 0, "end_offset": 3, "label": "ORG"}]}``; ``end`` exclusive.
- **Label Studio** JSON export: a list of tasks ``{"data": {"text": …}, "annotations": [{"result":
  [{"type": "labels", "value": {"start": 0, "end": 3, "text": "浙商银行", "labels": ["ORG"]}}]}]}``;
  the first annotation not ``was_cancelled`` is read, results of other types are ignored; ``end``
  exclusive. Its JSON-MIN export (``{"text": …, "label": [{"start", "end", "text", "labels"}]}``)
  reads as doccano.

A span's ``text``, where given, must equal the text there. Other keys (``id``, ``relations``,
``Comments`` …) are ignored. Type names are kept as given (CLUENER's ``name``, ``company`` …).
Whitespace characters are dropped with their tags, as a token-per-line file cannot hold them (an
entity's ``B-`` moves to its first other character). Overlapping or nested spans: the longer one
is kept (the first given, of equal ones), and the file's count of dropped spans is logged, as BIO
cannot nest. A record whose text is empty or blank is skipped; a record without labels (CLUENER's
``test.json``, a Label Studio task not annotated) is skipped and counted, and a file with no
labelled record at all is refused. Errors name the file and the line (JSON lines) or ``[index]``
(a JSON list).
"""
from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from shared import textfiles
from shared.errors import UserError

if TYPE_CHECKING:
    from nlp_app.ner.data import Sentence

log = logging.getLogger(__name__)

Span = tuple[int, int, str]  # start, end (exclusive), type
_BIO_LINE = re.compile(r"[\[{]\s+(O|[BIMES][-_:.]\S+)")  # "[ O": a token-per-line file's first line


def is_span_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` holds JSON span records (its first non-blank character is ``{`` or ``[``)
    rather than one token and tag per line."""
    first = textfiles.first_line(path)
    return first[:1] in ("{", "[") and not _BIO_LINE.fullmatch(first)


def read_spans(path: str | os.PathLike) -> list[Sentence]:
    """Every labelled record of a span file as ``(characters, BIO tags)`` (see the module docstring)."""
    path = Path(path)
    text = textfiles.read_text(path)
    records = _json_list(path, text) if text.lstrip()[:1] == "[" else _json_lines(path, text)
    sentences: list[Sentence] = []
    unlabelled: list[str] = []
    dropped, first_dropped = 0, None
    for where, record in records:
        read = _record(where, record)
        if read is None:
            unlabelled.append(where)
            continue
        record_text, spans = read
        if not record_text.strip():
            continue
        kept = _longest_first(spans)
        if len(kept) < len(set(spans)):
            dropped += len(set(spans)) - len(kept)
            first_dropped = first_dropped or where
        sentences.append(to_bio(record_text, kept))
    if unlabelled and not sentences:
        raise UserError(f"{path}: no record has entity labels ({unlabelled[0]}: no 'label'); an unlabelled file "
                        "(like CLUENER's test.json) can neither train nor be scored")
    if not sentences:
        raise UserError(f"{path}: no record with a text found (JSON records with a 'text' and its entity spans)")
    if unlabelled:
        log.warning("%s: %d records without labels skipped (first %s)", path, len(unlabelled), unlabelled[0])
    if dropped:
        log.warning("%s: %d overlapping or nested spans dropped, the longer kept, as BIO cannot nest (first %s)",
                    path, dropped, first_dropped)
    return sentences


def to_bio(text: str, spans: list[Span]) -> Sentence:
    """Characters and BIO tags of ``text`` with non-overlapping ``spans``; whitespace characters are
    dropped with their tags, an entity's ``B-`` on its first character that is not whitespace."""
    owner = [-1] * len(text)
    for k, (start, end, _) in enumerate(spans):
        owner[start:end] = [k] * (end - start)
    chars, tags, prev = [], [], -1
    for ch, k in zip(text, owner):
        if ch.isspace():
            continue
        chars.append(ch)
        tags.append("O" if k < 0 else ("I-" if k == prev else "B-") + spans[k][2])
        prev = k
    return chars, tags


def _longest_first(spans: list[Span]) -> list[Span]:
    """The spans that overlap no longer (or earlier equal) one; repeats of a span count once."""
    taken: set[int] = set()
    kept = []
    for start, end, etype in sorted(dict.fromkeys(spans), key=lambda s: s[0] - s[1]):  # stable: ties keep order
        if not taken.intersection(range(start, end)):
            taken.update(range(start, end))
            kept.append((start, end, etype))
    return sorted(kept)


def _json_lines(path: Path, text: str) -> Iterator[tuple[str, object]]:
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                yield f"{path}:{n}", json.loads(line)
            except json.JSONDecodeError as exc:
                raise UserError(f"{path}:{n}: not JSON ({exc.msg}, column {exc.colno}); JSON lines expected, "
                                "one record per line") from None


def _json_list(path: Path, text: str) -> Iterator[tuple[str, object]]:
    try:
        items = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}:{exc.lineno}: not JSON ({exc.msg}, column {exc.colno})") from None
    for i, item in enumerate(items):
        yield f"{path}[{i}]", item


def _record(where: str, record: object) -> tuple[str, list[Span]] | None:
    """``(text, spans)`` of one record of any layout; None when it has no labels."""
    if not isinstance(record, dict):
        raise UserError(f"{where}: expected a JSON object with a 'text', got {type(record).__name__}")
    if isinstance(record.get("data"), dict):  # Label Studio
        text = _text(f"{where}: data", record["data"])
        return _label_studio(where, record, text)
    text = _text(f"{where}: record", record)
    if isinstance(record.get("label"), dict):  # CLUENER
        return text, _cluener(where, text, record["label"])
    key = next((k for k in ("entities", "label", "labels") if k in record), None)
    if key is None:
        return None
    return text, _span_list(f"{where}: {key}", text, record[key])


def _text(where: str, obj: dict) -> str:
    if "text" not in obj:
        raise UserError(f"{where} has no 'text' (its keys: {', '.join(map(str, obj)) or 'none'})")
    if not isinstance(obj["text"], str):
        raise UserError(f"{where}: its 'text' is {type(obj['text']).__name__}, not a string")
    return obj["text"]


def _cluener(where: str, text: str, label: dict) -> list[Span]:
    spans = []
    for etype, entities in label.items():
        if not isinstance(entities, dict):
            raise UserError(f"{where}: label.{etype}: expected {{entity text: [[start, end], …]}}, got {entities!r}")
        for entity, pairs in entities.items():
            for pair in pairs if isinstance(pairs, list) else [pairs]:
                if not (isinstance(pair, list) and len(pair) == 2):
                    raise UserError(f"{where}: label.{etype}: {entity!r} has {pair!r}, not [start, end]")
                start, end = pair
                at = f"{where}: label.{etype}: {entity!r} at [{start}, {end}] (end inclusive)"
                _check(at, text, start, end + 1 if _is_int(end) else end, etype, entity)
                spans.append((start, end + 1, etype))
    return spans


def _span_list(where: str, text: str, items: object) -> list[Span]:
    if not isinstance(items, list):
        raise UserError(f"{where}: expected a list of spans, got {items!r}")
    return [span for j, item in enumerate(items) for span in _span(f"{where}[{j}]", text, item)]


def _span(at: str, text: str, item: object) -> list[Span]:
    """doccano's ``[start, end, type]`` list or ``{start_offset, end_offset, label}`` object, Label
    Studio's ``{start, end, text, labels}`` value (one span per label); ``end`` exclusive."""
    if isinstance(item, list) and len(item) == 3:
        (start, end, labels), given = item, None
    elif isinstance(item, dict):
        start, end = item.get("start_offset", item.get("start")), item.get("end_offset", item.get("end"))
        labels, given = item.get("label", item.get("labels")), item.get("text")
    else:
        raise UserError(f"{at}: a span is [start, end, type] or an object with start, end and label, got {item!r}")
    if given is not None and _is_int(start) and _is_int(end) and text[start:end] != given:
        start, end = _code_points(text, start, end, given)
    spans = []
    for etype in labels if isinstance(labels, list) else [labels]:
        _check(f"{at}: span [{start}, {end}] of {etype!r}", text, start, end, etype, given)
        spans.append((start, end, etype))
    return spans


def _label_studio(where: str, task: dict, text: str) -> tuple[str, list[Span]] | None:
    annotations = task.get("annotations") or []
    done = [k for k, a in enumerate(annotations) if isinstance(a, dict) and not a.get("was_cancelled")]
    if not done:
        return None
    k = done[0]
    results = annotations[k].get("result") or []
    return text, [span for j, r in enumerate(results) if isinstance(r, dict) and r.get("type") == "labels"
                  for span in _span(f"{where}: annotations[{k}].result[{j}].value", text, r.get("value"))]


def _code_points(text: str, start: int, end: int, given: str) -> tuple[int, int]:
    """Offsets counted in UTF-16 units (JavaScript's string length: Label Studio before 2022 and
    early doccano counted an emoji or another character beyond U+FFFF as two) as character offsets,
    when that is what makes the span read ``given``; else the offsets as they were."""
    if all(ord(c) <= 0xFFFF for c in text):
        return start, end
    units, index = 0, {}
    for i, c in enumerate(text):
        index[units] = i
        units += 2 if ord(c) > 0xFFFF else 1
    index[units] = len(text)
    moved = index.get(start), index.get(end)
    if None not in moved and text[moved[0]:moved[1]] == given:
        return moved
    return start, end


def _is_int(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _check(at: str, text: str, start: object, end: object, etype: object, given: object) -> None:
    """A one-line error for a span that does not index ``text`` or whose stated text differs."""
    if not (isinstance(etype, str) and etype.strip()) or re.search(r"\s", etype):
        raise UserError(f"{at}: the type must be a name without spaces (tags are B-TYPE / I-TYPE)")
    if not (_is_int(start) and _is_int(end)):
        raise UserError(f"{at}: the offsets are not whole numbers")
    if not 0 <= start < end <= len(text):
        raise UserError(f"{at}: falls outside the text ({len(text)} characters)" if start < end
                        else f"{at}: ends before it starts")
    if given is not None and text[start:end] != given:
        raise UserError(f"{at}: the text there is {text[start:end]!r}, the record says {given!r}")
