"""The text field of every NLP request model.

:data:`Text` is a text that is neither empty nor only whitespace, and valid Unicode (a lone UTF-16
surrogate is refused: the server's JSON reader refuses it over HTTP, this type's validation for a
Python caller of ``nlp_app.load(run).predict``). A refusal is a 422 naming ``instances.<i>…`` that
fails that request alone. OpenAPI shows it as ``minLength: 1, pattern: \\S``.
"""
from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field


def _not_blank(text: str) -> str:
    if text.isspace():
        raise ValueError("is blank (only whitespace): send a non-empty text")
    return text


# the pattern documents the rule for clients and fuzzers; the validator enforces it with Python's
# whitespace (Python's re reads the pattern the same way); the length constraint makes pydantic
# check the string as Unicode, which refuses lone surrogates
Text = Annotated[str, Field(min_length=1, json_schema_extra={"pattern": r"\S"}), AfterValidator(_not_blank)]
