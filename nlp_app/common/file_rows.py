"""The rows of a user's text-classification file as dicts, whatever layout it comes in.

- ``.csv`` / ``.tsv`` / ``.tab``: delimited text; the delimiter is sniffed (tab, ``;``, ``,``
  or ``|``; see :mod:`shared.textfiles`), quoted fields may hold delimiters and line breaks, CRLF
  and a UTF-8 BOM are fine. The first row is the header (names stripped of surrounding spaces)
  unless ``data.column_names`` names the columns of a headerless file, in order
  (``[label,text]`` for ``pos<TAB>好评``); a first row that holds one of those names is the
  file's own header all the same (a run trained on a headerless file, given a file with a header
  to ``predict`` or ``evaluate --data``). A row with more fields than the header is an error naming
  its line (an unquoted delimiter inside a text); blank lines are skipped.
- ``.jsonl`` / ``.ndjson`` / ``.json``: one object per line; a ``.json`` file holding one array of
  objects is read too.
- ``.txt``: fastText lines, ``__label__pos 质量很好`` (columns ``label`` and ``text``; one label a
  line), or, without ``__label__``, a delimited file as above (``label<TAB>text``).

A file that is not UTF-8 (a GBK export) is a one-line error naming the encoding problem.
"""
from __future__ import annotations

import csv
import io
import itertools
import json
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

from shared import textfiles
from shared.errors import UserError

FASTTEXT_PREFIX = "__label__"
JSON_SUFFIXES = (".jsonl", ".json", ".ndjson")
_FASTTEXT = re.compile(r"^((?:__label__\S*\s*)+)(.*)$", re.DOTALL)


class FileRows(NamedTuple):
    rows: list[dict]
    columns: list[str]
    places: list[str]  # where each row is in the file, for messages: "line 14" (where an editor shows it), "item 3"


def file_rows(path: Path, column_names: Sequence[str] = ()) -> FileRows:
    """Rows of a CSV/TSV/JSONL/fastText file as dicts, the column names seen, and where each row is."""
    suffix = path.suffix.lower()
    if suffix in JSON_SUFFIXES:
        return _json_rows(path)
    if suffix == ".txt" and is_fasttext(path):
        return _fasttext_rows(path)
    if suffix in (".csv", ".tsv", ".tab", ".txt"):
        return _delimited_rows(path, column_names)
    raise UserError(f"{path}: unsupported file type {suffix!r}; use .csv, .tsv, .jsonl or a fastText .txt")


def is_fasttext(path: Path) -> bool:
    """Whether the first non-blank line starts with ``__label__``."""
    return textfiles.first_line(path).startswith(FASTTEXT_PREFIX)


def fasttext_line(line: str, where: str) -> tuple[str, str]:
    """``(label, text)`` of one fastText line; a line without a label gives an empty label."""
    match = _FASTTEXT.match(line.strip())
    if not match:
        return "", line.strip()
    labels = match.group(1).split()
    if len(labels) > 1:
        raise UserError(f"{where} has {len(labels)} labels ({' '.join(labels)}); one label a line "
                        "(multi-label classification is not supported)")
    return labels[0][len(FASTTEXT_PREFIX):], match.group(2)


def _fasttext_rows(path: Path) -> FileRows:
    rows, places = [], []
    for lineno, line in enumerate(textfiles.read_text(path).splitlines(), 1):
        if line.strip():
            label, text = fasttext_line(line, f"{path}: line {lineno}")
            rows.append({"label": label, "text": text})
            places.append(f"line {lineno}")
    return FileRows(rows, ["label", "text"], places)


def _delimited_rows(path: Path, column_names: Sequence[str]) -> FileRows:
    delimiter = textfiles.sniff_delimiter(path)
    reader = csv.reader(io.StringIO(textfiles.read_text(path), newline=""), delimiter=delimiter)
    records = _records(reader)
    first = next(records, (1, []))
    header, pending = [c.strip() for c in first[1]], []
    if column_names and not {c.strip() for c in first[1]} & {str(c) for c in column_names}:
        header, pending = [str(c) for c in column_names], [first]
    rows, places = [], []
    for lineno, fields in itertools.chain(pending, records):
        if not fields:
            continue
        if len(fields) > len(header):
            name = {"\t": "tab", ",": "comma", ";": "semicolon", "|": "bar"}[delimiter]
            raise UserError(f"{path}: line {reader.line_num} has {len(fields)} fields separated by {name}s, the "
                            f"header {len(header)} ({', '.join(header)}); put a text holding a {name} in double "
                            "quotes")
        rows.append(dict(zip(header, fields)))
        places.append(f"line {lineno}")
    return FileRows(rows, header, places)


def _records(reader) -> Iterator[tuple[int, list[str]]]:
    """``(first line, fields)`` of each record (a quoted field may run over several lines)."""
    start = 1
    for fields in reader:
        yield start, fields
        start = reader.line_num + 1


def _json_rows(path: Path) -> FileRows:
    text = textfiles.read_text(path)
    if text.lstrip().startswith("["):
        try:
            items = [(n, row) for n, row in enumerate(json.loads(text), 1)]
        except json.JSONDecodeError as exc:
            raise UserError(f"{path}: not valid JSON at line {exc.lineno} ({exc.msg})") from None
        where = "item"
    else:
        items, where = [], "line"
        for lineno, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                items.append((lineno, json.loads(line)))
            except json.JSONDecodeError as exc:
                raise UserError(f"{path}: line {lineno} is not valid JSON ({exc.msg})") from None
    rows, columns = [], set()
    for n, row in items:
        if not isinstance(row, dict):
            raise UserError(f"{path}: {where} {n} must be a JSON object like " '{"text": "...", "label": "..."}')
        rows.append(row)
        columns |= set(row)
    return FileRows(rows, sorted(columns), [f"{where} {n}" for n, _ in items])
