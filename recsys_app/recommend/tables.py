"""Reading the table files people have: any text layout, or Parquet.

Interaction dumps come as ``ratings.csv`` (a header, commas), MovieLens 100k's ``u.data`` (no
header, tabs), MovieLens 1M's ``ratings.dat`` (``::``), whitespace-aligned ``.txt``, ``.tsv``…
:func:`read_table` takes them all, also compressed (``.gz``, ``.bz2``, ``.xz``), and JSON lines
(Amazon reviews' ``.json``, one object per line). The separator and whether the first line is a
header are sniffed from the first line unless the recipe says (``data.separator``,
``data.header``); text is read as UTF-8 when the whole file is UTF-8, else Latin-1 (MovieLens'
``u.item``), or as UTF-16 when it starts with a UTF-16 byte-order mark (Excel's "Unicode Text",
the same rule as :mod:`shared.textfiles`). A headerless table comes back with integer
column labels (the positions); ``frame.attrs["first_line"]`` is the file line of data row 0 (for
error messages), ``None`` for Parquet.
"""
from __future__ import annotations

import bz2
import gzip
import logging
import lzma
import re
from pathlib import Path

import pandas as pd

from shared import textfiles
from shared.errors import UserError

log = logging.getLogger(__name__)
PARQUET = (".parquet", ".pq")
# auto-detection order: the first of these found in the first line is the separator
SEPARATORS = ("::", "\t", ",", ";", "|")
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def sniff_separator(line: str) -> str:
    """The separator of a text table from its first line: ``::``, tab, comma, ``;``, ``|``, else
    runs of whitespace (``"whitespace"``)."""
    return next((sep for sep in SEPARATORS if sep in line), "whitespace")


def split_line(line: str, separator: str) -> list[str]:
    fields = line.split() if separator == "whitespace" else line.split(separator)
    return [f.strip().strip('"').strip("'") for f in fields]


def looks_like_header(fields: list[str], names: set[str] | None) -> bool:
    """A header names columns: with ``names`` (the column names the recipe expects), any field
    among them; without, a line with no number in it (so neither a numeric MovieLens dump nor a
    header-less ``user,item,rating,timestamp`` file with string ids has one)."""
    if names:
        return any(f.lower() in names for f in fields)
    return not any(_NUMBER.match(f) for f in fields if f)


# compressed text, by suffix: sniffed through these, read by pandas (which infers the same)
OPENERS = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}


def _first_line(path: Path, opener, encoding: str) -> str:
    """The first non-empty line ("" for an empty file)."""
    with opener(path, "rt", encoding=encoding) as f:
        return next((line.rstrip("\r\n") for line in f if line.strip()), "")


def _read_json(path: Path, encoding: str, lines: bool) -> pd.DataFrame:
    """JSON lines (Amazon reviews' ``.json``: one object per line) or a JSON list of objects."""
    try:
        frame = pd.read_json(path, lines=lines, dtype=False, encoding=encoding)
    except ValueError as exc:
        if isinstance(exc, UnicodeDecodeError) and encoding == textfiles.ENCODING:
            raise  # not UTF-8 after all: read_table reads it again as Latin-1
        raise UserError(f"cannot read {path} as JSON{' lines' if lines else ''}: {str(exc).splitlines()[0]}") from None
    frame.attrs["first_line"] = 1 if lines else None
    return frame


