"""Serving ``task: segment``: ``POST /predict`` with records (feature name → value, as for churn) →
the segment of each and its distance to the segment's centre (k-means) or to the nearest
training row (HDBSCAN; segment -1 = noise), plus the segment's size and target rate. Also the
``stream`` stage over the same predictor.

    python -m tabular_mining serve --run runs/tabular_mining/segments/latest
    curl -s localhost:8000/predict -H 'content-type: application/json' -d @record.json
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
from pydantic import Field, create_model

from shared.runs import load_metrics
from shared.serving import Predictor, StrictRequest
from tabular_mining.common.features import describe_features, encode_records, example_record, record_model
from tabular_mining.common.stream_stage import stream_stage
from tabular_mining.segment.config import SegmentConfig
from tabular_mining.segment.model import SegmentRun, load_segment_run


class SegmentPredictor(Predictor):
    """The run's segmenter behind the app factory, with each segment's share and target rate."""

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

    def predict_batch(self, items: list) -> list:
        X = encode_records([r.__dict__ for r in items], self.schema)
        seg, dist = self.loaded.segmenter.assign(self.loaded.space.transform(X))
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
