"""The regressors behind one small interface, saved in safe formats (no pickle).

Each model takes the encoded matrix from :mod:`tabular_mining.common.features` and offers
``predict(X) -> values`` (in the target's own units), ``save(dir)`` and ``load(dir, schema)``.
``model.log_target`` fits every model on ``log1p(y)``; :class:`LogTarget` then gives ``expm1`` of
its output kept inside the log range of the training targets (a linear model extrapolates on the log
scale exponentially: two very large, cheap Ames houses got $2.4M and $1.1M from ridge), so callers
never see the log scale. Early stopping of the trees watches the validation
RMSE on the scale they are fitted on.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol

import numpy as np

from shared.errors import UserError
from shared.runs import read_json
from tabular_mining.common.boosters import (
    LightGBMBooster,
    XGBoostBooster,
    lightgbm_tree_params,
    xgboost_tree_params,
)
from tabular_mining.common.features import FeatureSchema
from tabular_mining.common.linear import StandardisedLinear
from tabular_mining.common.runs import save_model as save_model_dir
from tabular_mining.regress.config import LightGBMParams, RidgeParams, XGBoostParams

log = logging.getLogger(__name__)
LOG_MAX = float(np.log(np.finfo(np.float64).max))  # expm1 above this is infinite


class Regressor(Protocol):
    name: str
    info: dict

    def predict(self, X: np.ndarray) -> np.ndarray: ...
    def save(self, directory: Path) -> None: ...


class RidgeModel(StandardisedLinear):
    """Ridge regression on the standardised design matrix (:mod:`tabular_mining.common.linear`,
    ``ridge.json``), applied in float64 so a record far outside the training data still gets a
    finite value."""

    name = "ridge"
    float64 = True

    @classmethod
    def fit(cls, schema: FeatureSchema, X, y, X_valid, y_valid, params: RidgeParams, seed: int = 0):
        from sklearn.linear_model import Ridge

        Z, mean, scale = cls.standardise_training(X, schema)
        ridge = Ridge(alpha=params.alpha).fit(Z, y)
        return cls(schema, mean, scale, ridge.coef_, float(ridge.intercept_), {"n_inputs": Z.shape[1]})

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.standardised(X) @ self.coef + self.intercept


def xgboost_params(params: XGBoostParams, seed: int) -> dict:
    """The booster parameters for a config section (shared by the single-process and Dask paths)."""
    return {"objective": "reg:squarederror", "eval_metric": "rmse", **xgboost_tree_params(params, seed)}


def lightgbm_params(params: LightGBMParams, seed: int) -> dict:
    """LightGBM parameters for a config section (shared by the single-process and Dask paths)."""
    return {"objective": "regression", "metric": "rmse", **lightgbm_tree_params(params, seed)}


class XGBoostModel(XGBoostBooster):
    """XGBoost (squared error) with native categoricals and early stopping on the validation
    rows; the trees past the best round are cut before saving (JSON on disk)."""

    @classmethod
    def fit(cls, schema: FeatureSchema, X, y, X_valid, y_valid, params: XGBoostParams, seed: int = 0):
        return cls.fit_booster(xgboost_params(params, seed), params, schema, X, y, X_valid, y_valid)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.booster.inplace_predict(X).astype(np.float64)


class LightGBMModel(LightGBMBooster):
    """LightGBM (L2) with native categoricals and early stopping (the text model format on disk)."""

    @classmethod
    def fit(cls, schema: FeatureSchema, X, y, X_valid, y_valid, params: LightGBMParams, seed: int = 0):
        return cls.fit_booster(lightgbm_params(params, seed), params, schema, X, y, X_valid, y_valid)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self.raw_predict(X), dtype=np.float64)


MODELS: dict[str, type] = {"ridge": RidgeModel, "xgboost": XGBoostModel, "lightgbm": LightGBMModel}


class LogTarget:
    """A model fitted on ``log1p(y)``, answering in the target's units: ``expm1`` of its output
    clipped to ``log_range``, the smallest and largest ``log1p`` target of the training rows (so an
    extreme record gets a value the training data had, never an exponential extrapolation or
    infinity)."""

    def __init__(self, inner: Regressor, log_range: tuple[float, float] = (-LOG_MAX, LOG_MAX)):
        self.inner, self.name, self.info = inner, inner.name, inner.info
        self.log_range = (float(log_range[0]), float(min(log_range[1], LOG_MAX)))

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.expm1(np.clip(self.inner.predict(X), *self.log_range))

    def save(self, directory: Path) -> None:
        self.inner.save(directory)


def fit_target(y: np.ndarray, log_target: bool, split: str = "train") -> np.ndarray:
    """What the models are fitted on: ``y``, or ``log1p(y)`` under ``model.log_target``."""
    if not log_target:
        return y
    if (y <= -1).any():
        raise UserError(f"model.log_target needs target values above -1; {int((y <= -1).sum())} rows of the {split} "
                        f"split are not (the smallest is {y.min():g}): set model.log_target=false")
    return np.log1p(y)


def fit_model(name: str, schema: FeatureSchema, X, y, X_valid, y_valid, model_cfg, seed: int = 0) -> Regressor:
    """Train the model called ``name`` with its section of the ``model`` config on the target's own
    scale (``y``, ``y_valid``), on ``log1p`` of it under ``model.log_target``."""
    log_target = model_cfg.log_target
    fitted_on = fit_target(y, log_target)
    model = MODELS[name].fit(schema, X, fitted_on, X_valid, fit_target(y_valid, log_target, "valid"),
                             getattr(model_cfg, name), seed=seed)
    return LogTarget(model, (fitted_on.min(), fitted_on.max())) if log_target else model


def save_model(model: Regressor, directory: Path) -> None:
    """The model and its ``model.json``, which says whether it answers through ``log1p``."""
    log_range = {"log_range": list(model.log_range)} if isinstance(model, LogTarget) else {}
    save_model_dir(model, directory, log_target=isinstance(model, LogTarget), **log_range)


def load_model(directory: Path, schema: FeatureSchema) -> Regressor:
    """Load a saved model directory (its ``model.json`` names the model and the target's scale)."""
    meta = read_json(directory / "model.json")
    model = MODELS[meta["model"]].load(directory, schema)
    if not meta.get("log_target"):
        return model
    return LogTarget(model, tuple(meta["log_range"])) if "log_range" in meta else LogTarget(model)
