"""The typed config of ``task: classify`` (``configs/tabular_mining/churn*.yaml``)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from shared.config import StrictModel
from shared.loop_config import LoopConfig
from shared.serving import ServeConfig
from tabular_mining.common.boosters import LightGBMTrees, XGBoostTrees
from tabular_mining.common.dask import DaskConfig
from tabular_mining.common.stream import StreamConfig
from tabular_mining.common.table import SupervisedTableConfig, TableData

ModelName = Literal["logistic", "xgboost", "lightgbm", "ft_transformer"]


class LogisticParams(StrictModel):
    C: float = Field(1.0, gt=0)
    class_weight: Literal["balanced"] | None = None
    max_iter: int = 2000


class XGBoostParams(XGBoostTrees):
    scale_pos_weight: float | Literal["balanced"] | None = None


class LightGBMParams(LightGBMTrees):
    is_unbalance: bool = False


class FTLoopConfig(LoopConfig):
    """The shared loop's section with FT-Transformer defaults, so a partial ``train:`` in a YAML or
    an override like ``model.ft_transformer.train.lr=1e-3`` keeps the rest of them."""

    epochs: int = Field(100, ge=1)
    batch_size: int = Field(256, ge=1)
    lr: float = Field(3e-4, gt=0)
    weight_decay: float = Field(1e-5, ge=0)
    schedule: Literal["linear", "cosine", "constant"] = "constant"
    monitor: str | None = "log_loss"
    monitor_mode: Literal["max", "min"] = "min"
    early_stopping_patience: int | None = Field(10, ge=1)
    progress: bool = False


class FTTransformerParams(StrictModel):
    """FT-Transformer size (the paper's default is d_token 192, 3 blocks; 64 trains in minutes on
    a CPU) and its shared-loop training section."""

    d_token: int = Field(64, ge=8)
    n_blocks: int = Field(3, ge=1)
    n_heads: int = Field(8, ge=1)
    ffn_factor: float = Field(4 / 3, gt=0)
    attention_dropout: float = Field(0.2, ge=0, lt=1)
    ffn_dropout: float = Field(0.1, ge=0, lt=1)
    residual_dropout: float = Field(0.0, ge=0, lt=1)
    train: FTLoopConfig = Field(default_factory=FTLoopConfig)

    @model_validator(mode="after")
    def _heads_divide(self):
        if self.d_token % self.n_heads:
            raise ValueError(f"d_token ({self.d_token}) must be a multiple of n_heads ({self.n_heads})")
        return self


class ClassifyModel(StrictModel):
    name: Literal["all"] | ModelName = Field("all", description="'all' trains every candidate and serves the best")
    candidates: list[ModelName] = Field(default_factory=lambda: ["logistic", "xgboost", "lightgbm"], min_length=1)
    select_by: Literal["roc_auc", "pr_auc", "log_loss", "f1", "accuracy"] = Field(
        "roc_auc", description="validation metric that picks the served model; for more than two classes roc_auc is "
                               "the macro one-vs-rest ROC-AUC and f1 the macro F1 (pr_auc is for two)")
    logistic: LogisticParams = Field(default_factory=LogisticParams)
    xgboost: XGBoostParams = Field(default_factory=XGBoostParams)
    lightgbm: LightGBMParams = Field(default_factory=LightGBMParams)
    ft_transformer: FTTransformerParams = Field(default_factory=FTTransformerParams)
    params_from: str | None = Field(None, description="a tune run directory: its best parameters replace "
                                                      "those of the model it tuned (see tabular_mining.classify.tune)")

    def to_train(self) -> list[str]:
        return list(self.candidates) if self.name == "all" else [self.name]


class ClassifyEval(StrictModel):
    threshold: float = Field(0.5, gt=0, lt=1, description="probability at or above which the label is positive "
                             "(two classes; with more, the label is the most probable class)")
    cv_folds: int = Field(5, ge=0, description="stratified k-fold CV over all rows; 0 = off")
    plots: bool = True


class TuneConfig(StrictModel):
    """The ``tune`` stage: Optuna TPE over one model's parameters, scored by inner k-fold CV on
    the training rows only (validation and test rows are never seen), with median pruning."""

    model: ModelName = "xgboost"
    n_trials: int = Field(30, ge=1, description="the trial budget")
    timeout_s: float | None = Field(None, gt=0, description="stop starting trials after this long")
    cv_folds: int = Field(3, ge=2)
    metric: Literal["roc_auc", "pr_auc", "log_loss"] = Field(
        "roc_auc", description="for more than two classes roc_auc is the macro one-vs-rest ROC-AUC; pr_auc is for two")
    prune: bool = True
    seed: int = 0


class ClassifyConfig(SupervisedTableConfig):
    """``task: classify``: classification of a table, two classes (the churn recipe) or more
    (``penguins.yaml``)."""

    name: str = "churn"
    task: Literal["classify"] = "classify"
    data: TableData = Field(default_factory=TableData)
    model: ClassifyModel = Field(default_factory=ClassifyModel)
    eval: ClassifyEval = Field(default_factory=ClassifyEval)
    serve: ServeConfig = Field(default_factory=ServeConfig)
    stream: StreamConfig = Field(default_factory=StreamConfig)
    tune: TuneConfig = Field(default_factory=TuneConfig)
    distributed: Literal["none", "dask"] = Field(
        "none", description="dask: XGBoost/LightGBM on a Dask cluster, data.path may be a CSV/Parquet glob")
    dask: DaskConfig = Field(default_factory=DaskConfig)
