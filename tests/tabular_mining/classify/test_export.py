"""``export``: the run's XGBoost and LightGBM as ONNX, equal to the native probabilities (checked by
the stage and again here on rows with missing values and unseen categories); the logistic model
is named as not exported, in one line."""
import json

import numpy as np
import pytest

from tabular_mining.classify.evaluate import load_classify_run
from tabular_mining.classify.export import onnx_probabilities
from tabular_mining.common.features import clean, encode_frame
from tabular_mining.common.table import load_telco

pytest.importorskip("onnxmltools")


def test_export_writes_onnx_equal_to_the_native_models(churn_run, cli_json):
    out = cli_json("export", "--run", churn_run)
    folder = churn_run / "export"
    assert out["export"] == str(folder)
    meta = json.loads((folder / "export.json").read_text())
    assert set(meta["models"]) == {"xgboost", "lightgbm"}
    assert "logistic" in out["not_exported"] and "\n" not in out["not_exported"]["logistic"]
    loaded = load_classify_run(churn_run)
    rows = load_telco().sample(500, random_state=3)
    rows.loc[rows.index[:40], "tenure"] = np.nan  # missing numerics
    rows.loc[rows.index[40:80], "contract"] = "Ten year"  # a category training never saw
    X = encode_frame(clean(rows, loaded.schema, "rows"), loaded.schema)
    for name in ("xgboost", "lightgbm"):
        onnx = (folder / f"{name}.onnx").read_bytes()
        np.testing.assert_allclose(onnx_probabilities(onnx, X), loaded.models[name].predict_proba(X), atol=1e-5)
        assert meta["models"][name]["max_abs_diff"] < 1e-4
    assert [f["name"] for f in meta["input"]["features"]] == loaded.schema.names
