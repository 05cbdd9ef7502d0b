"""More interaction layouts people have, written by the test: a UTF-8 byte-order mark and CRLF,
Amazon-reviews CSVs (extra quoted columns; header-less ratings with string ids) and JSON lines,
gzip, ids with leading zeros (ISBN-style ASINs), e-mail ids, repeated (user, item) pairs, implicit
``user,item`` pairs through the ``preprocess`` stage, a European spreadsheet export, Latin-1 late
in a file."""
import gzip
import json
import logging

import pandas as pd
import pytest

from recsys_app.recommend.config import DataConfig
from recsys_app.recommend.data import build_dataset
from recsys_app.recommend.readers import read_interactions
from recsys_app.recommend.tables import read_table
from recsys_app.tasks import TASKS
from shared.cli import run_app
from shared.errors import UserError


def rows(n_users: int = 4, per_user: int = 4) -> list[tuple[str, str, float, int]]:
    """Each user rates ``per_user`` items, one a minute; ids with leading zeros and e-mails."""
    return [(f"user{u}@mail.example", f"0{i:09d}" if i % 2 else f"B00{i:07d}X", float(1 + (u + i) % 5),
             1_370_000_000 + 60 * (u * per_user + i)) for u in range(n_users) for i in range(u, u + per_user)]


def read(path, **keys) -> pd.DataFrame:
    raw, _ = read_interactions(DataConfig(source="file", path=str(path), **keys))
    return raw


def test_byte_order_mark_and_crlf_with_and_without_header(tmp_path):
    lines = ["1,10,5,100", "1,11,4,101", "", "2,10,3,102"]
    for name, header in (("plain.csv", []), ("named.csv", ["userId,movieId,rating,timestamp"])):
        (tmp_path / name).write_bytes(("\ufeff" + "\r\n".join(header + lines) + "\r\n").encode("utf-8"))
        raw = read(tmp_path / name)
        assert raw["user"].tolist() == [1, 1, 2] and raw["item"].tolist() == [10, 11, 10], name
        assert raw["timestamp"].tolist() == [100.0, 101.0, 102.0], name


def test_amazon_reviews_csv_with_extra_quoted_columns(tmp_path):
    head = "reviewerID,asin,reviewerName,helpful,reviewText,overall,summary,unixReviewTime,reviewTime"
    body = [f'{u},{i},"Smith, J","[0, 1]","Good, ""really"" good",{r},Nice,{t},"06 2, 2013"' for u, i, r, t in rows()]
    (tmp_path / "reviews.csv").write_text("\n".join([head, *body]) + "\n", encoding="utf-8")
    raw = read(tmp_path / "reviews.csv", user_col="reviewerID", item_col="asin", rating_col="overall",
               timestamp_col="unixReviewTime")
    expected = rows()
    assert raw["user"].tolist() == [r[0] for r in expected] and raw["item"].tolist() == [r[1] for r in expected]
    assert raw["rating"].tolist() == [r[2] for r in expected] and raw["timestamp"].tolist() == [r[3] for r in expected]


def test_headerless_amazon_ratings_keep_leading_zeros(tmp_path):
    """SNAP's ``ratings_Books.csv``: user,item,rating,timestamp, no header, string ids."""
    (tmp_path / "ratings_Books.csv").write_text("".join(f"{u},{i},{r},{t}\n" for u, i, r, t in rows()))
    raw = read(tmp_path / "ratings_Books.csv")
    assert raw["item"].iloc[1] == "0000000001" and raw["item"].nunique() == len({r[1] for r in rows()})


def test_item_titles_join_on_ids_with_leading_zeros(tmp_path):
    isbn = [r for r in rows(per_user=8) if r[1].isdigit()]  # every item id all digits, with leading zeros
    (tmp_path / "ratings.csv").write_text("".join(f"{u},{i},{r},{t}\n" for u, i, r, t in isbn))
    items = sorted({r[1] for r in isbn})
    (tmp_path / "meta.csv").write_text("asin,title\n" + "".join(f"{i},Book {i}\n" for i in items))
    cfg = DataConfig(source="file", path=str(tmp_path / "ratings.csv"), items_path=str(tmp_path / "meta.csv"),
                     items_id_col="asin", genres_col=None)
    raw, meta = read_interactions(cfg)
    ds = build_dataset(raw, meta, cfg)
    assert ds.item_ids == items and ds.titles == [f"Book {i}" for i in items]


def test_numeric_ids_stay_numbers_and_007_is_not_7(tmp_path):
    (tmp_path / "u.data").write_text("7\t007\t5\t1\n7\t7\t4\t2\n7\t2\t4\t3\n10\t2\t3\t3\n9\t2\t3\t4\n")
    raw = read(tmp_path / "u.data")
    assert raw["user"].tolist() == [7, 7, 7, 10, 9] and raw["item"].tolist() == ["007", "7", "2", "2", "2"]
    ds = build_dataset(raw, None, DataConfig(source="file", path="x"))
    assert ds.user_ids == [7, 9, 10]  # numbers sort as numbers, not as text
    assert ds.n_items == 3


