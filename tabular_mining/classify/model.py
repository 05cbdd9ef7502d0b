"""The classifiers behind one small interface, saved in safe formats (no pickle).

Each model takes the encoded matrix from :mod:`tabular_mining.common.features` and offers
``predict_proba(X)``: for two classes the positive class's probability, shape ``(n,)``; for K > 2
classes an ``(n, K)`` matrix in ``schema.classes`` order. ``contributions(X) -> (n, n_features + 1)``
(last column = bias; TreeSHAP for the boosted trees, exact for the linear model) are in log-odds for
two classes and, for K > 2, those of each row's predicted class (its raw score: the multinomial
logit, the trees' margin). Also ``save(dir)`` and ``load(dir, schema)``. :func:`model_class` maps a config name to its class; the
FT-Transformer's module (and torch) is imported only when that model is asked for.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np

from shared.errors import UserError
from shared.metrics import binary_classification, multiclass_classification
from shared.runs import read_json
from tabular_mining.classify.config import LightGBMParams, LogisticParams, XGBoostParams
from tabular_mining.common.boosters import (
    LightGBMBooster,
    XGBoostBooster,
    lightgbm_tree_params,
    xgboost_tree_params,
)
from tabular_mining.common.features import FeatureSchema
from tabular_mining.common.linear import StandardisedLinear

log = logging.getLogger(__name__)


class Classifier(Protocol):
    name: str
    info: dict

    def predict_proba(self, X: np.ndarray) -> np.ndarray: ...
    def contributions(self, X: np.ndarray) -> np.ndarray: ...
    def save(self, directory: Path) -> None: ...


def n_classes(schema: FeatureSchema) -> int:
    return len(schema.classes)


def _binary_only(schema: FeatureSchema, setting: str, value) -> None:
    """Settings that weight the positive class mean nothing for K > 2 classes."""
    if n_classes(schema) > 2 and value:
        raise UserError(f"model.{setting}={value} weights the positive class of a two-class target; the target has "
                        f"{n_classes(schema)} classes: leave it unset")


def pos_weight(setting, counts: Callable[[], tuple]) -> float:
    """``xgboost.scale_pos_weight`` as a number: ``balanced`` is negatives over positives, from
    ``counts()`` (positive rows, all rows; called only then, by the single-process and Dask paths)."""
    if setting == "balanced":
        n_pos, n = counts()
        return float((n - n_pos) / max(n_pos, 1))
    return float(setting) if setting is not None else 1.0


def xgboost_params(params: XGBoostParams, scale_pos_weight: float, seed: int, classes: int = 2) -> dict:
    """The booster parameters for a config section (shared by the single-process and Dask paths);
    ``multi:softprob`` for ``classes`` > 2."""
    if classes > 2:
        return {"objective": "multi:softprob", "num_class": classes, "eval_metric": "mlogloss",
                **xgboost_tree_params(params, seed)}
    return {"objective": "binary:logistic", "eval_metric": "logloss", **xgboost_tree_params(params, seed),
            "scale_pos_weight": scale_pos_weight}


def lightgbm_params(params: LightGBMParams, seed: int, classes: int = 2) -> dict:
    """LightGBM parameters for a config section (shared by the single-process and Dask paths);
    ``multiclass`` for ``classes`` > 2."""
    if classes > 2:
        return {"objective": "multiclass", "num_class": classes, **lightgbm_tree_params(params, seed)}
    return {"objective": "binary", **lightgbm_tree_params(params, seed), "is_unbalance": params.is_unbalance}


def predicted_class_rows(per_class: np.ndarray, proba: np.ndarray) -> np.ndarray:
    """From ``(n, K, m)`` per-class values, each row's block of its most probable class: ``(n, m)``."""
    return per_class[np.arange(len(per_class)), proba.argmax(axis=1)]


class LogisticModel(StandardisedLinear):
    """Logistic regression on the standardised design matrix (:mod:`tabular_mining.common.linear`,
    ``logistic.json``); multinomial (softmax) for K > 2 classes: ``coef`` is then ``(K, inputs)``,
    ``intercept`` ``(K,)``."""

    name = "logistic"

    def __init__(self, schema: FeatureSchema, mean: np.ndarray, scale: np.ndarray, coef: np.ndarray,
                 intercept: float | np.ndarray, info: dict | None = None):
        super().__init__(schema, mean, scale, coef, intercept, info)
        self._cat = np.array(schema.categorical_mask)
        self._sizes = [len(f.categories) if c else 1 for f, c in zip(schema.features, self._cat)]

    @classmethod
    def fit(cls, schema: FeatureSchema, X, y, X_valid, y_valid, params: LogisticParams, seed: int = 0,
            checkpoints: Path | None = None):
        from sklearn.linear_model import LogisticRegression

        Z, mean, scale = cls.standardise_training(X, schema)
        lr = LogisticRegression(C=params.C, class_weight=params.class_weight, max_iter=params.max_iter)
        lr.fit(Z, y)
        if n_classes(schema) > 2:  # scikit-learn fits the multinomial model for more than two classes
            return cls(schema, mean, scale, lr.coef_, lr.intercept_, {"n_inputs": Z.shape[1]})
        return cls(schema, mean, scale, lr.coef_[0], float(lr.intercept_[0]), {"n_inputs": Z.shape[1]})

    def _logit_parts(self, X: np.ndarray) -> np.ndarray:
        return self.standardised(X) * self.coef

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        if self.coef.ndim == 2:
            from scipy.special import softmax

            return softmax(self.standardised(X) @ self.coef.T + self.intercept, axis=1)
        z = self._logit_parts(X).sum(axis=1) + self.intercept
        with np.errstate(over="ignore"):  # exp(-z) overflows to inf for z << 0, which gives p = 0 as it should
            return 1.0 / (1.0 + np.exp(-z))

    def contributions(self, X: np.ndarray) -> np.ndarray:
        if self.coef.ndim == 2:  # the predicted class's logit
            k = self.predict_proba(X).argmax(axis=1)
            parts = self.standardised(X) * self.coef[k]
            bias = self.intercept[k][:, None]
        else:
            parts, bias = self._logit_parts(X), np.full((len(X), 1), self.intercept)
        out = np.add.reduceat(parts, np.cumsum([0] + self._sizes[:-1]), axis=1)
        return np.hstack([out, bias])


