"""Serving ``task: classify``: ``POST /predict`` with records (feature name → value) →
probability, label and, on request, per-feature contributions (TreeSHAP from XGBoost/LightGBM;
exact for the linear model), in log-odds. Also the ``stream`` stage, which scores JSON lines with
the same predictor.

The request schema is built from the run's ``feature_schema.json``: every feature is required
(``null`` means missing, handled as in training), numerics must be numbers, categoricals strings
(an unseen category is treated as missing, as in training). Mistakes get a 422 naming the field;
the limits (``serve.max_instances`` …) are the app factory's.

    python -m tabular_mining serve [--run runs/tabular_mining/churn/latest] [--port 8000] [eval.threshold=0.3]
    curl -s localhost:8000/predict -H 'content-type: application/json' -d @request.json
"""
from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, create_model

from shared.runs import load_metrics
from shared.serving import Predictor, StrictRequest
from tabular_mining.classify.config import ClassifyConfig
from tabular_mining.classify.evaluate import ClassifyRun, load_classify_run
from tabular_mining.common.features import describe_features, encode_records, example_record, record_model
from tabular_mining.common.stream_stage import stream_stage


class Prediction(BaseModel):
    probability: float = Field(description="probability of the positive class")
    label: str = Field(description="the positive class at or above the threshold, else the negative one")
    contributions: dict[str, float] | None = Field(None, description="per feature, in log-odds; '(bias)' too")


class ClassifyResponse(BaseModel):
    predictions: list[Prediction]
    model: str
    threshold: float


class ClassifyPredictor(Predictor):
    """The run's served model behind the app factory; ``threshold`` is the config's ``eval.threshold``."""

    response_model = ClassifyResponse
    page = "tabular-classify"  # the demo page: probability bars, contributions as a sorted chart

    def __init__(self, loaded: ClassifyRun, threshold: float):
        self.loaded, self.schema, self.threshold = loaded, loaded.schema, threshold
        self.model = loaded.models[loaded.served]
        self.request_model = create_model(
            "PredictRequest", __base__=StrictRequest,
            instances=(list[record_model(self.schema)], Field(min_length=1)),
            contributions=(bool, Field(False, description="add per-feature contributions (log-odds)")),
        )

    def items(self, body) -> list:
        return [(r, body.contributions) for r in body.instances]

    def predict_batch(self, items: list) -> list:
        X = encode_records([r.__dict__ for r, _ in items], self.schema)
        p = self.model.predict_proba(X)
        classes = self.schema.classes
        out = [{"probability": float(pi), "label": classes[1] if pi >= self.threshold else classes[0]} for pi in p]
        want = [i for i, (_, c) in enumerate(items) if c]
        if want:
            names = self.schema.names
            for row, i in zip(self.model.contributions(X[want]), want):
                out[i]["contributions"] = {n: float(v) for n, v in zip(names, row[:-1])}
                out[i]["contributions"]["(bias)"] = float(row[-1])
        return out

    def respond(self, body, outputs: list) -> dict:
        return {"predictions": outputs, "model": self.loaded.served, "threshold": self.threshold}

    def metadata(self) -> dict:
        return {"run_id": self.loaded.path.name, "task": "classify", "model": self.loaded.served,
                "selected_by": self.loaded.selection["by"], "target": self.schema.target,
                "labels": self.schema.classes, "threshold": self.threshold,
                "features": describe_features(self.schema), "metrics": load_metrics(self.loaded.path)}

    def example(self) -> dict:
        return {"instances": [example_record(self.schema)], "contributions": True}

    @classmethod
    def from_run(cls, cfg: ClassifyConfig, run: Path) -> ClassifyPredictor:
        """What ``serve`` runs: the run's served model at ``cfg.eval.threshold``."""
        return cls(load_classify_run(run, only_served=True), cfg.eval.threshold)


def stream(cfg: ClassifyConfig, run: Path, input: Path | str | None, output: Path | str | None) -> dict | None:
    """The stream stage: JSON records from ``input`` (a file, ``-``/stdin or ``kafka``) scored into
    ``output`` in micro-batches (``stream:`` section), one output line per record."""
    return stream_stage(ClassifyPredictor.from_run(cfg, run), cfg.stream, input, output)