def test_repeated_pairs_are_kept_once_at_the_latest(tmp_path):
    lines = ["userId,movieId,rating,timestamp", "1,10,5,100", "1,11,4,101", "1,10,2,105", "1,12,3,103"]
    (tmp_path / "ratings.csv").write_text("\n".join(lines) + "\n")
    cfg = DataConfig(source="file", path=str(tmp_path / "ratings.csv"))
    raw, _ = read_interactions(cfg)
    ds = build_dataset(raw, None, cfg)
    assert len(raw) == 4 and len(ds.frame) == 3
    test_row = ds.frame[ds.frame["split"] == "test"]
    assert [ds.item_ids[i] for i in test_row["item"]] == [10] and test_row["timestamp"].tolist() == [105.0]


def test_preprocess_implicit_pairs_with_string_ids(tmp_path, capsys):
    (tmp_path / "pairs.tsv").write_text("".join(f"{u}\t{i}\n" for u, i, _, _ in rows()))
    argv = ["preprocess", "--config", "configs/recsys_app/movielens-quick.yaml", "data.source=file",
            f"data.path={tmp_path / 'pairs.tsv'}", "data.header=false", "data.min_item_interactions=1",
            "name=pairs"]
    assert run_app("recsys_app", TASKS, argv=argv) == 0
    out = capsys.readouterr().out
    assert '"users": 4' in out and f'"items": {len({r[1] for r in rows()})}' in out


def test_a_european_spreadsheet_export(tmp_path):
    """Excel in a German or French locale: ``;`` between fields, a decimal comma, a BOM, CRLF."""
    lines = ["userId;movieId;rating;timestamp", "1;10;3,5;100", "1;11;4;101", "2;10;0,5;102"]
    (tmp_path / "export.csv").write_bytes(("\ufeff" + "\r\n".join(lines) + "\r\n").encode("utf-8"))
    assert read(tmp_path / "export.csv")["rating"].tolist() == [3.5, 4.0, 0.5]


def test_excel_unicode_text_export(tmp_path):
    """Excel's "Save as Unicode Text": UTF-16 little-endian with a BOM, tabs, CRLF (was refused as
    binary for its zero bytes)."""
    lines = ["userId\tmovieId\trating\ttimestamp", "1\tB007\t3,5\t100", "2\tB008\t4\t101"]
    (tmp_path / "ratings.txt").write_bytes("\r\n".join(lines).encode("utf-16"))  # BOM + UTF-16LE here
    raw = read(tmp_path / "ratings.txt")
    assert raw["item"].tolist() == ["B007", "B008"] and raw["rating"].tolist() == [3.5, 4.0]
    (tmp_path / "binary.csv").write_bytes(b"PK\x03\x04\0\0userId")
    with pytest.raises(UserError, match="binary, not a text table"):
        read(tmp_path / "binary.csv")


def test_latin1_far_into_the_file(tmp_path):
    """ml-100k's ``u.item``: ASCII titles for tens of kilobytes, then ``Misérables`` in Latin-1."""
    ascii_part = "".join(f"{i}|Movie {i} (1995)|01-Jan-1995\n" for i in range(1, 2000)).encode()
    (tmp_path / "u.item").write_bytes(ascii_part + "2000|Les Mis\xe9rables (1995)|01-Jan-1995\n".encode("latin-1"))
    assert read_table(tmp_path / "u.item").iloc[-1, 1] == "Les Mis\xe9rables (1995)"


@pytest.mark.parametrize("name", ["u.item.gz", "u.item.json", "u.item.json.gz", "first_line.csv"])
def test_latin1_read_again_in_every_layout(tmp_path, name):
    """The UTF-8 read that meets a Latin-1 byte is done again as Latin-1: compressed, JSON lines, and
    a first line that is not UTF-8 (a header spelt in Latin-1)."""
    titles = [f"Movie {i} (1995)" for i in range(1, 2000)] + ["Les Mis\xe9rables (1995)"]
    if name.startswith("first_line"):
        text = "item;t\xeftre\n" + "".join(f"{i};{t}\n" for i, t in enumerate(titles, 1))
    elif ".json" in name:
        text = "".join(json.dumps({"item": i, "title": t}, ensure_ascii=False) + "\n" for i, t in enumerate(titles, 1))
    else:
        text = "".join(f"{i}|{t}|01-Jan-1995\n" for i, t in enumerate(titles, 1))
    data = text.encode("latin-1")
    (tmp_path / name).write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    frame = read_table(tmp_path / name)
    assert frame.iloc[-1, 1] == "Les Mis\xe9rables (1995)" and len(frame) == 2000
    assert list(frame.columns)[1] == ("t\xeftre" if name.startswith("first_line") else 1 if "json" not in name
                                      else "title")


