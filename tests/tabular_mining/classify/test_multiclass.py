"""``task: classify`` with more than two classes: a generated 4-class CSV with string labels (one
class spelled with trailing spaces in some rows, a test file with a decorated label that
``data.label_map`` merges) through preprocess → train → evaluate → predict → export on the command
line; the penguins recipe on every model type; the served answer for three classes; the errors."""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from shared.runs import latest_run
from tabular_mining.classify.evaluate import load_classify_run
from tabular_mining.classify.predict import score_frame
from tabular_mining.common.features import design_matrix, encode_frame
from tabular_mining.common.table import load_dataset, target_classes

CHURN = "configs/tabular_mining/churn-quick.yaml"
PENGUINS = "configs/tabular_mining/penguins.yaml"
TREES = ["model.xgboost.n_estimators=60", "model.lightgbm.n_estimators=60"]
CLASSES = ["bronze", "gold", "platinum", "silver"]  # sorted, as schema.classes holds them


def grades(n: int, seed: int, decorate: str = "") -> pd.DataFrame:
    """A risk-grade table: four string classes driven by two numerics and a categorical; some
    'silver' labels written 'silver   ' (trailing spaces, as exports pad them); ``decorate`` is
    appended to every 'gold'."""
    rng = np.random.default_rng(seed)
    income = rng.normal(50, 15, n)
    debt = rng.normal(20, 8, n)
    region = rng.choice(["north", "south", "east"], n)
    score = 0.08 * (income - 50) - 0.12 * (debt - 20) + np.where(region == "north", 0.8, 0.0)
    score += rng.normal(0, 0.4, n)
    label = np.select([score < -1.0, score < 0.0, score < 1.0], ["bronze", "silver", "gold"], "platinum")
    df = pd.DataFrame({"customer": np.arange(n), "income": income.round(1), "debt": debt.round(1),
                       "region": region, "grade": label.astype(object)})
    silver = df.index[df.grade == "silver"]
    df.loc[silver[::3], "grade"] = "silver   "
    df.loc[df.grade == "gold", "grade"] = "gold" + decorate
    df.loc[rng.random(n) < 0.03, "debt"] = np.nan
    return df


@pytest.fixture(scope="module")
def grade_files(csv_files):
    return csv_files("grades", {"grades.csv": grades(700, 0), "grades_test.csv": grades(200, 1, decorate=".")})


def grade_args(root: Path, *more: str) -> list[str]:
    return ["--config", CHURN, "name=grades", f"data.path={root / 'grades.csv'}", "data.target=grade",
            "data.id_columns=[customer]", "eval.cv_folds=2", *TREES, *more]


@pytest.fixture(scope="module")
def grade_run(grade_files, cli):
    assert cli("train", *grade_args(grade_files)) == 0
    return latest_run("tabular_mining", "grades")


@pytest.fixture(scope="module")
def penguin_run(cli):
    """XGBoost alone, so the server scores through ONNX Runtime (its K-column output checked)."""
    assert cli("train", "--config", PENGUINS, "name=penguins-smoke", "model.name=xgboost", "eval.cv_folds=0",
               *TREES) == 0
    return latest_run("tabular_mining", "penguins-smoke")


def test_preprocess_sorts_the_classes_and_strips_padded_labels(grade_files, cli_json):
    out = cli_json("preprocess", *grade_args(grade_files))
    manifest = json.loads((Path(out["cache"]) / "manifest.json").read_text())
    assert manifest["classes"] == CLASSES  # 'silver   ' is 'silver'
    assert sum(manifest["class_rows"].values()) == manifest["rows"]["train"]
    assert all(n > 0 for split in manifest["class_rows_by_split"].values() for n in split.values())


def test_train_reports_multiclass_metrics_and_a_confusion_matrix(grade_run):
    metrics = json.loads((grade_run / "metrics.json").read_text())
    assert metrics["test/roc_auc"] > 0.85  # macro one-vs-rest; chance is 0.5
    assert metrics["test/accuracy"] > 0.5 and 0 < metrics["test/log_loss"] < 1.2  # chance: 0.25, log(4)=1.39
    for c in CLASSES:
        assert 0 <= metrics[f"test/{c}/f1"] <= 1 and f"test/{c}/recall" in metrics
    assert "test/macro_f1" in metrics and "cv/xgboost/roc_auc_mean" in metrics
    assert (grade_run / "confusion_matrix.png").exists() and not (grade_run / "roc.png").exists()
    assert "macro F1" in (grade_run / "comparison.md").read_text()
    selection = json.loads((grade_run / "selection.json").read_text())
    assert selection["by"] == "valid/roc_auc" and set(selection["valid"]) == {"logistic", "xgboost", "lightgbm"}
    card = (grade_run / "README.md").read_text()
    assert "4 classes" in card and "most probable class" in card


