"""Serving ``task: regress``: ``POST /predict`` with records (feature name → value) → the served
model's value for each. Also the ``stream`` stage, which scores JSON lines with the same predictor.

The request schema is built from the run's ``feature_schema.json`` (:func:`record_model`): every
feature is required (``null`` means missing, handled as in training), numerics must be numbers,
categoricals strings (an unseen category is treated as missing, as in training). Mistakes get a
422 naming the field; the limits (``serve.max_instances`` …) are the app factory's.

    python -m tabular_mining serve --run runs/tabular_mining/house_prices/latest
    curl -s localhost:8000/predict -H 'content-type: application/json' -d @house.json
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, create_model

from shared.runs import load_metrics
from shared.serving import Predictor, StrictRequest
from tabular_mining.common.features import describe_features, encode_record, example_record, record_model
from tabular_mining.common.runs import TrainedRun
from tabular_mining.common.stream_stage import stream_stage
from tabular_mining.regress.config import RegressConfig
from tabular_mining.regress.evaluate import load_regress_run


class RegressPrediction(BaseModel):
    value: float = Field(description="the predicted target, in the target's own units")


class RegressResponse(BaseModel):
    """What ``POST /predict`` answers: one value per instance, in order."""

    predictions: list[RegressPrediction]
    model: str = Field(description="the served model of the run")

    model_config = ConfigDict(json_schema_extra={"examples": [{"predictions": [{"value": 181250.5}],
                                                                "model": "lightgbm"}]})


class RegressPredictor(Predictor):
    """The run's served model behind the app factory. ``prepare`` encodes one record (a number a
    float32 cannot hold is refused there, naming the field), so a batch only ever holds rows the
    model can score."""

    response_model = RegressResponse
    page = "regress"  # the demo page: the record as a form, the value, the run's test RMSE/MAE/R²

    def __init__(self, loaded: TrainedRun):
        self.loaded, self.schema = loaded, loaded.schema
        self.model = loaded.models[loaded.served]
        self.request_model = create_model("RegressRequest", __base__=StrictRequest,
                                          instances=(list[record_model(self.schema)], Field(min_length=1)))

    def prepare(self, record) -> np.ndarray:
        return encode_record(record.__dict__, self.schema)

    def predict_batch(self, items: list) -> list:
        return [{"value": float(v)} for v in self.model.predict(np.vstack(items))]

    def respond(self, body, outputs: list) -> dict:
        return {"predictions": outputs, "model": self.loaded.served}

    def metadata(self) -> dict:
        return {"run_id": self.loaded.path.name, "task": "regress", "model": self.loaded.served,
                "selected_by": self.loaded.selection["by"], "target": self.schema.target,
                "log_target": bool(self.loaded.selection.get("log_target")),
                "features": describe_features(self.schema), "metrics": load_metrics(self.loaded.path)}

    def example(self) -> dict:
        return {"instances": [example_record(self.schema)]}

    @classmethod
    def from_run(cls, cfg: RegressConfig, run: Path) -> RegressPredictor:
        """What ``serve`` runs: the run's served model."""
        return cls(load_regress_run(run, only_served=True))


def stream(cfg: RegressConfig, run: Path, input: Path | str | None, output: Path | str | None) -> dict | None:
    """The stream stage: JSON records from ``input`` (a file, ``-``/stdin or ``kafka``) scored into
    ``output`` in micro-batches (``stream:`` section), one output line per record."""
    return stream_stage(RegressPredictor.from_run(cfg, run), cfg.stream, input, output)