class XGBoostModel(XGBoostBooster):
    """XGBoost with native categoricals and early stopping on the validation split (JSON on disk);
    ``multi:softprob`` for K > 2 classes."""

    @classmethod
    def fit(cls, schema: FeatureSchema, X, y, X_valid, y_valid, params: XGBoostParams, seed: int = 0,
            checkpoints: Path | None = None):
        _binary_only(schema, "xgboost.scale_pos_weight", params.scale_pos_weight)
        pos = pos_weight(params.scale_pos_weight, lambda: ((y == 1).sum(), len(y)))
        return cls.fit_booster(xgboost_params(params, pos, seed, n_classes(schema)),
                               params, schema, X, y, X_valid, y_valid)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return self.booster.inplace_predict(X)

    def contributions(self, X: np.ndarray) -> np.ndarray:
        out = self.booster.predict(self.matrix(X, self.schema), pred_contribs=True)
        return predicted_class_rows(out, self.predict_proba(X)) if out.ndim == 3 else out


class LightGBMModel(LightGBMBooster):
    """LightGBM with native categoricals and early stopping (the text model format on disk);
    ``multiclass`` for K > 2 classes."""

    @classmethod
    def fit(cls, schema: FeatureSchema, X, y, X_valid, y_valid, params: LightGBMParams, seed: int = 0,
            checkpoints: Path | None = None):
        _binary_only(schema, "lightgbm.is_unbalance", params.is_unbalance)
        return cls.fit_booster(lightgbm_params(params, seed, n_classes(schema)), params, schema, X, y, X_valid, y_valid)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return self.raw_predict(X)

    def contributions(self, X: np.ndarray) -> np.ndarray:
        out = self.raw_predict(X, pred_contrib=True)
        k = n_classes(self.schema)
        if k == 2:
            return out
        return predicted_class_rows(out.reshape(len(X), k, -1), self.predict_proba(X))  # one block per class


# the FT-Transformer is not in the table: its module imports torch, which no other model needs
MODELS: dict[str, type] = {"logistic": LogisticModel, "xgboost": XGBoostModel, "lightgbm": LightGBMModel}


def model_class(name: str) -> type:
    """The class of the model called ``name`` in the config."""
    if name == "ft_transformer":
        from tabular_mining.classify.ft_transformer import (
            FTTransformerModel,  # torch loads here, and only here
        )

        return FTTransformerModel
    return MODELS[name]


# model.select_by / tune.metric for K > 2 classes: roc_auc is the macro one-vs-rest ROC-AUC
MULTICLASS_KEYS = {"roc_auc": "roc_auc", "log_loss": "log_loss", "accuracy": "accuracy", "f1": "macro_f1"}


def score_probabilities(y: np.ndarray, proba: np.ndarray, classes: list[str], threshold: float = 0.5
                        ) -> dict[str, float]:
    """The metrics of predicted probabilities: for two classes (``proba`` of the positive class)
    :func:`shared.metrics.binary_classification` at ``threshold``; for K > 2 (``proba`` ``(n, K)``)
    :func:`shared.metrics.multiclass_classification` of the argmax, with the macro one-vs-rest
    ROC-AUC as ``roc_auc`` and per-class ``<class>/precision|recall|f1``."""
    if proba.ndim == 1:
        return binary_classification(y, proba, threshold)
    return multiclass_classification(y, proba, classes, ovr_auc=True)


def metric_key(metric: str, classes: list[str], setting: str = "model.select_by") -> str:
    """The key of ``metric`` in :func:`score_probabilities`' output for these classes (``f1`` is
    ``macro_f1`` for K > 2); a binary-only metric for K > 2 is refused, naming ``setting``."""
    if len(classes) == 2:
        return metric
    if metric not in MULTICLASS_KEYS:
        raise UserError(f"{setting}={metric} is for two classes; the target has {len(classes)}: use one of "
                        f"{', '.join(MULTICLASS_KEYS)} (roc_auc: macro one-vs-rest)")
    return MULTICLASS_KEYS[metric]


def fit_model(name: str, schema: FeatureSchema, X, y, X_valid, y_valid, model_cfg, seed: int = 0,
              checkpoints: Path | None = None) -> Classifier:
    """Train the model called ``name`` with its section of the ``model`` config. ``checkpoints``:
    where a torch model keeps its training checkpoints and resumes from them (the run's
    ``models/<name>/``); ``None`` trains in a temporary folder (CV folds, tuning trials)."""
    params = getattr(model_cfg, name)
    return model_class(name).fit(schema, X, y, X_valid, y_valid, params, seed=seed, checkpoints=checkpoints)


def load_model(directory: Path, schema: FeatureSchema) -> Classifier:
    """Load a saved model directory (its ``model.json`` names the model)."""
    return model_class(read_json(directory / "model.json")["model"]).load(directory, schema)
