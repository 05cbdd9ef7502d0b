"""Users' own tables through the documented "your own data" paths (issue 14, tabular items 7-11,
15): files the test makes in the shapes people have: an adult-income-like table with `?` for
missing cells, a row-number column and a test file whose labels carry a trailing '.'; a table
that is not Telco for the segments recipe; overrides of string fields on the command line."""
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shared.config import read_recipe
from shared.runs import latest_run
from tabular_mining.classify.config import ClassifyConfig
from tabular_mining.common.table import TableData, looks_like_row_id, split_cache_dir

CHURN = "configs/tabular_mining/churn-quick.yaml"
SEGMENTS = "configs/tabular_mining/segments-quick.yaml"
FAST = ["model.name=logistic", "eval.cv_folds=0"]


def adult_like(n: int, seed: int, decorate: str = "") -> pd.DataFrame:
    """An income table: ~25% '>50K', '?' in workclass and age, a leading row-number column."""
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 80, n)
    hours = rng.integers(10, 70, n)
    education = rng.choice(["HS-grad", "Bachelors", "Masters", "Some-college"], n, p=[0.4, 0.3, 0.1, 0.2])
    logit = 0.05 * (age - 40) + 0.06 * (hours - 40) + np.where(np.isin(education, ["Bachelors", "Masters"]), 1.5, -0.5)
    rich = rng.random(n) < 1 / (1 + np.exp(-(logit - 1.2)))
    df = pd.DataFrame({
        "rownames": np.arange(1, n + 1),
        "age": age.astype(object), "workclass": rng.choice(["Private", "Self-emp", "State-gov"], n).astype(object),
        "education": education, "hours_per_week": hours, "sex": rng.choice(["Male", "Female"], n),
        "income": np.where(rich, ">50K", "<=50K"),
    })
    df.loc[rng.random(n) < 0.05, "workclass"] = "?"
    df.loc[rng.random(n) < 0.03, "age"] = "?"
    df["income"] = " " + df["income"] + decorate  # ' <=50K' as the public file has it
    return df


@pytest.fixture(scope="module")
def adult(csv_files):
    root = csv_files("adult", {"adult.csv": adult_like(500, 0), "adult_test.csv": adult_like(150, 1, decorate=".")})
    adult_like(300, 2).drop(columns="rownames").to_csv(root / "adult.data", index=False, header=False)
    return root


@pytest.fixture(scope="module")
def adult_run(adult, cli):
    """Trained on the whole training file (no test split), '?' as missing, the row number an id."""
    argv = ["train", "--config", CHURN, "name=adult", f"data.path={adult / 'adult.csv'}", "data.target=income",
            "data.na_values=['?']", "data.id_columns=[rownames]", "data.test_size=0", *FAST]
    assert cli(*argv) == 0
    return latest_run("tabular_mining", "adult")


def test_a_string_override_that_yaml_reads_as_a_boolean_stays_a_string(cli_json):
    out = cli_json("preprocess", "--config", CHURN, "name=churn-positive-yes", "data.positive_class=Yes")
    manifest = json.loads((Path(out["cache"]) / "manifest.json").read_text())
    assert manifest["classes"] == ["No", "Yes"]


def test_the_positive_class_defaults_to_the_minority_on_a_users_file(adult, cli_json):
    for recipe in ("churn.yaml", "segments.yaml"):  # the recipes leave the documented default alone
        assert read_recipe(Path("configs/tabular_mining") / recipe)["data"].get("positive_class") is None
    out = cli_json("preprocess", "--config", CHURN, "name=adult-pre", f"data.path={adult / 'adult.csv'}",
                   "data.target=income", "data.na_values=['?']")
    manifest = json.loads((Path(out["cache"]) / "manifest.json").read_text())
    assert manifest["classes"] == ["<=50K", ">50K"]  # '>50K' is the minority: it is the positive class


def test_without_na_values_a_question_mark_in_a_numeric_column_is_named(adult, cli, capsys):
    assert cli("preprocess", "--config", CHURN, "name=adult-nomarkers", f"data.path={adult / 'adult.csv'}",
               "data.target=income") == 2
    err = capsys.readouterr().err
    assert "'age'" in err and "'?'" in err


