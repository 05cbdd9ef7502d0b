"""The linear model both supervised table tasks keep beside the boosters (classify's logistic
regression, regress's ridge): weights on the :func:`~tabular_mining.common.features.design_matrix`
(numerics median-imputed, categoricals one-hot) with every column standardised on the training
rows, stored as plain numbers in ``<name>.json`` and applied with numpy, so loading one runs no
code from the file. A task's subclass fits it (scikit-learn) and says what its output means.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from shared.runs import read_json, write_json
from tabular_mining.common.features import FeatureSchema, design_matrix


class StandardisedLinear:
    """``mean`` and ``scale`` standardise the design matrix; ``coef`` ``(inputs,)`` or ``(K, inputs)``,
    ``intercept`` a number or ``(K,)``. ``float64``: the design matrix in float64 (a record far
    outside the training data still gets a finite value) rather than the encoder's own type."""

    name: str  # the model's name, and the stem of its JSON file
    float64 = False

    def __init__(self, schema: FeatureSchema, mean: np.ndarray, scale: np.ndarray, coef: np.ndarray,
                 intercept: float | np.ndarray, info: dict | None = None):
        self.schema, self.mean, self.scale, self.coef, self.intercept = schema, mean, scale, coef, intercept
        self.info = info or {}

    @classmethod
    def design(cls, X: np.ndarray, schema: FeatureSchema) -> np.ndarray:
        Z = design_matrix(X, schema)
        return Z.astype(np.float64) if cls.float64 else Z

    @classmethod
    def standardise_training(cls, X: np.ndarray, schema: FeatureSchema) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(Z, mean, scale)``: the training rows' standardised design matrix and what standardised it
        (a constant column keeps a scale of 1)."""
        Z = cls.design(X, schema)
        mean, scale = Z.mean(axis=0), Z.std(axis=0)
        scale[scale == 0] = 1.0
        return (Z - mean) / scale, mean, scale

    def standardised(self, X: np.ndarray) -> np.ndarray:
        return (self.design(X, self.schema) - self.mean) / self.scale

    def save(self, directory: Path) -> None:
        write_json(directory / f"{self.name}.json", {"mean": self.mean, "scale": self.scale, "coef": self.coef,
                                                     "intercept": self.intercept, "info": self.info})

    @classmethod
    def load(cls, directory: Path, schema: FeatureSchema):
        d = read_json(directory / f"{cls.name}.json")
        intercept = np.array(d["intercept"]) if isinstance(d["intercept"], list) else d["intercept"]
        return cls(schema, np.array(d["mean"]), np.array(d["scale"]), np.array(d["coef"]), intercept, d["info"])
