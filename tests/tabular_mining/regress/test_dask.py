"""``distributed: dask`` for ``task: regress``: XGBoost and LightGBM on a 2-worker LocalCluster
(threads, tiny data) from a CSV glob, through the command line, against the single-process run of
the same models: the same artifacts, evaluate/predict/serve unchanged, log_target as in one process."""
import json

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from shared.runs import latest_run

pytest.importorskip("distributed")

QUICK = "configs/tabular_mining/house_prices-quick.yaml"
DASK = ["distributed=dask", "dask.n_workers=2", "dask.processes=false"]
TREES = ["model.name=all", "model.candidates=[xgboost,lightgbm]", "model.xgboost.n_estimators=80",
         "model.lightgbm.n_estimators=80", "model.xgboost.learning_rate=0.2", "model.lightgbm.learning_rate=0.2",
         "model.lightgbm.min_child_samples=5", "data.target=price", "data.id_columns=[house_id]"]


def houses(n: int, seed: int) -> pd.DataFrame:
    """price = 900·area + a district effect + noise; some areas blank."""
    rng = np.random.default_rng(seed)
    area, district = rng.uniform(40, 240, n), rng.choice(["north", "south", "east"], n)
    price = 60_000 + 900 * area + np.select([district == "north", district == "east"], [40_000, 15_000], 0) \
        + rng.normal(0, 4_000, n)
    df = pd.DataFrame({"house_id": [f"H{i:04d}" for i in range(n)], "area": area.round(1), "district": district,
                       "price": price.round(0)})
    df.loc[rng.random(n) < 0.05, "area"] = np.nan
    return df


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    root = tmp_path_factory.mktemp("houses")
    df = houses(600, 0)
    for i in range(3):
        df.iloc[i * 200:(i + 1) * 200].to_csv(root / f"part-{i}.csv", index=False)
    df.to_csv(root / "all.csv", index=False)
    return root


@pytest.fixture(scope="module")
def runs(parts, cli):
    """A Dask run (log_target on) and a single-process run of the same recipe."""
    assert cli("train", "--config", QUICK, "name=houses-dask", *TREES, *DASK, "model.log_target=true",
               f"data.path={parts}/part-*.csv") == 0
    assert cli("train", "--config", QUICK, "name=houses-local", *TREES, "model.log_target=true",
               f"data.path={parts}/all.csv") == 0
    return latest_run("tabular_mining", "houses-dask"), latest_run("tabular_mining", "houses-local")


def _files(run) -> set[str]:
    return {str(f.relative_to(run)) for f in run.rglob("*") if f.is_file()}


def test_dask_regression_writes_the_single_process_artifacts(runs):
    on_dask, local = runs
    assert _files(on_dask) == _files(local)
    selection = json.loads((on_dask / "selection.json").read_text())
    assert selection["distributed"] == "dask" and set(selection["valid"]) == {"xgboost", "lightgbm"}
    assert selection["log_target"] is True
    for name in ("xgboost", "lightgbm"):
        model = json.loads((on_dask / "models" / name / "model.json").read_text())
        assert model["log_target"] is True and len(model["log_range"]) == 2
    metrics, local_metrics = (json.loads((r / "metrics.json").read_text()) for r in runs)
    assert set(metrics) == set(local_metrics)
    assert metrics["test/r2"] > 0.9 and metrics["test/rmse"] < 0.5 * metrics["test/rmse_mean_baseline"], metrics
    manifest = json.loads((on_dask / "data_manifest.json").read_text())
    assert sum(manifest["rows"].values()) == 600 and manifest["split"].startswith("random")
    assert set(manifest["target"]["train"]) == {"mean", "std", "min", "max"}


def test_a_dask_regression_run_is_evaluated_predicted_and_served(runs, parts, tmp_path, cli_json, served):
    on_dask = runs[0]
    assert cli_json("evaluate", "--run", on_dask)["test/r2"] > 0.9
    cli_json("predict", "--run", on_dask, "--input", parts / "part-0.csv", "--output", tmp_path / "scored.csv")
    scored, truth = pd.read_csv(tmp_path / "scored.csv"), pd.read_csv(parts / "part-0.csv")
    assert len(scored) == 200 and np.corrcoef(scored["prediction"], truth["price"])[0, 1] > 0.95
    record = json.loads(truth.drop(columns=["price", "house_id"]).head(1).to_json(orient="records"))[0]
    with TestClient(served("--run", on_dask)["app"]) as c:
        r = c.post("/predict", json={"instances": [record]})
        assert r.status_code == 200 and abs(r.json()["predictions"][0]["value"] - truth["price"][0]) < 30_000


def test_ridge_alone_is_refused_on_dask(parts, cli, capsys):
    assert cli("train", "--config", QUICK, "name=houses-dask-ridge", *DASK, "model.name=ridge", "data.target=price",
               f"data.path={parts}/part-*.csv") == 2
    assert "dask trains xgboost, lightgbm; not ridge" in capsys.readouterr().err


def test_a_text_target_is_named_on_dask(tmp_path, cli, capsys):
    df = houses(60, 1).astype({"price": object})
    df.loc[7, "price"] = "call us"
    df.to_csv(tmp_path / "bad.csv", index=False)
    assert cli("preprocess", "--config", QUICK, "name=houses-dask-bad", *DASK, "data.target=price",
               f"data.path={tmp_path}/bad.csv") == 2
    assert "target column 'price' must be numeric" in capsys.readouterr().err
