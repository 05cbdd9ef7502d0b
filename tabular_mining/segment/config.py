"""The typed config of ``task: segment`` (``configs/tabular_mining/segments*.yaml``)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from shared.config import StrictModel
from shared.serving import ServeConfig
from tabular_mining.common.stream import StreamConfig
from tabular_mining.common.table import TableData


class SegmentTable(TableData):
    """The classify data section, except that the target is optional: when present it is kept out
    of the features and its rate is reported per segment."""

    target: str | None = "churn"


class HDBSCANParams(StrictModel):
    min_cluster_size: int = Field(50, ge=2)
    min_samples: int | None = Field(None, ge=1)
    cluster_selection_epsilon: float = Field(0.0, ge=0)


class SegmentModel(StrictModel):
    algorithm: Literal["kmeans", "minibatch_kmeans", "hdbscan"] = "kmeans"
    k: int | None = Field(None, ge=2, description="fixed number of segments; null = choose from k_min..k_max")
    k_min: int = Field(2, ge=2)
    k_max: int = Field(10, ge=2)
    select_by: Literal["silhouette", "davies_bouldin"] = Field(
        "silhouette", description="silhouette: highest wins; davies_bouldin: lowest wins")
    n_init: int = Field(4, ge=1)
    batch_size: int = Field(1024, ge=16, description="minibatch_kmeans only")
    hdbscan: HDBSCANParams = Field(default_factory=HDBSCANParams)
    categorical_weight: float = Field(1.0, gt=0, description="scale of the one-hot columns beside z-scored numerics")

    @model_validator(mode="after")
    def _range(self):
        if self.k_max < self.k_min:
            raise ValueError(f"k_max ({self.k_max}) must be at least k_min ({self.k_min})")
        return self


class SegmentEval(StrictModel):
    silhouette_sample: int = Field(4000, ge=100, description="rows sampled for silhouette (it is quadratic)")
    top_categories: int = Field(2, ge=1, description="most frequent values shown per categorical in profiles")
    plots: bool = True


class SegmentConfig(StrictModel):
    """``task: segment``: customer segments by clustering the classify feature pipeline's output."""

    name: str = "segments"
    task: Literal["segment"] = "segment"
    data: SegmentTable = Field(default_factory=SegmentTable)
    model: SegmentModel = Field(default_factory=SegmentModel)
    eval: SegmentEval = Field(default_factory=SegmentEval)
    serve: ServeConfig = Field(default_factory=ServeConfig)
    stream: StreamConfig = Field(default_factory=StreamConfig)
