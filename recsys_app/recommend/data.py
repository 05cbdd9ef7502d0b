"""The ``preprocess`` stage: from raw interactions (:mod:`~recsys_app.recommend.readers`) to a
split, indexed data set (:mod:`~recsys_app.recommend.dataset`), cached; pure functions first.

Order of operations: keep positives (``rating >= min_rating``, or everything as implicit
feedback), put each user's rows in time order (ties broken by item id, or by file order when the
file promises to be in time order), keep only the latest of repeated (user, item) pairs, k-core
filter, index users and items (sorted raw ids), split. Leave-last-out: a user's last interaction
is ``test``, the one before ``valid``, the rest ``train``; users with fewer than three stay whole
in ``train``. Nothing from a user's future reaches their training rows.
"""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from recsys_app.recommend.config import DataConfig, RecsysConfig
from recsys_app.recommend.dataset import SPLITS, Interactions, load_dataset, save_dataset
from recsys_app.recommend.readers import read_interactions
from shared.config import to_dict
from shared.errors import UserError
from shared.runs import cache_dir

log = logging.getLogger(__name__)
APP = "recsys_app"


def keep_positives(df: pd.DataFrame, min_rating: float | None) -> pd.DataFrame:
    """Rows with ``rating >= min_rating``; every row when ``min_rating`` is None (implicit)."""
    if min_rating is None:
        return df
    return df[df["rating"] >= min_rating]


def order_by_time(df: pd.DataFrame, sorted_by_time: bool = False, tie_break: str = "item_id",
                  tie_seed: int = 0) -> pd.DataFrame:
    """Each user's rows in time order, users in id order. With ``sorted_by_time`` the file order
    is the truth (ties keep it) and a timestamp that goes backwards within a user is an error;
    otherwise rows sort by timestamp, and events of the same timestamp by item id
    (``tie_break="item_id"``) or in a seeded random order that depends on the (user, item) pairs
    only, not on the file order (``"random"``). Without timestamps, file order is time order."""
    if "timestamp" not in df.columns:
        return df.sort_values(["user", "row"], kind="stable")
    if sorted_by_time:
        by_file = df.sort_values(["user", "row"], kind="stable")
        back = by_file.groupby("user", sort=False)["timestamp"].diff() < 0
        if back.any():
            bad = by_file[back.to_numpy()].iloc[0]
            raise UserError(f"timestamps of user {bad['user']!r} go backwards at data row {int(bad['row'])} "
                            f"(timestamp {bad['timestamp']:g}) although data.sorted_by_time=true; sort the file "
                            "by time or set data.sorted_by_time=false")
        return by_file
    if tie_break == "item_id":
        return df.sort_values(["user", "timestamp", "item", "row"], kind="stable")
    key = pd.util.hash_pandas_object(df[["user", "item"]].astype(str), index=False,
                                     hash_key=f"{tie_seed % 10**16:016d}")
    return (df.assign(_tie=key.to_numpy()).sort_values(["user", "timestamp", "_tie", "row"], kind="stable")
            .drop(columns="_tie"))


def drop_repeats(df: pd.DataFrame) -> pd.DataFrame:
    """Keep each (user, item) pair once, at its latest position (``df`` in time order)."""
    return df[~df.duplicated(["user", "item"], keep="last")]


def k_core(df: pd.DataFrame, min_user: int, min_item: int) -> pd.DataFrame:
    """Drop users with fewer than ``min_user`` and items with fewer than ``min_item`` interactions,
    repeatedly, until both hold."""
    while True:
        users = df.groupby("user")["item"].transform("size")
        items = df.groupby("item")["user"].transform("size")
        keep = (users >= min_user) & (items >= min_item)
        if keep.all():
            return df
        df = df[keep.to_numpy()]


def leave_last_out_split(df: pd.DataFrame) -> np.ndarray:
    """``train``/``valid``/``test`` per row of ``df`` (each user's rows in time order)."""
    from_end = df.groupby("user", sort=False).cumcount(ascending=False).to_numpy()
    size = df.groupby("user", sort=False)["item"].transform("size").to_numpy()
    split = np.where(from_end == 0, "test", np.where(from_end == 1, "valid", "train"))
    return np.where(size >= 3, split, "train").astype(object)


