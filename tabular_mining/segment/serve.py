"""Serving ``task: segment``: ``POST /predict`` with records (feature name → value, as for churn) →
the segment of each and its distance to the segment's centre (k-means) or to the nearest
training row (HDBSCAN; segment -1 = noise), plus the segment's size and target rate. Also the
``stream`` stage over the same predictor.

    python -m tabular_mining serve --run runs/tabular_mining/segments/latest
    curl -s localhost:8000/predict -H 'content-type: application/json' -d @record.json
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, create_model

from shared.runs import load_metrics
from shared.serving import Predictor, StrictRequest
from tabular_mining.common.features import describe_features, encode_record, example_record, record_model
from tabular_mining.common.stream_stage import stream_stage
from tabular_mining.segment.config import SegmentConfig
from tabular_mining.segment.model import SegmentRun, load_segment_run


class SegmentPrediction(BaseModel):
    segment: int = Field(description="the segment; -1 = noise (HDBSCAN)")
    distance: float = Field(description="to the segment's centre (k-means) or the nearest training row (HDBSCAN), "
                                        "in the clustering space")
    segment_share: float | None = Field(None, description="the segment's share of the training rows")

    model_config = ConfigDict(extra="allow")  # + '<target>_rate' when the run had a target


class SegmentResponse(BaseModel):
    """What ``POST /predict`` answers: one segment per instance, in order."""

    predictions: list[SegmentPrediction]

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "predictions": [{"segment": 0, "distance": 3.0, "segment_share": 0.783, "churn_rate": 0.318}]}]})


class SegmentPredictor(Predictor):
    """The run's segmenter behind the app factory, with each segment's share and target rate.
    ``prepare`` places one record in the clustering space (in float64, so a record far outside the
    training data still gets a finite distance); a number a float32 cannot hold is refused there,
    naming the field, so a batch only holds rows it can assign."""

    response_model = SegmentResponse
    page = "segments"  # the demo page: the record's segment and every segment's share and rate, in tables

    def __init__(self, loaded: SegmentRun, algorithm: str):
        self.loaded, self.schema, self.algorithm = loaded, loaded.schema, algorithm
        self.request_model = create_model("SegmentRequest", __base__=StrictRequest,
                                          instances=(list[record_model(self.schema)], Field(min_length=1)))
        profiles = pd.read_csv(loaded.path / "profiles.csv", dtype={"segment": str}).set_index("segment")
        rate = f"{self.schema.target}_rate" if self.schema.target else None
        self.summary = {seg: {"segment_share": float(r["share"]),
                              **({rate: float(r[rate])} if rate and rate in profiles.columns else {})}
                        for seg, r in profiles.iterrows()}

    def prepare(self, record) -> np.ndarray:
        z = self.loaded.space.transform(encode_record(record.__dict__, self.schema)[None, :], np.float64)[0]
        if not np.isfinite(np.dot(z, z)):  # a guard: a float32 value cannot get this far in float64
            column = self.loaded.space.columns[int(np.nanargmax(np.abs(z)))]
            raise ValueError(f"{column}: {getattr(record, column, None)!r} is too far outside the training "
                             "data to place in a segment")
        return z

    def predict_batch(self, items: list) -> list:
        seg, dist = self.loaded.segmenter.assign(np.vstack(items))
        return [{"segment": int(s), "distance": float(d), **self.summary.get("noise" if s < 0 else str(s), {})}
                for s, d in zip(seg, dist)]

    def metadata(self) -> dict:
        return {"run_id": self.loaded.path.name, "task": "segment", "algorithm": self.algorithm,
                "features": describe_features(self.schema), "segments": self.summary,
                "metrics": load_metrics(self.loaded.path)}

    def example(self) -> dict:
        return {"instances": [example_record(self.schema)]}

    @classmethod
    def from_run(cls, cfg: SegmentConfig, run: Path) -> SegmentPredictor:
        """What ``serve`` runs: the run's segmenter."""
        return cls(load_segment_run(run), cfg.model.algorithm)


def stream(cfg: SegmentConfig, run: Path, input: Path | str | None, output: Path | str | None) -> dict | None:
    """The stream stage: JSON records from ``input`` (a file, ``-``/stdin or ``kafka``) assigned to
    segments into ``output`` in micro-batches (``stream:`` section)."""
    return stream_stage(SegmentPredictor.from_run(cfg, run), cfg.stream, input, output)