def test_amazon_json_lines_and_compressed_files(tmp_path):
    reviews = [{"reviewerID": u, "asin": i, "overall": r, "unixReviewTime": t, "reviewText": "Good,\nreally",
                "style": {"Format:": " Kindle Edition"}} for u, i, r, t in rows()]
    text = "".join(json.dumps(r) + "\n" for r in reviews)
    (tmp_path / "Books_5.json").write_text(text)
    with gzip.open(tmp_path / "Books_5.json.gz", "wt") as f:
        f.write(text)
    keys = {"user_col": "reviewerID", "item_col": "asin", "rating_col": "overall", "timestamp_col": "unixReviewTime"}
    for name in ("Books_5.json", "Books_5.json.gz"):
        raw = read(tmp_path / name, **keys)
        assert raw["item"].tolist() == [r[1] for r in rows()] and raw["rating"].tolist() == [r[2] for r in rows()]
    with gzip.open(tmp_path / "ratings.csv.gz", "wt") as f:
        f.write("userId,movieId,rating,timestamp\n1,10,5,100\n1,11,4,101\n")
    assert read(tmp_path / "ratings.csv.gz")["item"].tolist() == [10, 11]
    (tmp_path / "fake.csv.gz").write_bytes(b"userId,movieId\n1,2\n")
    with pytest.raises(UserError, match="fake.csv.gz: Not a gzipped file"):
        read(tmp_path / "fake.csv.gz")


def test_book_crossing_quoted_semicolons_latin1_and_implicit_zeros(tmp_path):
    """``BX-Book-Ratings.csv``: ``"User-ID";"ISBN";"Book-Rating"``, every field quoted, Latin-1,
    ISBNs with an X, rating 0 for an implicit interaction (read as 0: a positive unless
    ``data.min_rating=1`` drops it in preprocess), no timestamp (the file order is time order)."""
    body = ['"276725";"034545104X";"0"', '"276726";"0155061224";"5"', '"276725";"0345417623";"8"',
            '"276727";"3-89\xe4-X";"0"']
    (tmp_path / "BX-Book-Ratings.csv").write_bytes(('"User-ID";"ISBN";"Book-Rating"\n' + "\n".join(body) + "\n")
                                                   .encode("latin-1"))
    keys = {"user_col": "User-ID", "item_col": "ISBN", "rating_col": "Book-Rating", "timestamp_col": None}
    raw = read(tmp_path / "BX-Book-Ratings.csv", **keys)
    assert raw["user"].tolist() == [276725, 276726, 276725, 276727]
    assert raw["item"].tolist() == ["034545104X", "0155061224", "0345417623", "3-89\xe4-X"]
    assert raw["rating"].tolist() == [0, 5, 8, 0]


def test_lastfm_plays_without_header_and_a_trailing_separator_with_blank_lines(tmp_path):
    (tmp_path / "plays.tsv").write_text("user_000001\tartist 1\t120\nuser_000001\tartist 2\t7\n\n"
                                        "user_000002\tartist 1\t3\n", encoding="utf-8")
    raw = read(tmp_path / "plays.tsv", columns=["user", "item", "rating"], timestamp_col=None)
    assert raw["user"].tolist() == ["user_000001"] * 2 + ["user_000002"] and raw["rating"].tolist() == [120, 7, 3]
    (tmp_path / "ratings.csv").write_text("userId,movieId,rating,timestamp,\n1,10,5,100,\n\n1,11,4,101,\n\n\n",
                                          encoding="utf-8")
    raw = read(tmp_path / "ratings.csv")
    assert raw["item"].tolist() == [10, 11] and raw["timestamp"].tolist() == [100.0, 101.0]


def test_column_names_spelt_with_other_case_are_matched(tmp_path, caplog):
    """A header ``UserID,MovieID,Rating,Timestamp`` (or `` user_id ``) for the recipe's ``userId`` /
    ``movieId`` …: the one column that matches but for case is taken (and logged), ids still read as
    text (``007`` stays ``007``); two columns matching so are not guessed between."""
    (tmp_path / "r.csv").write_text("UserID,MOVIEID,Rating,timestamp\n007,0528881469,4,100\n7,10,3,101\n")
    with caplog.at_level(logging.INFO):
        raw = read(tmp_path / "r.csv")
    assert raw["user"].tolist() == ["007", "7"] and raw["item"].tolist() == ["0528881469", "10"]
    assert "data.user_col='userId' read as the file's column 'UserID'" in caplog.text
    (tmp_path / "two.csv").write_text("userid,USERID,movieId,rating,timestamp\n1,2,10,4,100\n")
    with pytest.raises(UserError, match=r"missing column\(s\) user_col='userId'"):
        read(tmp_path / "two.csv")