def test_evaluate_a_file_whose_labels_need_the_label_map(grade_run, grade_files, cli, cli_json, capsys):
    path = grade_files / "grades_test.csv"
    assert cli("evaluate", "--run", grade_run, "--data", path) == 2
    assert "data.label_map" in capsys.readouterr().err  # 'gold.' looks like 'gold'
    out = cli_json("evaluate", "--run", grade_run, "--data", path, """data.label_map={"gold.": "gold"}""")
    assert out["data/rows"] == 200 and out["data/roc_auc"] > 0.85 and out["threshold"] is None
    assert (grade_run / "evaluations" / "grades_test" / "confusion_matrix.png").exists()


def test_predict_gives_the_most_probable_class_and_every_probability(grade_run, grade_files, tmp_path, cli_json):
    src, dst = tmp_path / "in.csv", tmp_path / "out.csv"
    grades(50, 2).drop(columns="grade").to_csv(src, index=False)
    assert cli_json("predict", "--run", grade_run, "--input", src, "--output", dst)["rows"] == 50
    scored = pd.read_csv(dst)
    columns = [f"probability_{c}" for c in CLASSES]
    assert list(scored.columns) == ["customer", "label", *columns]
    np.testing.assert_allclose(scored[columns].sum(axis=1), 1.0, atol=1e-5)
    assert (scored.label == np.asarray(CLASSES)[scored[columns].to_numpy().argmax(axis=1)]).all()


def test_export_writes_onnx_with_a_column_per_class(grade_run, grade_files, cli_json):
    pytest.importorskip("onnxmltools")
    from tabular_mining.classify.export import onnx_probabilities
    from tabular_mining.common.features import clean

    out = cli_json("export", "--run", grade_run)
    meta = json.loads((Path(out["export"]) / "export.json").read_text())
    assert set(meta["models"]) == {"xgboost", "lightgbm"} and meta["output"]["classes"] == CLASSES
    loaded = load_classify_run(grade_run)
    X = encode_frame(clean(grades(100, 3), loaded.schema, "rows"), loaded.schema)
    for name in ("xgboost", "lightgbm"):
        onnx = (Path(out["export"]) / f"{name}.onnx").read_bytes()
        np.testing.assert_allclose(onnx_probabilities(onnx, X, 4), loaded.models[name].predict_proba(X), atol=1e-5)


@pytest.mark.parametrize("model", ["logistic", "xgboost", "lightgbm", "ft_transformer"])
def test_penguins_trains_on_every_model_type(model, cli):
    small = ["model.ft_transformer.d_token=16", "model.ft_transformer.n_blocks=1", "model.ft_transformer.n_heads=2",
             "model.ft_transformer.train.epochs=5", "model.ft_transformer.train.batch_size=32",
             "model.ft_transformer.train.lr=1e-3"]
    name = f"penguins-{model}"
    assert cli("train", "--config", PENGUINS, f"name={name}", f"model.name={model}", "eval.cv_folds=0",
               *TREES, *small) == 0
    run = latest_run("tabular_mining", name)
    metrics = json.loads((run / "metrics.json").read_text())
    floor = 0.8 if model == "ft_transformer" else 0.95  # 5 short epochs of a tiny transformer
    assert metrics["test/roc_auc"] > floor, metrics
    loaded = load_classify_run(run)
    X = load_dataset("palmerpenguins/penguins").head(20)
    p = score_frame(loaded, X, 0.5)
    np.testing.assert_allclose(p[[f"probability_{c}" for c in loaded.schema.classes]].sum(axis=1), 1.0, atol=1e-5)
    contributions = loaded.models[model].contributions(encode_frame(X, loaded.schema))
    assert contributions.shape == (20, len(loaded.schema.features) + 1)


def _penguin_records(n: int) -> list[dict]:
    rows = load_dataset("palmerpenguins/penguins").drop(columns="species").iloc[::7].head(n)
    return [{k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()}
            for r in rows.astype(object).to_dict("records")]


