"""Regression: the target reader and the split on three-row inputs, and the regress task end to
end through the command line on a generated table with a known linear + nonlinear target
(categoricals, missing cells, an id column): preprocess → train → evaluate → predict → serve."""
import json

import numpy as np
import pandas as pd
import pytest

from shared.errors import UserError
from shared.runs import latest_run
from tabular_mining import load
from tabular_mining.common.table import read_table
from tabular_mining.regress.data import numeric_target, split_rows

QUICK = "configs/tabular_mining/house_prices-quick.yaml"
FAST = ["model.xgboost.n_estimators=80", "model.lightgbm.n_estimators=80", "model.xgboost.learning_rate=0.2",
        "model.lightgbm.learning_rate=0.2", "model.lightgbm.min_child_samples=5", "model.ridge.alpha=1"]
DISTRICT = {"north": 40_000.0, "south": 0.0, "east": 15_000.0, "west": -10_000.0}


def houses(n: int, seed: int) -> pd.DataFrame:
    """Prices = 900·area + 25,000·sin(rooms) + a district effect + noise; 5 % of the areas and
    districts blank (the price still used the true ones), a decoy ``quality`` text column."""
    rng = np.random.default_rng(seed)
    area = rng.uniform(40, 240, n)
    rooms = rng.integers(1, 8, n)
    district = rng.choice(list(DISTRICT), n)
    price = 60_000 + 900 * area + 25_000 * np.sin(rooms) + np.vectorize(DISTRICT.get)(district) \
        + rng.normal(0, 4_000, n)
    df = pd.DataFrame({"house_id": [f"H{seed}-{i:04d}" for i in range(n)], "area": area.round(1), "rooms": rooms,
                       "district": district, "quality": rng.choice(["good", "fair", "poor"], n),
                       "price": price.round(0)})
    df.loc[rng.random(n) < 0.05, "area"] = np.nan
    df.loc[rng.random(n) < 0.05, "district"] = np.nan
    return df


def _args(path, name, *more) -> list[str]:
    return ["--config", QUICK, f"name={name}", f"data.path={path}", "data.target=price",
            "data.id_columns=[house_id]", *FAST, *more]


@pytest.fixture(scope="module")
def files(csv_files):
    return csv_files("houses", {"houses.csv": houses(500, 0),
                                "sold.csv": houses(120, 1).rename(columns={"price": "sold_for"}),
                                "listed.csv": houses(40, 2).drop(columns=["price"])})


@pytest.fixture(scope="module")
def run(files, cli):
    assert cli("train", *_args(files / "houses.csv", "houses-smoke")) == 0
    return latest_run("tabular_mining", "houses-smoke")


def test_numeric_target_reads_numbers_and_names_what_is_not_one():
    assert numeric_target(pd.Series(["1", " 2.5", "-3e2"]), "f.csv", "price").tolist() == [1.0, 2.5, -300.0]
    with pytest.raises(Exception, match=r"f.csv: target column 'price' must be numeric but row 1 holds 'n/a'.*1 "):
        numeric_target(pd.Series(["1", "n/a", "3"]), "f.csv", "price")
    with pytest.raises(Exception, match=r"target column 'price' has 2 missing values"):
        numeric_target(pd.Series([1.0, None, None]), "f.csv", "price")


def test_a_price_column_formatted_for_reading_names_the_plain_number(tmp_path):
    path = tmp_path / "listings.csv"
    path.write_text('sqft,rooms,price\n1557,4,"$198,865"\n1983,5,"$1,228,218"\n900,2,"$99,500"\n')
    with pytest.raises(UserError, match=r"listings.csv: target column 'price' must be numeric but row 0 holds "
                                        r"'\$198,865', not a number \(3 such rows\); it is a formatted number: write "
                                        r"it plain \(198865\) in the file, without currency signs, thousands"):
        numeric_target(read_table(path)["price"], str(path), "price")
    with pytest.raises(UserError, match=r"row 1 holds 'call us', not a number \(1 such rows\)$"):
        numeric_target(pd.Series(["1", "call us"]), "f.csv", "price")  # no hint where there is no number


