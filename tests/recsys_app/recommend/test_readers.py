"""Interaction files in the layouts people have, written by the test: MovieLens 100k ``u.data``
(tabs, no header), 1M ``ratings.dat`` (``::``), ``ratings.csv`` (a header), whitespace ``.txt``,
columns by position, a rating threshold, ``u.item`` metadata in Latin-1; and what goes wrong."""
import numpy as np
import pandas as pd
import pytest

from recsys_app.recommend.config import DataConfig, RecsysConfig
from recsys_app.recommend.data import build_dataset, order_by_time
from recsys_app.recommend.readers import read_interactions
from recsys_app.recommend.tables import read_table, sniff_separator
from recsys_app.tasks import TASKS
from shared.cli import run_app
from shared.config import apply_overrides, validate
from shared.errors import UserError


def ratings(n_users: int = 12, n_items: int = 15, seed: int = 0) -> pd.DataFrame:
    """user, item, rating 1-5, timestamp (with ties), the numbers MovieLens dumps carry."""
    rng = np.random.default_rng(seed)
    rows = [(u + 1, int(i) + 1, int(rng.integers(1, 6)), 880_000_000 + int(rng.integers(0, 5)) * 60)
            for u in range(n_users) for i in rng.choice(n_items, size=6, replace=False)]
    return pd.DataFrame(rows, columns=["user", "item", "rating", "timestamp"])


