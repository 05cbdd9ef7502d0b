"""The checks on the classes of a classify target, shared by the single-process and the Dask
preprocessing (and evaluate's hint for decorated labels): one label spelt two ways, a class too
rare to split, a file's label that is a training class decorated.
"""
from __future__ import annotations

import json
import math

import pandas as pd

from shared.errors import UserError
from tabular_mining.common.table import TableData


def _bare(label: str) -> str:
    return label.strip().rstrip(".").strip().casefold()


def label_map_hint(unseen: list[str], classes: list[str]) -> str:
    """When the unseen labels are the training classes with decoration (a trailing '.', case,
    spaces: ``'<=50K.'`` for ``'<=50K'``), the ``data.label_map`` override that maps them."""
    by_bare = {_bare(c): c for c in classes}
    mapping = {u: by_bare[_bare(u)] for u in unseen if _bare(u) in by_bare}
    if not mapping:
        return ""
    return f"; they look like the training classes decorated: add data.label_map='{json.dumps(mapping)}'"


def refuse_label_twins(classes: list[str], source: str, column: str) -> None:
    """Classes that differ only by case or a trailing '.' (``Yes``, ``yes.``: one label spelled two
    ways, as the Adult test file has them) are refused in one line with the ``data.label_map`` that
    merges them, as nlp_app refuses labels spelt two ways: trained apart they would make a class
    that is really another one's rows."""
    groups: dict[str, list[str]] = {}
    for c in classes:
        groups.setdefault(_bare(c), []).append(c)
    keep = {bare: min(group, key=lambda c: (c.rstrip(".") != c, len(c))) for bare, group in groups.items()}
    mapping = {c: keep[bare] for bare, group in groups.items() for c in group if c != keep[bare]}
    if mapping:
        twins = ", ".join(repr(c) for g in groups.values() if len(g) > 1 for c in g)
        raise UserError(f"{source}: target {column!r} has {len(classes)} classes, some one label spelled "
                        f"differently ({twins}): merge them with data.label_map='{json.dumps(mapping)}'")


def min_class_rows(cfg: TableData, n_classes: int) -> int:
    """The fewest rows a class may have: 5 for two classes; for more, enough that the stratified
    split gives it a row in the validation and test splits (the macro ROC-AUC needs every class)."""
    if n_classes == 2:
        return 5
    return max(5, math.ceil(1 / cfg.valid_size), math.ceil(1 / cfg.test_size) if cfg.test_size else 0)


def check_class_rows(counts: pd.Series, cfg: TableData, source: str, n_classes: int) -> None:
    """A one-line error naming the rarest class (``counts``: rows by class) when it has too few rows
    to split (scikit-learn's stratified split would otherwise fail with 'The least populated class in
    y has only 1 member'; the Dask split would leave it out of a split)."""
    need = min_class_rows(cfg, n_classes)
    if counts.min() < need:
        raise UserError(f"{source}: class {counts.idxmin()!r} of {cfg.target!r} has {counts.min()} rows, fewer than "
                        f"the {need} a stratified train/valid/test split (data.valid_size={cfg.valid_size:g}, "
                        f"data.test_size={cfg.test_size:g}) needs; merge it into another class with data.label_map "
                        "or drop its rows")