def test_na_values_are_missing_and_the_log_says_how_many_per_column(adult, cli_json, caplog):
    caplog.set_level(logging.INFO, logger="tabular_mining")
    out = cli_json("preprocess", "--config", CHURN, "name=adult-log", f"data.path={adult / 'adult.csv'}",
                   "data.target=income", "data.na_values=['?']")
    expected = (adult_like(500, 0)[["age", "workclass"]] == "?").sum()
    text = caplog.text
    for column in ("age", "workclass"):
        assert f"column {column!r} has {expected[column]} missing cells" in text
    assert "column 'rownames' looks like a row id" in text  # not silently a feature
    schema = json.loads((Path(out["cache"]) / "feature_schema.json").read_text())
    kinds = {f["name"]: f for f in schema["features"]}
    assert kinds["age"]["kind"] == "numeric" and "?" not in kinds["workclass"]["categories"]


def test_row_id_detection():
    assert looks_like_row_id(pd.Series(np.arange(100)))
    assert not looks_like_row_id(pd.Series(np.arange(100) % 7))  # repeats: a feature
    assert not looks_like_row_id(pd.Series(np.arange(100) + 0.5))  # floats: a measurement


def test_test_size_0_trains_on_everything_and_evaluate_takes_a_file(adult_run, adult, nothing_held_out):
    manifest = json.loads((adult_run / "data_manifest.json").read_text())
    assert manifest["rows"]["test"] == 0 and manifest["rows"]["train"] + manifest["rows"]["valid"] == 500
    nothing_held_out(adult_run, "valid/roc_auc")


def test_decorated_test_labels_are_refused_with_the_label_map_to_use(adult_run, adult, cli, capsys):
    assert cli("evaluate", "--run", adult_run, "--data", adult / "adult_test.csv") == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "'<=50K.' was not seen in training" in err
    assert """data.label_map='{"<=50K.": "<=50K", ">50K.": ">50K"}'""" in err


def test_evaluate_a_separate_file_with_a_label_map(adult_run, adult, cli_json):
    out = cli_json("evaluate", "--run", adult_run, "--data", adult / "adult_test.csv",
                   """data.label_map={"<=50K.": "<=50K", ">50K.": ">50K"}""")
    assert out["data/rows"] == 150 and out["data/roc_auc"] > 0.7
    table = (adult_run / "evaluations" / "adult_test" / "comparison.md").read_text()
    assert "data ROC-AUC" in table and "test" not in table and "150 rows" in table


def test_the_segments_recipe_runs_on_another_table(adult, cli, caplog):
    caplog.set_level(logging.WARNING, logger="tabular_mining")
    assert cli("train", "--config", SEGMENTS, "name=adult-segments", f"data.path={adult / 'adult.csv'}",
               "data.na_values=['?']", "data.id_columns=[rownames]", "model.k_max=3", "model.n_init=1") == 0
    assert "data.drop_columns ['total_charges'] not in the file" in caplog.text
    assert "no column 'churn' (data.target)" in caplog.text
    run = latest_run("tabular_mining", "adult-segments")
    assert json.loads((run / "metrics.json").read_text())["segments/count"] >= 2


def test_the_split_cache_is_keyed_by_how_the_split_was_made():
    data = ClassifyConfig().data
    assert split_cache_dir("churn", data, "dask") != split_cache_dir("churn", data, "local")
    assert split_cache_dir("churn", data, "none") == split_cache_dir("churn", data, "local")
    assert split_cache_dir("churn", TableData(test_size=0.0)) != split_cache_dir("churn", data)


def test_a_headerless_file_is_named_by_column_names_and_the_error_says_so(adult, cli, capsys):
    argv = ["preprocess", "--config", CHURN, "name=adult-headerless", f"data.path={adult / 'adult.data'}",
            "data.target=income", "data.na_values=['?']"]
    assert cli(*argv) == 2
    err = capsys.readouterr().err
    assert "first row looks like data" in err and "data.column_names" in err
    names = "data.column_names=[age,workclass,education,hours_per_week,sex,income]"
    capsys.readouterr()
    assert cli(*argv, names) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["train"] + out["valid"] + out["test"] == 300  # the first row is a row, not a header


def test_segments_with_nothing_held_out(adult, cli, nothing_held_out):
    assert cli("train", "--config", SEGMENTS, "name=adult-segments-all", f"data.path={adult / 'adult.csv'}",
               "data.na_values=['?']", "data.id_columns=[rownames]", "data.test_size=0", "model.k_max=3",
               "model.n_init=1") == 0
    nothing_held_out(latest_run("tabular_mining", "adult-segments-all"), "train/silhouette")
