"""XGBoost and LightGBM as the supervised table tasks (classify, regress) fit them: the config
fields both tasks share, the booster parameters every objective shares, training that stops early
on the validation rows, and the wrappers' save and load (no pickle: ``xgboost.json`` /
``lightgbm.txt`` beside an ``*_info.json``).

A task subclasses :class:`XGBoostBooster` / :class:`LightGBMBooster` with its ``fit`` (its
objective and metric on top of :func:`xgboost_tree_params` / :func:`lightgbm_tree_params`) and
its predictions; a task's config sections subclass :class:`XGBoostTrees` / :class:`LightGBMTrees`
(the defaults here are the churn recipe's; a task may set its own).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import Field

from shared.config import StrictModel
from shared.runs import atomic_path, read_json, write_json
from tabular_mining.common.features import FeatureSchema


class BoostedTrees(StrictModel):
    """What both boosters take: rounds, rate, row and column sampling, L2, early stopping, threads."""

    n_estimators: int = Field(3000, ge=1)
    learning_rate: float = Field(0.02, gt=0)
    subsample: float = Field(0.8, gt=0, le=1)
    colsample_bytree: float = Field(0.7, gt=0, le=1)
    reg_lambda: float = 1.0
    early_stopping_rounds: int = Field(200, ge=1)
    n_jobs: int | None = None


class XGBoostTrees(BoostedTrees):
    max_depth: int = Field(3, ge=1)
    min_child_weight: float = 5.0


class LightGBMTrees(BoostedTrees):
    num_leaves: int = Field(8, ge=2)
    min_child_samples: int = Field(40, ge=1)
    cat_smooth: float = 10.0


def xgboost_feature_types(schema: FeatureSchema) -> list[str]:
    """XGBoost's type of each encoded column: ``c`` (native categorical) or ``q`` (numeric)."""
    return ["c" if c else "q" for c in schema.categorical_mask]


def xgboost_tree_params(params: XGBoostTrees, seed: int) -> dict:
    """XGBoost's parameters for a config section, whatever the objective (native categoricals, one-hot
    splits up to 8 categories)."""
    return {"tree_method": "hist", "eta": params.learning_rate, "max_depth": params.max_depth,
            "min_child_weight": params.min_child_weight, "subsample": params.subsample,
            "colsample_bytree": params.colsample_bytree, "lambda": params.reg_lambda, "max_cat_to_onehot": 8,
            "seed": seed, "nthread": params.n_jobs or 0}


def lightgbm_tree_params(params: LightGBMTrees, seed: int) -> dict:
    """LightGBM's parameters for a config section, whatever the objective (bagging on when
    ``subsample`` < 1)."""
    return {"learning_rate": params.learning_rate, "num_leaves": params.num_leaves,
            "min_child_samples": params.min_child_samples, "bagging_fraction": params.subsample,
            "bagging_freq": 1 if params.subsample < 1 else 0, "feature_fraction": params.colsample_bytree,
            "lambda_l2": params.reg_lambda, "cat_smooth": params.cat_smooth, "seed": seed, "verbose": -1,
            "num_threads": params.n_jobs or 0}


class XGBoostBooster:
    """An XGBoost booster with the run's schema and its ``info`` (``trees``: the rounds kept)."""

    name = "xgboost"

    def __init__(self, booster, schema: FeatureSchema, info: dict | None = None):
        self.booster, self.schema, self.info = booster, schema, info or {}

    @staticmethod
    def matrix(X, schema: FeatureSchema, y=None):
        """The encoded matrix as a DMatrix with the features' names and categorical types."""
        import xgboost as xgb

        return xgb.DMatrix(X, label=y, feature_names=schema.names, feature_types=xgboost_feature_types(schema),
                           enable_categorical=True)

    @classmethod
    def fit_booster(cls, booster_params: dict, params: BoostedTrees, schema: FeatureSchema, X, y, X_valid, y_valid):
        """Train with ``booster_params``, stopping early on the validation rows; the trees past the
        best round are cut, so the saved and the served model agree."""
        import xgboost as xgb

        booster = xgb.train(
            booster_params, cls.matrix(X, schema, y), num_boost_round=params.n_estimators,
            evals=[(cls.matrix(X_valid, schema, y_valid), "valid")],
            early_stopping_rounds=params.early_stopping_rounds, verbose_eval=False,
        )
        booster = booster[: booster.best_iteration + 1]
        return cls(booster, schema, {"trees": booster.num_boosted_rounds()})

    def save(self, directory: Path) -> None:
        with atomic_path(directory / "xgboost.json") as tmp:
            self.booster.save_model(tmp)
        write_json(directory / "xgboost_info.json", self.info)

    @classmethod
    def load(cls, directory: Path, schema: FeatureSchema):
        import xgboost as xgb

        booster = xgb.Booster()
        booster.load_model(directory / "xgboost.json")
        return cls(booster, schema, read_json(directory / "xgboost_info.json"))


class LightGBMBooster:
    """A LightGBM booster with the run's schema and its ``info`` (``trees``: the best iteration)."""

    name = "lightgbm"

    def __init__(self, booster, schema: FeatureSchema, info: dict | None = None):
        self.booster, self.schema, self.info = booster, schema, info or {}

    @classmethod
    def fit_booster(cls, booster_params: dict, params: BoostedTrees, schema: FeatureSchema, X, y, X_valid, y_valid):
        """Train with ``booster_params`` and native categoricals, stopping early on the validation rows."""
        import lightgbm as lgb

        cats = [j for j, c in enumerate(schema.categorical_mask) if c]
        train = lgb.Dataset(X, y, feature_name=schema.names, categorical_feature=cats, free_raw_data=False)
        valid = lgb.Dataset(X_valid, y_valid, reference=train)
        booster = lgb.train(booster_params, train, num_boost_round=params.n_estimators, valid_sets=[valid],
                            callbacks=[lgb.early_stopping(params.early_stopping_rounds, verbose=False)])
        return cls(booster, schema, {"trees": booster.best_iteration})

    def raw_predict(self, X: np.ndarray, **kwargs) -> np.ndarray:
        """The booster's output with the kept trees (``pred_contrib=True`` and the like pass through)."""
        return self.booster.predict(X, num_iteration=self.info.get("trees") or None, **kwargs)

    def save(self, directory: Path) -> None:
        with atomic_path(directory / "lightgbm.txt") as tmp:
            self.booster.save_model(str(tmp), num_iteration=self.info.get("trees") or None)
        write_json(directory / "lightgbm_info.json", self.info)

    @classmethod
    def load(cls, directory: Path, schema: FeatureSchema):
        import lightgbm as lgb

        return cls(lgb.Booster(model_file=str(directory / "lightgbm.txt")), schema,
                   read_json(directory / "lightgbm_info.json"))