def write(path, frame: pd.DataFrame, sep: str, header: bool, blank_line: bool = False) -> str:
    lines = [sep.join(map(str, r)) for r in frame.itertuples(index=False)]
    if blank_line:
        lines.insert(len(lines) // 2, "")
    text = "\n".join(([sep.join(frame.columns)] if header else []) + lines) + "\n"
    path.write_text(text, encoding="utf-8")
    return str(path)


def data_cfg(path, **keys) -> DataConfig:
    return DataConfig(source="file", path=str(path), **keys)


def same_dataset(a, b) -> bool:
    return (a.user_ids == b.user_ids and a.item_ids == b.item_ids
            and a.frame[["user", "item", "split"]].equals(b.frame[["user", "item", "split"]]))


def test_every_layout_reads_to_the_same_data_set(tmp_path):
    frame = ratings()
    layouts = {
        "u.data": (write(tmp_path / "u.data", frame, "\t", header=False), {}),
        "ratings.dat": (write(tmp_path / "ratings.dat", frame, "::", header=False), {}),
        "ratings.csv": (write(tmp_path / "ratings.csv", frame.set_axis(["userId", "movieId", "rating", "timestamp"],
                                                                         axis=1), ",", header=True), {}),
        "spaces.txt": (write(tmp_path / "spaces.txt", frame, "   ", header=False, blank_line=True), {}),
        "by-position.tsv": (write(tmp_path / "by-position.tsv", frame[["timestamp", "item", "user"]], "\t",
                                  header=False), {"columns": ["timestamp", "item", "user"]}),
        "named.csv": (write(tmp_path / "named.csv", frame.set_axis(["uid", "iid", "stars", "ts"], axis=1), ";",
                            header=True), {"user_col": "uid", "item_col": "iid", "rating_col": "stars",
                                           "timestamp_col": "ts"}),
    }
    built = {}
    for name, (path, keys) in layouts.items():
        cfg = data_cfg(path, **keys)
        raw, _ = read_interactions(cfg)
        assert len(raw) == len(frame), name
        built[name] = build_dataset(raw, None, cfg)
    reference = built.pop("u.data")
    assert reference.n_users == 12 and reference.item_ids == sorted(frame["item"].unique().tolist())
    for name, ds in built.items():
        assert same_dataset(ds, reference), name


def test_sniffing_and_headers():
    assert [sniff_separator(x) for x in ("1::2::5", "1\t2", "1,2", "1 2", "1;2", "1|2")] == \
        ["::", "\t", ",", "whitespace", ";", "|"]


def test_columns_by_position_skip_and_threshold(tmp_path):
    frame = ratings()
    path = write(tmp_path / "u.data", frame, "\t", header=False)
    cfg = data_cfg(path, columns=["user", "item", "rating", "-"], min_rating=4)
    raw, _ = read_interactions(cfg)
    assert "timestamp" not in raw and len(raw) == len(frame)
    ds = build_dataset(raw, None, cfg)
    assert len(ds.frame) == int((frame["rating"] >= 4).sum())
    # a header line is found when it names a column, even with data.columns
    named = write(tmp_path / "named.tsv", frame, "\t", header=True)
    raw, _ = read_interactions(data_cfg(named, columns=["user", "item", "rating", "timestamp"]))
    assert len(raw) == len(frame)


def test_headerless_string_ids_and_header_override(tmp_path):
    frame = ratings().assign(user=lambda f: "u" + f["user"].astype(str), item=lambda f: "m" + f["item"].astype(str))
    path = write(tmp_path / "events.csv", frame, ",", header=False)
    raw, _ = read_interactions(data_cfg(path))  # a first line with numbers in it is data, not a header
    assert len(raw) == len(frame) and raw["user"].iloc[0] == frame["user"].iloc[0]
    implicit = write(tmp_path / "pairs.csv", frame[["user", "item"]], ",", header=False)
    with pytest.raises(UserError, match=r"missing column\(s\).*data.header=false"):
        read_interactions(data_cfg(implicit))  # no number: taken for a header, and the error says what to do
    raw, _ = read_interactions(data_cfg(implicit, header=False))
    assert len(raw) == len(frame) and list(raw.columns) == ["user", "item", "row"]


def test_movielens_item_file_in_latin1(tmp_path):
    frame = ratings()
    path = write(tmp_path / "u.data", frame, "\t", header=False)
    flags = "|".join(["0"] * 19)
    items = "".join(f"{i}|Caf\xe9 {i} (1995)|01-Jan-1995||http://x/{i}|{flags}\n" for i in range(1, 16))
    (tmp_path / "u.item").write_bytes(items.encode("latin-1"))
    cfg = data_cfg(path, items_path=str(tmp_path / "u.item"), items_columns=["item", "title"])
    raw, meta = read_interactions(cfg)
    ds = build_dataset(raw, meta, cfg)
    assert ds.titles[0] == f"Caf\xe9 {ds.item_ids[0]} (1995)" and ds.genres[0] is None


@pytest.mark.parametrize("content, keys, message", [
    (b"1\t2\t5\t100\n", {"columns": ["user", "item", "rating", "timestamp", "-"]}, "names 5 columns"),
    (b"\x00\x01binary", {}, "binary"),
    (b"\n\n", {}, "is empty"),
    (b"1\t2\t5\t100\n1\t3\tfive\t100\n", {}, "line 2: rating 'five'"),
    (b"1\t2\t5\t100\n2\t3\t4\tyesterday\n", {}, "line 2: timestamp 'yesterday'"),
    (b"1\t2\tfive\t100\n", {}, r"line 1: rating 'five' in column 3 of the line.*data.header=true"),
    (b"A\t2\t5\t100\n\t3\t4\t101\n", {}, r"line 2: empty user id \(column 1 of the line\)"),
    (b"userId\tmovieId\trating\n1\t2\tfive\n", {}, r"the file has \['userId', 'movieId', 'rating'\].*data.header"),
])
def test_bad_files_are_one_line_errors(tmp_path, content, keys, message):
    (tmp_path / "bad.data").write_bytes(content)
    with pytest.raises(UserError, match=message):
        read_interactions(data_cfg(tmp_path / "bad.data", **keys))


def test_config_checks_the_column_roles():
    with pytest.raises(ValueError, match="user and item"):
        DataConfig(columns=["item", "rating"])
    with pytest.raises(ValueError, match="each entry once"):
        DataConfig(columns=["user", "item", "score"])
    with pytest.raises(ValueError, match="rating column"):
        DataConfig(columns=["user", "item"], min_rating=4)


def test_preprocess_stage_on_a_u_data_file(tmp_path, capsys):
    path = write(tmp_path / "u.data", ratings(), "\t", header=False)
    argv = ["preprocess", "--config", "configs/recsys_app/movielens.yaml", "data.source=file", f"data.path={path}",
            "name=udata"]
    assert run_app("recsys_app", TASKS, argv=argv) == 0
    out = capsys.readouterr().out
    assert '"users": 12' in out and '"tied_last_events"' in out


def test_random_tie_order_ignores_file_order_and_item_ids():
    frame = ratings().rename(columns={"timestamp": "timestamp"})
    frame["row"] = np.arange(len(frame))
    shuffled = frame.sample(frac=1, random_state=3).assign(row=lambda f: np.arange(len(f)))
    a = order_by_time(frame, tie_break="random", tie_seed=0)
    b = order_by_time(shuffled, tie_break="random", tie_seed=0)
    assert a[["user", "item"]].to_numpy().tolist() == b[["user", "item"]].to_numpy().tolist()
    by_id = order_by_time(frame, tie_break="item_id")
    assert a[["user", "item"]].to_numpy().tolist() != by_id[["user", "item"]].to_numpy().tolist()
    other_seed = order_by_time(frame, tie_break="random", tie_seed=1)
    assert a[["user", "item"]].to_numpy().tolist() != other_seed[["user", "item"]].to_numpy().tolist()
    for _, g in a.groupby("user"):
        assert g["timestamp"].is_monotonic_increasing


def test_tied_last_events_are_counted():
    cfg = validate(RecsysConfig, apply_overrides({}, ["data.source=file", "data.path=x"]))
    raw = pd.DataFrame({"user": [1, 1, 1, 2, 2, 2], "item": [1, 2, 3, 1, 2, 3], "timestamp": [1, 5, 5, 1, 2, 3]})
    raw["row"] = np.arange(len(raw))
    counts = build_dataset(raw, None, cfg.data).counts()
    assert counts["test_users"] == 2 and counts["tied_last_events"] == 1


def test_read_table_keeps_header_names(tmp_path):
    (tmp_path / "x.csv").write_text("a, b\n1, 2\n")
    frame = read_table(tmp_path / "x.csv")
    assert list(frame.columns) == ["a", "b"] and frame.attrs["first_line"] == 2


@pytest.mark.parametrize("layout, keys", [
    ("ml-100k", {"path": "u.data", "items_path": "u.item", "items_columns": ["item", "title"]}),
    ("ml-latest-small", {"path": "ratings.csv", "items_path": "movies.csv"}),
])
def test_generated_movielens_layouts_read_back(tmp_path, layout, keys):
    from recsys_app.recommend.synthetic import generate, write

    ratings, movies = generate(users=40, items=120, per_user=25, seed=1)
    write(ratings, movies, tmp_path, layout)
    cfg = DataConfig(source="file", **{k: str(tmp_path / v) if k.endswith("path") else v for k, v in keys.items()})
    raw, meta = read_interactions(cfg)
    assert len(raw) == len(ratings) and raw["user"].nunique() == 40
    ds = build_dataset(raw, meta, cfg)
    assert ds.titles[0].startswith("Movie ") and ds.counts()["tied_last_events"] > 0  # same-second ratings
