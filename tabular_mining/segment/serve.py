"""Serving a segment run: ``POST /predict`` with records (feature name → value, as for churn) →
the segment of each and its distance to the segment's centre (k-means) or to the nearest
training row (HDBSCAN; segment -1 = noise), plus the segment's size and target rate.

    python -m tabular_mining serve --config configs/tabular_mining/segments.yaml [--run DIR]
    curl -s localhost:8000/predict -H 'content-type: application/json' -d @record.json
"""
from __future__ import annotations

import pandas as pd
from pydantic import ConfigDict, Field, create_model

from shared.runs import load_metrics
from shared.serving import Predictor
from tabular_mining.features import CATEGORICAL, encode_records
from tabular_mining.segments_task import load_segment_run
from tabular_mining.serve import MAX_INSTANCES, record_model


class SegmentPredictor(Predictor):
    def __init__(self, run):
        self.loaded = load_segment_run(run)
        self.schema = self.loaded.schema
        self.request_model = create_model(
            "SegmentRequest", __config__=ConfigDict(extra="forbid"),
            instances=(list[record_model(self.schema)], Field(min_length=1, max_length=MAX_INSTANCES)),
        )
        profiles = pd.read_csv(self.loaded.path / "profiles.csv", dtype={"segment": str}).set_index("segment")
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
        return {"run_id": self.loaded.path.name, "task": "segment", "algorithm": self.loaded.cfg.model.algorithm,
                "features": [{"name": f.name, "kind": f.kind, **({"categories": f.categories} if f.categories else {})}
                             for f in self.schema.features],
                "segments": self.summary, "metrics": load_metrics(self.loaded.path)}

    def example(self) -> dict:
        rec = {f.name: f.categories[0] if f.kind == CATEGORICAL else (f.median if f.median is not None else 0.0)
               for f in self.schema.features}
        return {"instances": [rec]}


def load_predictor(run) -> SegmentPredictor:
    return SegmentPredictor(run)
