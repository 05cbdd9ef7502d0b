"""Churn end to end on a stratified sample of the embedded Telco data, through the command line:
train (all three models) → evaluate (test split and --data FILE) → predict → serve."""
import json
import threading

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from shared.config import load_config
from shared.serving import ServeConfig, create_app
from tabular_mining.classify.config import ClassifyConfig
from tabular_mining.classify.data import load_splits
from tabular_mining.classify.evaluate import load_classify_run
from tabular_mining.classify.predict import score_frame
from tabular_mining.classify.serve import ClassifyPredictor

QUICK = "configs/tabular_mining/churn-quick.yaml"
SMALL = ["name=churn-smoke", "data.sample=800", "eval.cv_folds=2",
         "model.xgboost.n_estimators=60", "model.lightgbm.n_estimators=60"]


@pytest.fixture(scope="module")
def test_rows(churn_run):
    cfg = load_config(ClassifyConfig, QUICK, SMALL)
    return load_splits(cfg.name, cfg.data).test


def test_run_artifacts_and_quality(churn_run):
    for name in ["config.yaml", "run.json", "metrics.json", "README.md", "feature_schema.json", "selection.json",
                 "comparison.md", "roc.png", "pr.png", "calibration.png", "confusion_matrix.png",
                 "models/xgboost/xgboost.json", "models/lightgbm/lightgbm.txt", "models/logistic/logistic.json"]:
        assert (churn_run / name).exists(), name
    metrics = json.loads((churn_run / "metrics.json").read_text())
    assert metrics["test/roc_auc"] > 0.75  # 800 rows of Telco: well above chance
    assert "cv/xgboost/roc_auc_mean" in metrics and "cv/logistic/roc_auc_std" in metrics
    card = (churn_run / "README.md").read_text()
    assert "## Classification" in card and "Served model" in card and "tabular-classification" in card
    assert json.loads((churn_run / "run.json").read_text())["status"] == "finished"
    assert not list(churn_run.rglob("*.pkl")) and not list(churn_run.rglob("*.pickle"))


def test_evaluate_on_a_user_file_matches_the_test_split(churn_run, test_rows, tmp_path, cli_json):
    path = tmp_path / "labelled.csv"
    test_rows.to_csv(path, index=False)
    out = cli_json("evaluate", "--run", churn_run, "--data", path)
    test_metrics = json.loads((churn_run / "metrics.json").read_text())
    assert out["data/roc_auc"] == pytest.approx(test_metrics["test/roc_auc"], abs=1e-4)
    assert out["data/rows"] == len(test_rows)


def test_evaluate_names_the_label_column_from_an_override(churn_run, test_rows, tmp_path, cli, cli_json, capsys):
    path = tmp_path / "relabelled.csv"
    test_rows.rename(columns={"churn": "left"}).to_csv(path, index=False)
    assert cli("evaluate", "--run", churn_run, "--data", path) == 2
    assert "target column 'churn' is missing" in capsys.readouterr().err
    out = cli_json("evaluate", "--run", churn_run, "--data", path, "data.target=left")
    assert out["data/rows"] == len(test_rows) and 0.5 < out["data/roc_auc"] <= 1


def test_predict_in_chunks_matches_in_memory(churn_run, test_rows, tmp_path, cli_json):
    loaded = load_classify_run(churn_run, only_served=True)
    src, dst = tmp_path / "in.csv", tmp_path / "out.csv"
    test_rows.drop(columns=["churn"]).to_csv(src, index=False)
    assert cli_json("predict", "--run", churn_run, "--input", src, "--output", dst)["rows"] == len(test_rows)
    scored = pd.read_csv(dst)
    np.testing.assert_allclose(scored.probability, score_frame(loaded, test_rows, 0.5).probability, rtol=1e-5)
    parquet = tmp_path / "out.parquet"
    cli_json("predict", "--run", churn_run, "--input", src, "--output", parquet)
    np.testing.assert_allclose(pd.read_parquet(parquet).probability, scored.probability, rtol=1e-6)


def _records(rows: pd.DataFrame) -> list[dict]:
    recs = rows.drop(columns=["churn"]).astype(object).where(rows.notna(), None).to_dict("records")
    return [{k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items() if k != "churn"}
            for r in recs]


