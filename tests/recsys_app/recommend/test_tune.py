"""``tune``'s scoring and its guard against the winner's curse: per-case NDCG is what ``evaluate``
computes, and the search's best values replace the recipe's only when the confirmation half of the
users agrees."""
import numpy as np
import pytest

from recsys_app.recommend.config import DataConfig, RecsysConfig
from recsys_app.recommend.data import build_dataset
from recsys_app.recommend.evaluate import evaluate_cases
from recsys_app.recommend.model import build_model
from recsys_app.recommend.tune import (
    case_ndcg,
    confirm,
    confirmation_users,
    next_item_cases,
    tune,
    tuning_split,
)
from shared.config import apply_overrides, validate

from .conftest import make_interactions


@pytest.fixture(scope="module")
def tiny_tuning_split():
    frame, _ = make_interactions(n_users=40, n_items=30)
    frame = frame.rename(columns={"uid": "user", "iid": "item", "ts": "timestamp"}).assign(row=lambda f: range(len(f)))
    return tuning_split(build_dataset(frame, None, DataConfig(source="file", path="x", rating_col=None)), holdout=2)


@pytest.mark.parametrize("model", ["itemknn", "ease"])
def test_case_ndcg_is_what_evaluate_computes(tiny_tuning_split, model):
    ds = tiny_tuning_split
    fitted = build_model(RecsysConfig(), ds.n_items, model)
    fitted.fit(ds, None)
    histories, targets = next_item_cases(ds)
    per_case = case_ndcg(fitted, histories, targets, batch_size=7)
    assert len(per_case) == len(targets) and 0 < per_case.mean() < 1
    assert per_case.mean() == pytest.approx(evaluate_cases(fitted, histories, targets, [10])["ndcg@10"], abs=1e-12)


def test_confirmation_gain_is_the_paired_mean_and_its_standard_error():
    best, recipe = np.array([0.5, 0.2, 0.9, 0.4]), np.array([0.1, 0.2, 0.3, 0.9])
    users = np.array([True, False, True, True])
    gain, se = confirm(best, recipe, users)
    diff = np.array([0.4, 0.6, -0.5])
    assert gain == pytest.approx(diff.mean()) and se == pytest.approx(diff.std(ddof=1) / np.sqrt(3))
    half = confirmation_users(1000, seed=0)
    assert half.sum() == 500 and (confirmation_users(1000, seed=0) == half).all()


def test_the_recipe_is_kept_unless_the_confirmation_half_agrees(tiny_tuning_split, tmp_path, tiny_overrides,
                                                                monkeypatch):
    monkeypatch.chdir(tmp_path)
    base = [*tiny_overrides, "tune.models=[itemknn]", "tune.n_trials=6", "model.itemknn.k=1"]
    strict = validate(RecsysConfig, apply_overrides({}, [*base, "tune.min_gain_se=1e9"]))
    (tmp_path / "strict").mkdir()
    kept = tune(strict, tmp_path / "strict")
    assert kept["best_params"]["itemknn"] == {"k": 1, "shrink": 0.0}  # the recipe's values, whatever won the search
    assert kept["tune/itemknn/adopted"] == 0.0
    loose = validate(RecsysConfig, apply_overrides({}, [*base, "tune.min_gain_se=0"]))
    (tmp_path / "loose").mkdir()
    adopted = tune(loose, tmp_path / "loose")
    gain = adopted["tune/itemknn/confirmation_gain"]
    assert (adopted["tune/itemknn/adopted"] == 1.0) == (gain > 0)  # 1 neighbour is weak: another k does better
    assert adopted["tune/itemknn/adopted"] == 1.0 and adopted["best_params"]["itemknn"]["k"] != 1