def read_table(path: str | Path, separator: str = "auto", header: bool | str = "auto",
               names: set[str] | None = None, text: tuple[str | int, ...] = ()) -> pd.DataFrame:
    """A table file as a DataFrame (see the module docstring). ``names``: lower-case column names
    that mark a header line when ``header="auto"`` and the recipe gives columns by position;
    ``text``: columns read as text, not numbers (ids: ``007`` stays ``007``): names, used in a file
    with a header, and positions, used in a file without one (or with one if ``text`` has no name)."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"data file not found: {path}")
    if path.is_dir():
        raise UserError(f"{path} is a folder; give the interactions file inside it")
    if path.suffix.lower() in PARQUET:
        try:
            frame = pd.read_parquet(path)
        except (ValueError, OSError) as exc:
            raise UserError(f"cannot read {path}: {str(exc).splitlines()[0]}") from None
        frame.attrs["first_line"] = None
        return frame
    opener = OPENERS.get(path.suffix.lower(), open)
    try:
        with opener(path, "rb") as f:
            start = f.read(4096)
    except OSError as exc:  # a .gz that is not gzip
        raise UserError(f"cannot read {path}: {exc}") from None
    utf16 = start[:2] in textfiles.UTF16_BOMS  # Excel's "Unicode Text" export
    if b"\0" in start and not utf16:
        raise UserError(f"{path}: binary, not a text table (use .csv/.tsv/.txt/.data/.dat/.json, .gz of them, "
                        "or .parquet)")
    if utf16:
        return _read_text(path, opener, "utf-16", separator, header, names, text)
    try:  # one pass over the file (a .gz decompressed once), not a UTF-8 check before pandas reads it
        return _read_text(path, opener, textfiles.ENCODING, separator, header, names, text)
    except UnicodeDecodeError:  # MovieLens' u.item: its first non-ASCII (Latin-1) title is far into the file
        return _read_text(path, opener, "latin-1", separator, header, names, text)


def _read_text(path: Path, opener, encoding: str, separator: str, header: bool | str, names: set[str] | None,
               text: tuple[str | int, ...]) -> pd.DataFrame:
    """:func:`read_table` of a text file in ``encoding``; a UTF-8 read of a file that is not UTF-8
    raises :class:`UnicodeDecodeError` (for read_table to read it as Latin-1)."""
    line = _first_line(path, opener, encoding)
    if not line:
        raise UserError(f"{path} is empty")
    if line.lstrip()[:1] in ("{", "["):
        return _read_json(path, encoding, lines=line.lstrip()[:1] == "{")
    sep = sniff_separator(line) if separator == "auto" else separator
    fields = split_line(line, sep)
    has_header = looks_like_header(fields, names) if header == "auto" else bool(header)
    by_name = has_header and any(isinstance(c, str) for c in text)
    if by_name:  # a name the header spells with other case (UserID for userId): the header's spelling
        spelt = {f.casefold(): f for f in fields}
        text = tuple(c if not isinstance(c, str) or c in fields else spelt.get(c.strip().casefold(), c) for c in text)
    keep = [c for c in text if isinstance(c, str) == by_name and (c in fields if by_name else c < len(fields))]
    try:
        frame = pd.read_csv(path, sep=r"\s+" if sep == "whitespace" else sep, header=0 if has_header else None,
                            engine="python" if len(sep) > 1 and sep != "whitespace" else "c",
                            encoding=encoding, skipinitialspace=True, skip_blank_lines=True,
                            dtype={fields[c] if has_header and not by_name else c: str for c in keep})
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        if isinstance(exc, UnicodeDecodeError) and encoding == textfiles.ENCODING:
            raise
        raise UserError(f"cannot read {path} as a {_describe(sep)}-separated table: "
                        f"{str(exc).splitlines()[0]} (set data.separator)") from None
    if has_header:
        frame.columns = [str(c).strip() for c in frame.columns]
    frame.attrs["first_line"] = 2 if has_header else 1
    log.debug("%s: %s-separated, %s header, %s", path, _describe(sep), "a" if has_header else "no", encoding)
    return frame


def _describe(sep: str) -> str:
    return {"\t": "tab", ",": "comma", "whitespace": "whitespace"}.get(sep, repr(sep))


def where(source: str, frame: pd.DataFrame, row: int) -> str:
    """``file line N`` for a text table's data row ``row``, ``source row N`` otherwise."""
    first = frame.attrs.get("first_line")
    return f"{source} line {row + first}" if first else f"{source} row {row}"
