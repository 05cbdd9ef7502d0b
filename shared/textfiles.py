"""Users' delimited text files, read alike by every app: UTF-8 (a leading BOM dropped; a file
with a UTF-16 BOM, Excel's "Unicode Text", as UTF-16), or a one-line :class:`UserError` naming
the encoding problem; the delimiter of a CSV-like file sniffed
from its first lines (``.tsv``/``.tab``: a tab).

The sniff parses the head of the file with each candidate delimiter (quotes honoured, so a quoted
field may hold commas or line breaks) and keeps those that split every row into the same number
(more than one) of fields; of several, the first of tab, ``;``, ``,``, ``|`` wins (a TSV's texts
often hold one comma each, a comma CSV's rows rarely hold a tab; a ``;`` export of numbers with
decimal commas splits evenly on ``,`` too). No consistent candidate: ``,``.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path

from shared.errors import UserError

DELIMITERS = ("\t", ";", ",", "|")
ENCODING = "utf-8-sig"  # UTF-8; a BOM at the start is dropped, never glued to the first column name
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_HEAD_BYTES = 64 * 1024


def not_utf8(path: str | Path, exc: UnicodeDecodeError, offset: int | None = 0) -> UserError:
    """The one-line error for a file that is not UTF-8 (a GBK/GB18030 export, Latin-1 …);
    ``offset``: where ``exc``'s buffer starts in the file (None: unknown, not said)."""
    path = Path(path)
    byte = exc.object[exc.start:exc.start + 1].hex()
    at = "" if offset is None else f" at offset {offset + exc.start}"
    return UserError(f"{path} is not UTF-8 text (byte 0x{byte}{at}: {exc.reason}); re-save it as UTF-8, e.g. "
                     f"iconv -f GBK -t UTF-8 {path.name} > {path.stem}.utf8{path.suffix} (GBK: a Chinese Windows "
                     "export; -f LATIN1 for a Western one)")


def encoding_of(path: str | Path) -> str:
    """``utf-16`` for a file that starts with a UTF-16 BOM (Excel's "Unicode Text" export), else
    UTF-8 with an optional BOM."""
    with open(path, "rb") as f:
        start = f.read(2)
    return "utf-16" if start in UTF16_BOMS else ENCODING


def read_text(path: str | Path) -> str:
    """The whole file as text (UTF-8, BOM dropped, or BOM-marked UTF-16), or :func:`not_utf8`."""
    data = Path(path).read_bytes()
    try:
        return data.decode(encoding_of(path))
    except UnicodeDecodeError as exc:
        raise not_utf8(path, exc) from None


def head(path: str | Path, size: int = _HEAD_BYTES) -> tuple[str, bool]:
    """The first ``size`` bytes as text (a character cut at the end is dropped) and whether that
    is the whole file; not UTF-8 in that part: :func:`not_utf8`."""
    with open(path, "rb") as f:
        data = f.read(size + 1)
    whole = len(data) <= size
    data, encoding = data[:size], encoding_of(path)
    try:
        return data.decode(encoding), whole
    except UnicodeDecodeError as exc:
        if not whole and exc.start >= len(data) - 3:  # a multi-byte character cut by the head
            return data[:exc.start].decode(encoding), whole
        raise not_utf8(path, exc) from None


def first_line(path: str | Path, size: int = 4096) -> str:
    """The first non-blank line among the first ``size`` bytes, stripped ("" when there is none):
    what tells a file's layout (a fastText label, a JSON record) before it is read whole."""
    text, _ = head(path, size)
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def sniff_delimiter(path: str | Path, default: str = ",") -> str:
    """The field delimiter of a CSV-like file (see the module docstring)."""
    if Path(path).suffix.lower() in (".tsv", ".tab"):
        return "\t"
    text, whole = head(path)
    for delimiter in DELIMITERS:
        try:
            rows = [row for row in csv.reader(io.StringIO(text), delimiter=delimiter) if row]
        except csv.Error:
            continue
        if not whole:
            rows = rows[:-1]  # the last row may be cut by the head
        counts = {len(row) for row in rows}
        if rows and len(counts) == 1 and counts.pop() > 1:
            return delimiter
    return default