def test_served_answer_for_three_classes(penguin_run, served):
    loaded = load_classify_run(penguin_run, only_served=True)
    records = _penguin_records(12)
    offline = score_frame(loaded, pd.DataFrame(records), 0.5)
    with TestClient(served("--run", penguin_run)["app"]) as c:
        meta = c.get("/metadata").json()
        assert meta["labels"] == ["Adelie", "Chinstrap", "Gentoo"] and meta["threshold"] is None
        assert meta["scoring"] == "onnxruntime"
        r = c.post("/predict", json={"instances": records, "contributions": True})
        assert r.status_code == 200, r.text
        body = r.json()
        doc = c.get("/openapi.json").json()["components"]["schemas"]
    assert body["threshold"] is None
    preds = body["predictions"]
    for pred, (_, row) in zip(preds, offline.iterrows()):
        assert "probability" not in pred and set(pred["probabilities"]) == {"Adelie", "Chinstrap", "Gentoo"}
        assert pred["label"] == max(pred["probabilities"], key=pred["probabilities"].get) == row["label"]
        assert sum(pred["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
        for cls, p in pred["probabilities"].items():
            assert p == pytest.approx(row[f"probability_{cls}"], abs=1e-5)
        assert set(pred["contributions"]) == {*loaded.schema.names, "(bias)"}
    examples = doc["ClassifyResponse"]["examples"]
    assert any("probabilities" in e["predictions"][0] for e in examples)
    assert any("probability" in e["predictions"][0] for e in examples)


def _raw_scores(model, X: np.ndarray, schema) -> np.ndarray:
    """Each class's raw score (the softmax's input) from the library itself."""
    import xgboost as xgb

    if model.name == "xgboost":
        types = ["c" if m else "q" for m in schema.categorical_mask]
        dm = xgb.DMatrix(X, feature_names=schema.names, feature_types=types, enable_categorical=True)
        return model.booster.predict(dm, output_margin=True)
    if model.name == "lightgbm":
        return model.booster.predict(X, num_iteration=model.info.get("trees") or None, raw_score=True)
    return (design_matrix(X, schema) - model.mean) / model.scale @ model.coef.T + model.intercept


@pytest.mark.parametrize("name", ["logistic", "xgboost", "lightgbm"])
def test_contributions_add_up_to_the_predicted_class_raw_score(grade_run, name):
    loaded = load_classify_run(grade_run)
    model = loaded.models[name]
    X = encode_frame(grades(40, 7), loaded.schema)
    predicted = model.predict_proba(X).argmax(axis=1)
    raw = _raw_scores(model, X, loaded.schema)[np.arange(len(X)), predicted]
    np.testing.assert_allclose(model.contributions(X).sum(axis=1), raw, atol=1e-4)


def test_target_classes():
    assert target_classes(pd.Series(["b", "a", "c", "a"]), None, "f", "y") == ["a", "b", "c"]
    assert target_classes(pd.Series(["No", "No", "Yes"]), None, "f", "y") == ["No", "Yes"]  # binary as before


@pytest.mark.parametrize(("overrides", "message"), [
    (["data.positive_class=gold"], "data.positive_class='gold' is for a two-class target, and 'grade' has 4 classes"),
    (["model.select_by=pr_auc"], "model.select_by=pr_auc is for two classes; the target has 4"),
    (["model.name=xgboost", "model.xgboost.scale_pos_weight=balanced"], "model.xgboost.scale_pos_weight=balanced"),
])
def test_multiclass_errors_are_one_line(overrides, message, grade_files, cli, capsys):
    capsys.readouterr()
    assert cli("train", *grade_args(grade_files, "model.name=logistic", *overrides)) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_a_rare_class_is_named_with_its_count(grade_files, tmp_path, cli, capsys):
    df = grades(300, 4)
    df.loc[df.index[:6], "grade"] = "diamond"
    df.to_csv(tmp_path / "rare.csv", index=False)
    assert cli("preprocess", "--config", CHURN, "name=grades-rare", f"data.path={tmp_path / 'rare.csv'}",
               "data.target=grade") == 2
    err = capsys.readouterr().err
    assert "class 'diamond' of 'grade' has 6 rows, fewer than the 10" in err and "data.label_map" in err


def test_too_few_rows_of_a_class_for_the_cv_folds(grade_files, tmp_path, cli, capsys):
    df = grades(300, 5)
    df.loc[df.index[:12], "grade"] = "diamond"
    df.to_csv(tmp_path / "few.csv", index=False)
    assert cli("train", "--config", CHURN, "name=grades-few", f"data.path={tmp_path / 'few.csv'}",
               "data.target=grade", "model.name=logistic", "eval.cv_folds=20") == 2
    assert "class 'diamond' of 'grade' has 12 rows, fewer than eval.cv_folds=20" in capsys.readouterr().err


def test_tune_refuses_a_two_class_metric(grade_files, cli, capsys):
    assert cli("tune", *grade_args(grade_files, "tune.metric=pr_auc", "tune.n_trials=1")) == 2
    assert "tune.metric=pr_auc is for two classes" in capsys.readouterr().err


def test_tune_scores_trials_by_macro_roc_auc(grade_files, cli_json):
    out = cli_json("tune", *grade_args(grade_files, "tune.model=logistic", "tune.n_trials=2", "name=grades-tune"))
    assert 0.85 < out["tune/best_roc_auc"] <= 1


def test_classes_that_look_like_one_label_are_refused_with_the_label_map(tmp_path, cli, cli_json, capsys):
    df = grades(400, 6)
    df.loc[df.index[df.grade == "gold"][::2], "grade"] = "Gold."
    df.to_csv(tmp_path / "twins.csv", index=False)
    argv = ["preprocess", "--config", CHURN, "name=grades-twins", f"data.path={tmp_path / 'twins.csv'}",
            "data.target=grade"]
    assert cli(*argv) == 2
    err = capsys.readouterr().err
    assert """'grade' has 5 classes, some one label spelled differently ('Gold.', 'gold')""" in err
    assert """data.label_map='{"Gold.": "gold"}'""" in err and len(err.strip().splitlines()) == 1
    out = cli_json(*argv, """data.label_map={"Gold.": "gold"}""")
    assert json.loads((Path(out["cache"]) / "manifest.json").read_text())["classes"] == CLASSES
