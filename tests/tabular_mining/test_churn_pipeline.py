"""Churn end to end on a stratified sample of the embedded Telco data:
preprocess → train (all three models) → evaluate (test split and --data FILE) → predict → serve."""
import json
import threading

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from shared.cli import run_cli
from shared.config import load_config
from shared.serving import ServeConfig, create_app
from tabular_mining.__main__ import STAGES
from tabular_mining.config import ClassifyConfig
from tabular_mining.evaluate import evaluate_run, load_classify_run
from tabular_mining.predict import predict_file, score_frame
from tabular_mining.preprocess import load_splits
from tabular_mining.serve import load_predictor
from tabular_mining.train import train

QUICK = "configs/tabular_mining/churn-quick.yaml"
SMALL = ["name=churn-smoke", "data.sample=800", "eval.cv_folds=2",
         "model.xgboost.n_estimators=60", "model.lightgbm.n_estimators=60"]


@pytest.fixture(scope="module")
def run():
    cfg = load_config(ClassifyConfig, QUICK, SMALL)
    summary = train(cfg)
    assert summary["served_model"] in {"logistic", "xgboost", "lightgbm"}
    return summary["run"]


@pytest.fixture(scope="module")
def test_rows(run):
    cfg = load_config(ClassifyConfig, QUICK, SMALL)
    return load_splits(cfg.name, cfg.data).test


def test_run_artifacts_and_quality(run):
    from pathlib import Path

    run = Path(run)
    for name in ["config.yaml", "metrics.json", "feature_schema.json", "selection.json", "comparison.md",
                 "roc.png", "pr.png", "calibration.png", "confusion_matrix.png", "MODEL_CARD.md",
                 "models/xgboost/xgboost.json", "models/lightgbm/lightgbm.txt", "models/logistic/logistic.json"]:
        assert (run / name).exists(), name
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test/roc_auc"] > 0.75  # 800 rows of Telco: well above chance
    assert "cv/xgboost/roc_auc_mean" in metrics and "cv/logistic/roc_auc_std" in metrics
    assert not list(run.rglob("*.pkl")) and not list(run.rglob("*.pickle"))


def test_evaluate_on_a_user_file(run, test_rows, tmp_path):
    path = tmp_path / "labelled.csv"
    test_rows.to_csv(path, index=False)
    out = evaluate_run(run, data=str(path))
    assert out["data/roc_auc"] == pytest.approx(json.loads(open(f"{run}/metrics.json").read())["test/roc_auc"],
                                                abs=1e-4)


def test_predict_file_in_chunks_matches_in_memory(run, test_rows, tmp_path):
    loaded = load_classify_run(run, only_served=True)
    src, dst = tmp_path / "in.csv", tmp_path / "out.csv"
    test_rows.drop(columns=["churn"]).to_csv(src, index=False)
    assert predict_file(loaded, str(src), str(dst), chunk_rows=37)["rows"] == len(test_rows)
    scored = pd.read_csv(dst)
    np.testing.assert_allclose(scored.probability, score_frame(loaded, test_rows).probability, rtol=1e-5)


def _client(run, **serve):
    app = create_app(lambda: load_predictor(run), ServeConfig(load_in_background=False, **serve))
    return TestClient(app)


def _records(rows: pd.DataFrame) -> list[dict]:
    recs = rows.drop(columns=["churn"]).astype(object).where(rows.notna(), None).to_dict("records")
    return [{k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items() if k != "churn"}
            for r in recs]


def test_served_equals_offline_and_contributions_add_up(run, test_rows):
    rows = test_rows.head(25)
    loaded = load_classify_run(run, only_served=True)
    offline = score_frame(loaded, rows).probability.to_numpy()
    with _client(run) as c:
        r = c.post("/predict", json={"instances": _records(rows), "contributions": True})
        assert r.status_code == 200, r.text
        preds = r.json()["predictions"]
    served = np.array([p["probability"] for p in preds])
    np.testing.assert_allclose(served, offline, rtol=1e-6)
    logit = np.log(served / (1 - served))
    contrib = np.array([sum(p["contributions"].values()) for p in preds])
    np.testing.assert_allclose(contrib, logit, atol=1e-3)  # SHAP values sum to the log-odds
    assert {p["label"] for p in preds} <= {"Yes", "No"}


def test_bad_requests_name_the_field_and_server_keeps_serving(run, test_rows, monkeypatch):
    good = _records(test_rows.head(1))[0]
    with _client(run, max_body_bytes=50_000) as c:
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
        assert c.post("/predict", json={"instances": [good] * 300}).status_code == 413
        # an unseen category is handled as at training time (as missing), not an error
        r = c.post("/predict", json={"instances": [{**good, "contract": "Ten year"}]})
        assert r.status_code == 200
        assert c.post("/predict", json={"instances": [good]}).status_code == 200
        monkeypatch.setenv("MLREF_API_TOKEN", "t0ken")
        assert c.post("/predict", json={"instances": [good]}).status_code == 401
        ok = c.post("/predict", json={"instances": [good]}, headers={"Authorization": "Bearer t0ken"})
        assert ok.status_code == 200


def test_overload_answers_503_with_retry_after(run, test_rows):
    good = {"instances": _records(test_rows.head(1))}
    gate = threading.Event()
    predictor = load_predictor(run)
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


def test_cli_user_errors_are_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ntask: classify\nmodel:\n  nmae: xgboost\n")
    assert run_cli("tabular_mining", STAGES, argv=["train", "--config", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "model.nmae: unknown key" in err
    assert run_cli("tabular_mining", STAGES, argv=["train", "--config", QUICK, "data.path=/nope.csv"]) == 2
    assert "data file not found: /nope.csv" in capsys.readouterr().err
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert run_cli("tabular_mining", STAGES, argv=["preprocess", "--config", QUICK, f"data.path={empty}"]) == 2
    assert "is empty" in capsys.readouterr().err
