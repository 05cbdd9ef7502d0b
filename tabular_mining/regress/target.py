"""The target of ``task: regress``: a column of numbers, read as floats, with a one-line error
naming the column and the first cell that is not one (shared by the single-process and the Dask
preprocessing, and by evaluate's labelled files).
"""
from __future__ import annotations

import re

import pandas as pd

from shared.errors import UserError


def numeric_target(y: pd.Series, source: str, column: str) -> pd.Series:
    """The target column as floats: a missing value, or a cell that is not a number, is an error
    naming the column (and the first such row). Pure."""
    if y.isna().any():
        raise UserError(f"{source}: target column {column!r} has {int(y.isna().sum())} missing values; "
                        "drop those rows or fill them")
    if pd.api.types.is_bool_dtype(y):
        raise UserError(f"{source}: target column {column!r} holds true/false values; the regress task needs "
                        "numbers (a binary target is the classify task)")
    if pd.api.types.is_numeric_dtype(y):
        return y.astype(float)
    text = y.astype("string").str.strip()
    parsed = pd.to_numeric(text, errors="coerce")
    bad = parsed.isna()
    if bad.any():
        first = text[bad].iloc[0]
        raise UserError(f"{source}: target column {column!r} must be numeric but row {int(bad.idxmax())} holds "
                        f"{first!r}, not a number ({int(bad.sum())} such rows){_formatted_hint(first)}")
    return parsed.astype(float)


def _formatted_hint(cell: str) -> str:
    """When a cell is a number written for reading (``$1,234``, ``1,234.50``, ``12%``): what to write."""
    plain = re.sub(r"[\s$€£¥%]|,(?=\d{3}\b)", "", cell)
    if plain == cell or pd.isna(pd.to_numeric(plain, errors="coerce")):
        return ""
    return (f"; it is a formatted number: write it plain ({plain}) in the file, without currency signs, "
            "thousands separators or %")
