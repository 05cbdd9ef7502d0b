"""Reading a request body as strict JSON (RFC 8259), so no input reaches a model as something
Python's ``json`` would let through but the model (or the response encoder) chokes on:

- ``NaN``, ``Infinity``, ``-Infinity`` are not JSON: refused;
- a number that overflows a float (``1e400``) is refused, not read as infinity;
- an integer outside 64 bits (a 5,000-digit number) is refused, before Python spends time on it;
- nesting deeper than the parser can go is refused, not a ``RecursionError``;
- a string holding a lone UTF-16 surrogate (``"\\ud800"``) is refused: it cannot be encoded
  back to UTF-8, so it could never be tokenized, looked up or echoed in a response;
- bytes that are not UTF-8 are refused.

Each refusal is a :class:`BadJSON` whose message says what to send instead.
"""
from __future__ import annotations

import json
import math
import re
from typing import Any

from pydantic import BaseModel, ValidationError

_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1
_MAX_INT_CHARS = 21  # "-9223372036854775808" has 20; anything longer is out of range anyway
# a \uD800-\uDFFF escape; the walk below only runs when one appears, so plain bodies pay one regex scan
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
# A number that may not fit has 20+ digits in a row, or an exponent of 3+ digits. Only a body with
# one (or with text that looks like one) is parsed with the number checks, a Python call per number;
# the others cannot overflow a float or 64 bits. Found with bytes.translate and substring search:
# a regex over the body costs more than the checks it saves.
_NUMBER_SHAPE = bytes.maketrans(b"0123456789E+-", b"DDDDDDDDDDess")
_LONG_SHAPES = (b"D" * 20, b"eDDD", b"esDDD")


def _may_overflow(raw: bytes) -> bool:
    shape = raw.translate(_NUMBER_SHAPE)
    return any(long in shape for long in _LONG_SHAPES)


class BadJSON(ValueError):
    """The body is not strict JSON; the message says why."""


def _int(text: str) -> int:
    if len(text) > _MAX_INT_CHARS or not _INT_MIN <= (value := int(text)) <= _INT_MAX:
        shown = text if len(text) <= 24 else f"{text[:12]}...({len(text)} digits)"
        raise BadJSON(f"the integer {shown} is out of range: numbers must fit in 64 bits")
    return value


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise BadJSON(f"the number {text[:40]} is too large for a float")
    return value


def _constant(name: str) -> Any:
    raise BadJSON(f"{name} is not JSON; send numbers only (or null for a missing value)")


# built once: json.loads with any keyword builds a new decoder (and its scanner) on every call
_DECODER = json.JSONDecoder(parse_constant=_constant)
_CHECKING_DECODER = json.JSONDecoder(parse_int=_int, parse_float=_float, parse_constant=_constant)


def parse_json(raw: bytes) -> Any:
    """``raw`` as strict JSON (see the module doc); raises :class:`BadJSON`."""
    try:
        # strict UTF-8 (a leading byte-order mark is dropped): json.loads would let UTF-8-encoded
        # surrogates through ("surrogatepass") and guess UTF-16 or UTF-32 from the first bytes
        text = raw.decode("utf-8-sig")
        data = (_CHECKING_DECODER if _may_overflow(raw) else _DECODER).decode(text)
    except BadJSON:
        raise
    except RecursionError:
        raise BadJSON("the JSON is nested too deeply") from None
    except UnicodeDecodeError:
        raise BadJSON("the body is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise BadJSON(f"request body is not valid JSON: {exc}") from None
    if _SURROGATE_ESCAPE.search(raw):
        _refuse_lone_surrogates(data)
    return data


def validate_body(model: type[BaseModel], raw: bytes) -> BaseModel:
    """``raw`` as strict JSON (:func:`parse_json`) validated as ``model``.

    Fast path: pydantic's own JSON parser validates straight from the bytes (a third of the
    time of parsing then validating, on a one-row request). It is lax where :func:`parse_json` is
    strict (it reads ``NaN``, ``Infinity``, ``1e400`` and 30-digit integers), so it is taken only
    for a body where none of those can appear; and any error it finds is found again by the strict
    path, so that every refusal reads the same whichever path the body took."""
    if b"NaN" not in raw and b"Infinity" not in raw and not _may_overflow(raw):
        try:
            return model.model_validate_json(raw)
        except ValidationError:
            pass  # the strict path below raises the canonical error
    return model.model_validate(parse_json(raw))


def _refuse_lone_surrogates(data: Any) -> None:
    """Walk parsed JSON (iteratively: it may be deep) and refuse any string that is not valid Unicode."""
    stack = [data]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            strings: Any = (node,)
        elif isinstance(node, dict):
            strings = node.keys()
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
            continue
        else:
            continue
        for s in strings:
            try:
                s.encode("utf-8")
            except UnicodeEncodeError:
                raise BadJSON("a string holds a lone UTF-16 surrogate (like \\ud800), which is not valid "
                              "Unicode; send valid UTF-8 text") from None


def media_type(content_type: str) -> str:
    """The media type of a Content-Type header value, lower-case, without parameters."""
    return content_type.partition(";")[0].strip().lower()


def is_json_media(media: str) -> bool:
    """JSON, ``application/*+json``, or no Content-Type at all (taken as JSON)."""
    return media in ("", "application/json") or (media.startswith("application/") and media.endswith("+json"))
