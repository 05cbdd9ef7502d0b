"""The table and feature helpers classify and segment share, on three-row inputs."""
import numpy as np
import pandas as pd
import pytest

from shared.errors import UserError
from tabular_mining.classify.data import split_rows
from tabular_mining.common.features import (
    CATEGORICAL,
    NUMERIC,
    FeatureSchema,
    clean,
    encode_frame,
    encode_records,
    example_record,
    infer_schema,
)
from tabular_mining.common.runs import pick_best
from tabular_mining.common.table import TableData, binary_target, check_columns

ROWS = pd.DataFrame({
    "id": [1, 2, 3],
    "tenure": [1, 24, 60],
    "charges": ["29.85", " ", "108.15"],  # text with a blank, as in the IBM CSV
    "contract": ["Month-to-month", "One year", None],
    "churn": ["Yes", "No", "No"],
})


def schema():
    return infer_schema(ROWS, "churn", ["No", "Yes"], id_columns=["id"])


def test_infer_schema_kinds_categories_medians():
    s = schema()
    kinds = {f.name: f.kind for f in s.features}
    assert kinds == {"tenure": NUMERIC, "charges": NUMERIC, "contract": CATEGORICAL}
    contract = s.features[2]
    assert contract.categories == ["Month-to-month", "One year"]
    assert s.features[1].median == pytest.approx((29.85 + 108.15) / 2)


def test_the_example_record_is_typical_and_old_schemas_still_give_one():
    """The most frequent training category (not the alphabetically first: Ames' MS_Zoning 'A_agr'
    made the demo page's example an agricultural duplex), the median of each numeric."""
    rows = pd.DataFrame({"zoning": ["RL", "A_agr", "RL", "RM", None], "area": [1, 2, 3, 4, 100], "y": [1] * 5})
    s = infer_schema(rows, "y", [])
    assert example_record(s) == {"zoning": "RL", "area": 3.0}
    old = s.to_dict()
    for f in old["features"]:
        f.pop("mode")  # a feature_schema.json written before modes were recorded
    assert example_record(FeatureSchema.from_dict(old)) == {"zoning": "A_agr", "area": 3.0}


def test_encode_missing_and_unseen_categories_are_nan():
    s = schema()
    X = encode_frame(clean(ROWS, s, "t"), s)
    assert X.shape == (3, 3)
    assert np.isnan(X[1, 1]) and np.isnan(X[2, 2])
    assert X[0, 2] == 0 and X[1, 2] == 1
    unseen = encode_records([{"tenure": 5, "charges": None, "contract": "Two year"}], s)
    assert np.isnan(unseen[0, 2]) and np.isnan(unseen[0, 1])


def test_records_and_frames_encode_identically():
    s = schema()
    frame = clean(ROWS, s, "t")
    records = [{"tenure": 1, "charges": 29.85, "contract": "Month-to-month"},
               {"tenure": 24, "charges": None, "contract": "One year"},
               {"tenure": 60, "charges": 108.15, "contract": None}]
    np.testing.assert_array_equal(encode_frame(frame, s), encode_records(records, s))


def test_unparseable_number_names_the_column():
    bad = ROWS.assign(charges=["29.85", "12,5", "1"])
    with pytest.raises(UserError, match="t.csv: column 'charges' is numeric but row 1 holds '12,5'"):
        infer_schema(bad, "churn", ["No", "Yes"], id_columns=["id"], numeric=["charges"], source="t.csv")
    # mostly numbers with a typo: still numeric, and the typo is an error rather than a silent category
    typo = pd.DataFrame({"charges": [str(i) for i in range(40)] + ["1O"], "churn": ["No"] * 41})
    with pytest.raises(UserError, match="holds '1O'"):
        infer_schema(typo, "churn", ["No", "Yes"], source="t.csv")


def test_target_validation():
    with pytest.raises(UserError, match="one class"):
        binary_target(pd.Series(["No", "No"]), None, "f.csv", "churn")
    with pytest.raises(UserError, match="3 classes"):
        binary_target(pd.Series(["a", "b", "c"]), None, "f.csv", "y")
    with pytest.raises(UserError, match="positive_class 'Maybe'"):
        binary_target(pd.Series(["Yes", "No"]), "Maybe", "f.csv", "churn")
    assert binary_target(pd.Series(["No", "No", "Yes"]), None, "f", "c") == (["No", "Yes"], "Yes")


def test_missing_column_is_named():
    with pytest.raises(UserError, match="column 'label' \\(data.target\\) is not in the file"):
        check_columns(ROWS, TableData(target="label"), "f.csv")


def test_split_is_stratified_disjoint_and_seeded():
    df = pd.DataFrame({"x": range(200), "y": [0] * 150 + [1] * 50})
    a = split_rows(df, df.y, 0.2, 0.1, seed=1)
    b = split_rows(df, df.y, 0.2, 0.1, seed=1)
    assert [len(p) for p in a] == [140, 20, 40]
    ids = [set(p.x) for p in a]
    assert not (ids[0] & ids[1]) and not (ids[0] & ids[2]) and not (ids[1] & ids[2])
    assert all(p.y.mean() == pytest.approx(0.25, abs=0.03) for p in a)
    assert all(pa.x.tolist() == pb.x.tolist() for pa, pb in zip(a, b))


def test_pick_best_respects_metric_direction():
    scores = {"a": {"roc_auc": 0.8, "log_loss": 0.5}, "b": {"roc_auc": 0.9, "log_loss": 0.6}}
    assert pick_best(scores, "roc_auc") == "b"
    assert pick_best(scores, "log_loss") == "a"
    fits = {"ridge": {"rmse": 9.0, "r2": 0.7}, "xgboost": {"rmse": 7.0, "r2": 0.8}, "lightgbm": {"rmse": 7.0, "r2": 0.8}}
    assert pick_best(fits, "rmse") == "xgboost"  # lower wins; a tie: the first listed
    assert pick_best(fits, "r2") == "xgboost"