def test_split_is_random_seeded_and_test_size_0_has_no_test_rows():
    df = pd.DataFrame({"x": range(100)})
    train, valid, test = split_rows(df, 0.2, 0.1, seed=3)
    assert (len(train), len(valid), len(test)) == (70, 10, 20)
    assert split_rows(df, 0.2, 0.1, seed=3)[2].index.tolist() == test.index.tolist()
    assert sorted([*train.x, *valid.x, *test.x]) == list(range(100))
    train, valid, test = split_rows(df, 0, 0.1, seed=3)
    assert (len(train), len(valid), len(test)) == (90, 10, 0)


def test_train_beats_the_mean_and_writes_the_run(run):
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test/r2"] > 0.8
    assert metrics["test/rmse"] < 0.4 * metrics["test/rmse_mean_baseline"]
    selection = json.loads((run / "selection.json").read_text())
    assert set(selection["valid"]) == {"ridge", "xgboost", "lightgbm"} and selection["by"] == "valid/rmse"
    best = min(selection["valid"], key=lambda n: selection["valid"][n]["rmse"])
    assert selection["served"] == best
    for name in ["feature_schema.json", "comparison.md", "predicted_vs_actual.png", "residuals.png", "README.md",
                 "models/ridge/ridge.json", "models/xgboost/xgboost.json", "models/lightgbm/lightgbm.txt"]:
        assert (run / name).exists(), name
    schema = json.loads((run / "feature_schema.json").read_text())
    kinds = {f["name"]: f["kind"] for f in schema["features"]}
    assert kinds == {"area": "numeric", "rooms": "numeric", "district": "categorical", "quality": "categorical"}


def test_evaluate_the_test_split_and_a_file_with_another_target_name(run, files, cli_json):
    before = (run / "metrics.json").read_bytes()
    out = cli_json("evaluate", "--run", run)
    assert out["test/rmse"] == pytest.approx(json.loads(before)["test/rmse"], rel=1e-4)
    out = cli_json("evaluate", "--run", run, "--data", files / "sold.csv", "data.target=sold_for")
    folder = run / "evaluations" / "sold"
    assert out["data/rows"] == 120 and out["data/r2"] > 0.8
    assert all(k.startswith("data/") for k in json.loads((folder / "metrics.json").read_text()))
    assert (folder / "predicted_vs_actual.png").exists() and (folder / "residuals.png").exists()
    assert (run / "metrics.json").read_bytes() == before


def test_predict_echoes_ids_and_serving_answers_the_same(run, files, tmp_path, cli_json):
    out = tmp_path / "priced.csv"
    summary = cli_json("predict", "--run", run, "--input", files / "listed.csv", "--output", out)
    scored = pd.read_csv(out)
    listed = pd.read_csv(files / "listed.csv")
    assert summary["rows"] == 40 and list(scored.columns) == ["house_id", "prediction"]
    assert scored.house_id.tolist() == listed.house_id.tolist()
    model = load(run)
    records = json.loads(listed.drop(columns=["house_id"]).to_json(orient="records"))
    answer = model.predict(records)
    assert answer["model"] == json.loads((run / "selection.json").read_text())["served"]
    assert [p["value"] for p in answer["predictions"]] == pytest.approx(scored.prediction.tolist(), rel=1e-6)


def test_log_target_on_as_the_recipe_has_it_and_off(run, files, cli):
    assert json.loads((run / "models/ridge/model.json").read_text())["log_target"] is True  # house_prices.yaml
    assert cli("train", *_args(files / "houses.csv", "houses-raw", "model.log_target=false",
                               "model.candidates=[ridge,lightgbm]")) == 0
    raw = latest_run("tabular_mining", "houses-raw")
    assert json.loads((raw / "models/ridge/model.json").read_text())["log_target"] is False
    assert json.loads((raw / "metrics.json").read_text())["test/r2"] > 0.8
    record = {"area": 120.0, "rooms": 3, "district": "north", "quality": "good"}
    for trained in (run, raw):  # both answer in the target's units
        assert 150_000 < load(trained).predict([record])["predictions"][0]["value"] < 250_000


