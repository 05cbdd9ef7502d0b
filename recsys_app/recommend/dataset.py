"""The processed data set: indexed interactions with their split, and the id / title maps.

``frame`` has one row per interaction, users in index order and each user's rows in time
order: ``user`` and ``item`` (0-based indices), ``timestamp``, ``split`` (train/valid/test).
Saved as ``interactions.parquet`` plus ``vocab.json`` (raw user and item ids, titles, genres).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from shared.runs import atomic_path, file_sha256, read_json, write_json

SPLITS = ("train", "valid", "test")


@dataclasses.dataclass
class Interactions:
    frame: pd.DataFrame
    user_ids: list
    item_ids: list
    titles: list
    genres: list

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def rows(self, splits: tuple[str, ...]) -> pd.DataFrame:
        return self.frame[self.frame["split"].isin(splits)]

    def sequences(self, splits: tuple[str, ...] = ("train",)) -> list[np.ndarray]:
        """Each user's items in the given splits, in time order (empty arrays included)."""
        rows = self.rows(splits)
        items = rows["item"].to_numpy()
        bounds = np.searchsorted(rows["user"].to_numpy(), np.arange(self.n_users + 1))
        return [items[bounds[u]:bounds[u + 1]] for u in range(self.n_users)]

    def matrix(self, splits: tuple[str, ...] = ("train",)) -> sp.csr_matrix:
        """The binary users × items matrix of the given splits."""
        rows = self.rows(splits)
        data = np.ones(len(rows), dtype=np.float32)
        return sp.csr_matrix((data, (rows["user"].to_numpy(), rows["item"].to_numpy())),
                             shape=(self.n_users, self.n_items))

    def eval_cases(self, split: str) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
        """For ``split`` (valid or test): the users that have targets there, each one's history
        (every earlier split, in time order) and targets."""
        earlier = SPLITS[:SPLITS.index(split)]
        history = self.sequences(earlier)
        targets = self.sequences((split,))
        users = np.array([u for u in range(self.n_users) if len(targets[u])], dtype=np.int64)
        return users, [history[u] for u in users], [targets[u] for u in users]

    def counts(self) -> dict:
        """Sizes, and ``tied_last_events``: users whose latest test and validation events have the
        same timestamp (their order came from ``eval.tie_break``, not from the data)."""
        by_split = self.frame["split"].value_counts()
        last = self.frame.groupby(["user", "split"], observed=True)["timestamp"].max().unstack()
        tied = int((last["test"] == last["valid"]).sum()) if {"test", "valid"} <= set(last.columns) else 0
        test_users = int(last["test"].notna().sum()) if "test" in last.columns else 0
        return {"users": self.n_users, "items": self.n_items, "interactions": len(self.frame),
                **{f"{s}_interactions": int(by_split.get(s, 0)) for s in SPLITS},
                "test_users": test_users, "tied_last_events": tied}


def save_dataset(ds: Interactions, out: Path, info: dict) -> dict:
    """Write the data set and its ``manifest.json`` (counts, hashes, ``info``) into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    frame = ds.frame.assign(split=ds.frame["split"].astype(str))
    with atomic_path(out / "interactions.parquet") as tmp:
        frame.to_parquet(tmp, index=False)
    write_json(out / "vocab.json", {"user_ids": ds.user_ids, "item_ids": ds.item_ids,
                                    "titles": ds.titles, "genres": ds.genres})
    manifest = {"counts": ds.counts(), **info,
                "sha256": {name: file_sha256(out / name) for name in ("interactions.parquet", "vocab.json")}}
    write_json(out / "manifest.json", manifest)  # last: its presence marks a complete cache
    return manifest


def load_dataset(path: Path) -> Interactions:
    path = Path(path)
    frame = pd.read_parquet(path / "interactions.parquet")
    frame["split"] = pd.Categorical(frame["split"], categories=SPLITS)
    vocab = read_json(path / "vocab.json")
    return Interactions(frame=frame, user_ids=vocab["user_ids"], item_ids=vocab["item_ids"],
                        titles=vocab["titles"], genres=vocab["genres"])