def test_served_equals_offline_and_contributions_add_up(churn_run, test_rows, served):
    rows = test_rows.head(25)
    loaded = load_classify_run(churn_run, only_served=True)
    offline = score_frame(loaded, rows, 0.5).probability.to_numpy()
    with TestClient(served("--run", churn_run)["app"]) as c:
        r = c.post("/predict", json={"instances": _records(rows), "contributions": True})
        assert r.status_code == 200, r.text
        preds = r.json()["predictions"]
        assert "ClassifyResponse" in c.get("/openapi.json").json()["components"]["schemas"]
    served_p = np.array([p["probability"] for p in preds])
    np.testing.assert_allclose(served_p, offline, rtol=1e-6)
    logit = np.log(served_p / (1 - served_p))
    contrib = np.array([sum(p["contributions"].values()) for p in preds])
    np.testing.assert_allclose(contrib, logit, atol=1e-3)  # SHAP values sum to the log-odds
    assert {p["label"] for p in preds} <= {"Yes", "No"}


def test_bad_requests_name_the_field_and_server_keeps_serving(churn_run, test_rows, served, monkeypatch):
    good = _records(test_rows.head(1))[0]
    with TestClient(served("--run", churn_run, "serve.max_instances=200")["app"]) as c:
        meta = c.get("/metadata").json()
        assert meta["model"] and "tenure" in [f["name"] for f in meta["features"]]
        missing = {k: v for k, v in good.items() if k != "tenure"}
        r = c.post("/predict", json={"instances": [missing]})
        assert r.status_code == 422 and r.json()["fields"][0]["field"] == "instances.0.tenure"
        r = c.post("/predict", json={"instances": [{**good, "monthly_charges": "lots"}]})
        assert r.status_code == 422 and any(f["field"].startswith("instances.0.monthly_charges")
                                            for f in r.json()["fields"])
        r = c.post("/predict", json={"instances": [{**good, "shoe_size": 42}]})
        assert r.status_code == 422 and r.json()["fields"][0]["field"] == "instances.0.shoe_size"
        assert c.post("/predict", json={"instances": []}).status_code == 422
        assert c.post("/predict", json={"instances": [good] * 300}).status_code == 413  # serve.max_instances
        # an unseen category is handled as at training time (as missing), not an error
        assert c.post("/predict", json={"instances": [{**good, "contract": "Ten year"}]}).status_code == 200
        assert c.post("/predict", json={"instances": [good]}).status_code == 200
    monkeypatch.setenv("MLREF_API_TOKEN", "t0ken")
    with TestClient(served("--run", churn_run)["app"]) as c:
        assert c.post("/predict", json={"instances": [good]}).status_code == 401
        ok = c.post("/predict", json={"instances": [good]}, headers={"Authorization": "Bearer t0ken"})
        assert ok.status_code == 200


def test_overload_answers_503_with_retry_after(churn_run, test_rows):
    good = {"instances": _records(test_rows.head(1))}
    gate = threading.Event()
    predictor = ClassifyPredictor(load_classify_run(churn_run, only_served=True), 0.5)
    real = predictor.predict_batch

    def gated(items):
        gate.wait(10)
        return real(items)

    predictor.predict_batch = gated
    gate.set()  # warm-up passes
    app = create_app(lambda: predictor, ServeConfig(load_in_background=False, max_queue=2, timeout_s=20))
    with TestClient(app) as c:
        gate.clear()
        results = []
        threads = [threading.Thread(target=lambda: results.append(c.post("/predict", json=good))) for _ in range(6)]
        for t in threads:
            t.start()
        for _ in range(500):
            if len(results) >= 3:
                break
            threading.Event().wait(0.01)
        gate.set()
        for t in threads:
            t.join()
        codes = sorted(r.status_code for r in results)
        assert 503 in codes and 200 in codes
        assert all(r.headers.get("retry-after") == "1" for r in results if r.status_code == 503)
        assert c.post("/predict", json=good).status_code == 200


def test_cli_user_errors_are_one_line(tmp_path, cli, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ntask: classify\nmodel:\n  nmae: xgboost\n")
    assert cli("train", "--config", bad) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "model.nmae: unknown key" in err
    assert cli("train", "--config", QUICK, "data.path=/nope.csv") == 2
    assert "data file not found: /nope.csv" in capsys.readouterr().err
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert cli("preprocess", "--config", QUICK, f"data.path={empty}") == 2
    assert "is empty" in capsys.readouterr().err


def test_pos_weight_is_negatives_over_positives_counted_only_when_balanced():
    from tabular_mining.classify.model import pos_weight

    y = np.array([1, 0, 0, 0, 1, 0, 0, 0, 0, 0])
    assert pos_weight("balanced", lambda: ((y == 1).sum(), len(y))) == 4.0
    assert pos_weight("balanced", lambda: (0, 7)) == 7.0  # no positive rows: divided by 1

    def never():
        raise AssertionError("counted")
    assert pos_weight(None, never) == 1.0 and pos_weight(2.5, never) == 2.5