def test_a_target_that_is_not_a_number_is_one_line_naming_column_and_row(files, tmp_path, cli, capsys):
    df = houses(60, 3)
    df["price"] = df["price"].astype(object)
    df.loc[7, "price"] = "call us"
    df.to_csv(tmp_path / "bad.csv", index=False)
    assert cli("preprocess", *_args(tmp_path / "bad.csv", "houses-bad")) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "target column 'price' must be numeric but row 7 holds 'call us'" in err
    df.loc[7, "price"] = None
    df.to_csv(tmp_path / "bad.csv", index=False)
    assert cli("preprocess", *_args(tmp_path / "bad.csv", "houses-bad")) == 2
    assert "target column 'price' has 1 missing values" in capsys.readouterr().err


def test_log_target_refuses_values_at_or_below_minus_one(files, tmp_path, cli, capsys):
    df = houses(80, 4)
    df.loc[:5, "price"] = -5.0
    df.to_csv(tmp_path / "neg.csv", index=False)
    assert cli("train", *_args(tmp_path / "neg.csv", "houses-neg", "model.log_target=true", "data.test_size=0.1")) == 2
    assert "model.log_target needs target values above -1" in capsys.readouterr().err


def test_test_size_0_reports_valid_and_evaluate_needs_a_file(files, cli, cli_json, nothing_held_out):
    assert cli("train", *_args(files / "houses.csv", "houses-notest", "data.test_size=0",
                               "model.name=ridge")) == 0
    run = latest_run("tabular_mining", "houses-notest")
    nothing_held_out(run, "valid/rmse")
    assert cli_json("evaluate", "--run", run, "--data", files / "sold.csv", "data.target=sold_for")["data/rows"] == 120


def test_a_record_far_outside_the_training_data_gets_a_value_the_training_prices_had(files, cli):
    """On the log scale a linear model extrapolates exponentially: its answers are clipped to the
    log range of the training targets (saved with the model), never infinite."""
    assert cli("train", *_args(files / "houses.csv", "houses-far", "model.name=ridge", "model.log_target=true")) == 0
    trained = latest_run("tabular_mining", "houses-far")
    low, high = json.loads((trained / "models/ridge/model.json").read_text())["log_range"]
    prices = houses(500, 0)["price"]
    assert low >= np.log1p(prices.min()) - 1e-9 and high <= np.log1p(prices.max()) + 1e-9
    model = load(trained)
    far = [{"area": a, "rooms": 3, "district": "east", "quality": None} for a in (3e38, -3e38)]
    values = [p["value"] for p in model.predict(far)["predictions"]]
    assert values == pytest.approx([np.expm1(high), np.expm1(low)])


def test_the_demo_page_is_the_regress_kind_with_the_record_form(run, served):
    from fastapi.testclient import TestClient

    with TestClient(served("--run", run)["app"]) as c:
        page = c.get("/").text
        config = json.loads(page.split('<script id="page-config" type="application/json">', 1)[1].split("</script>")[0])
        assert config["kind"] == "regress" and set(config["example"]["instances"][0]) == {"area", "rooms", "district",
                                                                                          "quality"}
        assert "KINDS.regress" in page
        meta = c.get("/metadata").json()
        assert meta["target"] == "price" and meta["log_target"] is True and "test/rmse" in meta["metrics"]


@pytest.mark.slow
def test_house_prices_recipe_quality_floor(cli_json):
    """The full recipe on the embedded Ames data (seconds): the served model's test R² and its RMSE
    against predicting the training mean (README_regression.md has the figures: R² 0.916)."""
    out = cli_json("train", "--config", "configs/tabular_mining/house_prices.yaml", "name=house-prices-floor")
    assert out["test/r2"] >= 0.9
    assert out["test/rmse"] <= 0.35 * out["test/rmse_mean_baseline"]