def random_split(df: pd.DataFrame, fraction: float, seed: int) -> np.ndarray:
    """A seeded random share (at least one) of each user's rows for ``test`` and again for
    ``valid``; users with fewer than three rows stay in ``train``."""
    key = np.random.default_rng(seed).random(len(df))
    order = pd.Series(key, index=df.index).groupby(df["user"].to_numpy()).rank(method="first").to_numpy() - 1
    size = df.groupby("user", sort=False)["item"].transform("size").to_numpy()
    n_hold = np.maximum(1, np.floor(fraction * size)).astype(int)
    split = np.where(order < n_hold, "test", np.where(order < 2 * n_hold, "valid", "train"))
    return np.where(size >= 3, split, "train").astype(object)


def build_dataset(raw: pd.DataFrame, items_meta: pd.DataFrame | None, cfg: DataConfig,
                  tie_break: str = "random", tie_seed: int = 0) -> Interactions:
    """All of the above: raw standard-column interactions → indexed, split :class:`Interactions`."""
    df = keep_positives(raw, cfg.min_rating)
    if df.empty:
        raise UserError(f"no interactions have rating >= data.min_rating={cfg.min_rating}")
    df = drop_repeats(order_by_time(df, cfg.sorted_by_time, tie_break, tie_seed))
    df = k_core(df, cfg.min_user_interactions, cfg.min_item_interactions)
    if df.empty:
        raise UserError(f"no interactions left after k-core filtering (data.min_user_interactions="
                        f"{cfg.min_user_interactions}, data.min_item_interactions={cfg.min_item_interactions}); "
                        "lower them")
    user_codes, user_ids = pd.factorize(df["user"], sort=True)
    item_codes, item_ids = pd.factorize(df["item"], sort=True)
    if cfg.split.method == "leave_last_out":
        split = leave_last_out_split(df)
    else:
        split = random_split(df, cfg.split.holdout_fraction, cfg.split.seed)
    frame = pd.DataFrame({
        "user": user_codes.astype("int64"), "item": item_codes.astype("int64"),
        "timestamp": df["timestamp"].to_numpy() if "timestamp" in df else np.arange(len(df), dtype="float64"),
        "split": pd.Categorical(split, categories=SPLITS),
    })
    if not (frame["split"] == "test").any():
        raise UserError("no user has the 3+ interactions a train/valid/test split needs")
    titles, genres = [None] * len(item_ids), [None] * len(item_ids)
    if items_meta is not None:
        meta = items_meta.set_index(items_meta["item"].astype(str))
        keys = [str(i) for i in item_ids]
        if "title" in meta:
            titles = [_text(v) for v in meta["title"].reindex(keys).tolist()]
        if "genres" in meta:
            genres = [_text(v) for v in meta["genres"].reindex(keys).tolist()]
    return Interactions(frame=frame.reset_index(drop=True), user_ids=list(user_ids), item_ids=list(item_ids),
                        titles=titles, genres=genres)


def _text(value) -> str | None:
    return None if value is None or pd.isna(value) else str(value)


def dataset_dir(cfg: RecsysConfig):
    """The cache folder of ``cfg``'s data: keyed by the ``data`` section and the tie order."""
    return cache_dir(APP, cfg.name, {**to_dict(cfg.data), "tie_break": cfg.eval.tie_break,
                                     "tie_seed": cfg.eval.tie_seed})


def preprocess(cfg: RecsysConfig) -> dict:
    """The ``preprocess`` stage: read, validate, filter and split the configured data; cache it
    with a manifest under ``data/cache/recsys_app/`` (keyed by the ``data`` section)."""
    raw, items = read_interactions(cfg.data)
    ds = build_dataset(raw, items, cfg.data, cfg.eval.tie_break, cfg.eval.tie_seed)
    out = dataset_dir(cfg)
    manifest = save_dataset(ds, out, {"data": to_dict(cfg.data), "tie_break": cfg.eval.tie_break,
                                      "tie_seed": cfg.eval.tie_seed, "raw_interactions": len(raw)})
    counts = manifest["counts"]
    log.info("%d users, %d items, %d interactions → %s; %d of the %d test users have their test and "
             "validation events at the same timestamp (ordered by eval.tie_break=%s)", ds.n_users, ds.n_items,
             len(ds.frame), out, counts["tied_last_events"], counts["test_users"], cfg.eval.tie_break)
    return {"cache": str(out), **manifest["counts"]}


def load_or_preprocess(cfg: RecsysConfig) -> Interactions:
    """The cached data set for ``cfg.data``, preprocessing first when it is missing."""
    out = dataset_dir(cfg)
    if not (out / "manifest.json").exists():
        preprocess(cfg)
    return load_dataset(out)
