"""``distributed: dask``: XGBoost and LightGBM on a 2-worker LocalCluster (threads, tiny data)
from a CSV glob; the run has the single-process artifacts and evaluate/predict/serve use it."""
import json
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from shared.cli import run_cli
from shared.config import load_config
from shared.errors import UserError
from shared.serving import ServeConfig, create_app
from tabular_mining.__main__ import STAGES
from tabular_mining.config import ClassifyConfig, TableData
from tabular_mining.data import load_telco
from tabular_mining.distributed import read_dask_frame, train_dask
from tabular_mining.serve import load_predictor

pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    root = tmp_path_factory.mktemp("big")
    df = load_telco().sample(900, random_state=0)
    for i in range(3):
        df.iloc[i * 300:(i + 1) * 300].to_csv(root / f"part-{i}.csv", index=False)
    return root


@pytest.fixture(scope="module")
def dask_run(parts):
    cfg = load_config(ClassifyConfig, "configs/tabular_mining/churn-quick.yaml", [
        "name=churn-dask-smoke", "distributed=dask", f"data.path={parts}/part-*.csv", "dask.n_workers=2",
        "dask.processes=false", "model.xgboost.n_estimators=30", "model.lightgbm.n_estimators=30"])
    return train_dask(cfg)


def test_same_artifacts_as_single_process(dask_run):
    run = Path(dask_run["run"])
    for name in ["config.yaml", "metrics.json", "feature_schema.json", "selection.json", "comparison.md", "roc.png",
                 "MODEL_CARD.md", "models/xgboost/xgboost.json", "models/lightgbm/lightgbm.txt"]:
        assert (run / name).exists(), name
    selection = json.loads((run / "selection.json").read_text())
    assert selection["distributed"] == "dask" and set(selection["valid"]) == {"xgboost", "lightgbm"}
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test/roc_auc"] > 0.7  # 900 Telco rows: clearly learned
    manifest = json.loads((run / "data_manifest.json").read_text())
    assert sum(manifest["rows"].values()) == 900


def test_evaluate_predict_and_serve_a_dask_run(dask_run, parts, tmp_path):
    run = dask_run["run"]
    assert run_cli("tabular_mining", STAGES, argv=["evaluate", "--run", run]) == 0
    out = tmp_path / "scored.csv"
    assert run_cli("tabular_mining", STAGES, argv=["predict", "--run", run, "--input", str(parts / "part-0.csv"),
                                                   "--output", str(out)]) == 0
    scored = pd.read_csv(out)
    assert len(scored) == 300 and scored["probability"].between(0, 1).all()
    predictor = load_predictor(run)
    with TestClient(create_app(lambda: predictor, ServeConfig(load_in_background=False))) as c:
        r = c.post("/predict", json=predictor.example())
        assert r.status_code == 200 and 0 <= r.json()["predictions"][0]["probability"] <= 1


def test_globs_and_formats(tmp_path, parts):
    df = pd.read_csv(parts / "part-0.csv")
    df.to_parquet(tmp_path / "a.parquet")
    ddf, _ = read_dask_frame(TableData(path=str(tmp_path / "*.parquet")), ClassifyConfig().dask)
    assert len(ddf.compute()) == 300
    with pytest.raises(UserError, match="matches no file"):
        read_dask_frame(TableData(path=str(tmp_path / "nothing-*.csv")), ClassifyConfig().dask)
    cfg = load_config(ClassifyConfig, "configs/tabular_mining/churn-quick.yaml",
                      ["distributed=dask", "model.name=logistic", "dask.processes=false"])
    with pytest.raises(UserError, match="dask trains xgboost, lightgbm"):
        train_dask(cfg)
