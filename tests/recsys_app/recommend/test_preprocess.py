"""Reading, validation and splitting, on hand-made tables."""
import numpy as np
import pandas as pd
import pytest

from recsys_app.recommend.config import DataConfig
from recsys_app.recommend.data import (
    build_dataset,
    drop_repeats,
    k_core,
    keep_positives,
    leave_last_out_split,
    order_by_time,
    random_split,
)
from recsys_app.recommend.readers import parse_timestamps, standardize_interactions
from shared.errors import UserError


def table(rows, cols=("user", "item", "timestamp")) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=list(cols))
    df["row"] = np.arange(len(df))
    return df


def test_leave_last_out_follows_time_not_file_order():
    # File order is scrambled; by time user a saw 1, 2, 3, 4 and user b saw 7, 8; c has 3 items.
    df = table([("a", 4, 40), ("b", 8, 20), ("a", 1, 10), ("c", 5, 3), ("a", 3, 30), ("b", 7, 10),
                ("a", 2, 20), ("c", 6, 1), ("c", 9, 2)])
    ordered = order_by_time(df)
    split = pd.Series(leave_last_out_split(ordered), index=ordered.index)
    by = {(r["user"], r["item"]): split[i] for i, r in ordered.iterrows()}
    assert by[("a", 4)] == "test" and by[("a", 3)] == "valid" and by[("a", 1)] == by[("a", 2)] == "train"
    assert by[("b", 7)] == by[("b", 8)] == "train"  # fewer than 3: all train
    assert by[("c", 5)] == "test" and by[("c", 9)] == "valid" and by[("c", 6)] == "train"


def test_no_training_row_is_later_than_the_users_held_out_rows():
    rng = np.random.default_rng(1)
    df = table([(u, i, int(rng.integers(0, 50))) for u in range(20) for i in rng.choice(100, 8, replace=False)])
    df = df.sample(frac=1, random_state=2)  # leakage would show up if the split trusted file order
    ordered = order_by_time(df)
    ordered = ordered.assign(split=leave_last_out_split(ordered))
    for _, g in ordered.groupby("user"):
        train_max = g.loc[g.split == "train", "timestamp"].max()
        assert train_max <= g.loc[g.split == "valid", "timestamp"].min() <= g.loc[g.split == "test", "timestamp"].min()
        assert not set(g.loc[g.split == "train", "item"]) & set(g.loc[g.split == "test", "item"])


def test_ties_are_broken_by_item_id_whatever_the_file_order():
    a = table([("u", 9, 5), ("u", 3, 5), ("u", 1, 1)])
    b = table([("u", 3, 5), ("u", 1, 1), ("u", 9, 5)])
    assert list(order_by_time(a)["item"]) == list(order_by_time(b)["item"]) == [1, 3, 9]


def test_sorted_by_time_keeps_file_order_and_rejects_going_backwards():
    df = table([("u", 9, 5), ("u", 3, 5), ("u", 1, 6)])
    assert list(order_by_time(df, sorted_by_time=True)["item"]) == [9, 3, 1]
    with pytest.raises(UserError, match="go backwards"):
        order_by_time(table([("u", 1, 5), ("u", 2, 4)]), sorted_by_time=True)


def test_random_split_is_seeded_and_holds_out_per_user():
    df = order_by_time(table([(u, i, i) for u in range(5) for i in range(10)]))
    s1, s2 = random_split(df, 0.2, seed=3), random_split(df, 0.2, seed=3)
    assert (s1 == s2).all()
    per_user = pd.crosstab(df["user"].to_numpy(), s1)
    assert (per_user["test"] == 2).all() and (per_user["valid"] == 2).all() and (per_user["train"] == 6).all()


def test_positives_repeats_and_k_core():
    df = table([("a", 1, 1, 5.0), ("a", 2, 2, 2.0), ("a", 1, 3, 4.0), ("b", 1, 1, 4.0), ("c", 3, 1, 5.0)],
               cols=("user", "item", "timestamp", "rating"))
    assert len(keep_positives(df, 4.0)) == 4 and len(keep_positives(df, None)) == 5
    dedup = drop_repeats(order_by_time(df))
    assert len(dedup) == 4 and dedup[(dedup.user == "a") & (dedup.item == 1)]["timestamp"].item() == 3
    core = k_core(dedup, min_user=2, min_item=1)  # b and c have one item each
    assert set(core["user"]) == {"a"}
    assert k_core(dedup, min_user=2, min_item=2).empty  # dropping b leaves item 1 with one user


def test_timestamps_parse_numbers_and_dates_and_name_bad_rows():
    assert parse_timestamps(pd.Series([3, 1]), "f.csv").tolist() == [3.0, 1.0]
    secs = parse_timestamps(pd.Series(["2024-01-01T00:00:00Z", "2024-01-01 00:00:10"]), "f.csv")
    assert secs[1] - secs[0] == 10
    with pytest.raises(UserError, match="line 3.*'yesterday'"):
        parse_timestamps(pd.Series(["2024-01-01", "yesterday"]), "f.csv")


def test_missing_columns_and_empty_results_are_user_errors():
    cfg = DataConfig(source="file", path="x.csv", user_col="uid", item_col="iid", rating_col=None, timestamp_col=None)
    with pytest.raises(UserError, match=r"item_col='iid'.*\['uid', 'other'\]"):
        standardize_interactions(pd.DataFrame({"uid": [1], "other": [2]}), cfg, "x.csv")
    raw = standardize_interactions(pd.DataFrame({"uid": [1, 2, 3], "iid": [1, 2, 3]}), cfg, "x.csv")
    with pytest.raises(UserError, match="k-core"):
        build_dataset(raw, None, cfg.model_copy(update={"min_user_interactions": 2}))
    with pytest.raises(UserError, match="3\\+ interactions"):
        build_dataset(raw, None, cfg)


def test_build_dataset_indexes_sorted_ids_and_keeps_titles():
    cfg = DataConfig(source="file", path="x.csv", user_col="u", item_col="i", rating_col=None, timestamp_col="t")
    raw = standardize_interactions(pd.DataFrame({"u": ["b", "a", "a", "a"], "i": [20, 10, 30, 20],
                                                 "t": [1, 3, 1, 2]}), cfg, "x.csv")
    items = pd.DataFrame({"item": [10, 20], "title": ["Ten", "Twenty"], "genres": [None, "X"]})
    ds = build_dataset(raw, items, cfg)
    assert ds.user_ids == ["a", "b"] and ds.item_ids == [10, 20, 30]
    assert ds.titles == ["Ten", "Twenty", None] and ds.genres == [None, "X", None]
    users, hist, targets = ds.eval_cases("test")
    assert users.tolist() == [0] and hist[0].tolist() == [2, 1] and targets[0].tolist() == [0]
