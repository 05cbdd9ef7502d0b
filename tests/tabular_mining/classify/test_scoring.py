"""The served churn model's scorer: XGBoost through ONNX Runtime only where the converted model
gives the native probabilities (on rows of real data too, not only the check rows it was accepted
on), the native model otherwise; cheap batches run on the event loop, contributions do not."""
import logging

import numpy as np
import pytest

from tabular_mining.classify.evaluate import load_classify_run
from tabular_mining.classify.export import CONVERTERS, MAX_ABS_DIFF
from tabular_mining.classify.scoring import check_rows, served_scorer, split_thresholds
from tabular_mining.classify.serve import ON_LOOP_ROWS, ClassifyPredictor
from tabular_mining.common.features import clean, encode_frame
from tabular_mining.common.table import load_telco

pytest.importorskip("onnxmltools")


@pytest.fixture(scope="module")
def loaded(churn_run):
    return load_classify_run(churn_run)


def test_xgboost_is_scored_through_onnx_runtime_and_agrees_with_the_booster(loaded):
    model, schema = loaded.models["xgboost"], loaded.schema
    score, name = served_scorer(model, schema)
    assert name == "onnxruntime"
    rows = load_telco().sample(300, random_state=5)
    rows.loc[rows.index[:30], "tenure"] = np.nan
    rows.loc[rows.index[30:60], "contract"] = "Ten year"  # unseen: encoded as missing
    real = encode_frame(clean(rows, schema, "rows"), schema)
    boundaries = check_rows(split_thresholds(model.booster, len(schema.features)), schema, seed=11)
    for X in (real, boundaries, real[:1]):
        assert np.max(np.abs(score(X) - model.predict_proba(X))) <= MAX_ABS_DIFF


def test_check_rows_sit_on_the_split_thresholds_and_hold_every_category(loaded):
    model, schema = loaded.models["xgboost"], loaded.schema
    thresholds = split_thresholds(model.booster, len(schema.features))
    X = check_rows(thresholds, schema)
    tenure = schema.names.index("tenure")
    assert len(thresholds[tenure]) > 1
    assert np.isin(thresholds[tenure], X[:, tenure]).mean() > 0.5  # thresholds themselves, not only neighbours
    assert np.isnan(X[:, tenure]).any()
    contract = schema.names.index("contract")
    codes = set(X[~np.isnan(X[:, contract]), contract].astype(int))
    assert codes == set(range(len(schema.features[contract].categories)))


def test_other_models_are_scored_natively(loaded):
    for name in ("lightgbm", "logistic"):
        model = loaded.models[name]
        assert served_scorer(model, loaded.schema) == (model.predict_proba, "native")


def test_an_onnx_model_that_disagrees_is_not_served(loaded, monkeypatch, caplog):
    # the LightGBM model's ONNX in place of the XGBoost one's: a real model, other probabilities
    monkeypatch.setitem(CONVERTERS, "xgboost", lambda model, n: CONVERTERS["lightgbm"](loaded.models["lightgbm"], n))
    model = loaded.models["xgboost"]
    with caplog.at_level(logging.WARNING, logger="tabular_mining.classify.scoring"):
        score, name = served_scorer(model, loaded.schema)
    assert (score, name) == (model.predict_proba, "native")
    assert "differs" in caplog.text


def test_only_batches_without_contributions_run_on_the_event_loop(churn_run):
    predictor = ClassifyPredictor(load_classify_run(churn_run, only_served=True), 0.5)
    body = predictor.request_model.model_validate(predictor.example())
    items = [predictor.prepare(item) for item in predictor.items(body)]
    with_contributions = [(x, True) for x, _ in items]
    without = [(x, False) for x, _ in items]
    assert not predictor.infer_on_loop(with_contributions) and not predictor.infer_on_loop(without + with_contributions)
    assert predictor.infer_on_loop(without) == (predictor.scoring == "onnxruntime")
    assert not predictor.infer_on_loop(without * (ON_LOOP_ROWS + 1))  # a large batch: in the thread
    assert predictor.metadata()["scoring"] == predictor.scoring
