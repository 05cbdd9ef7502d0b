"""Serving ``task: classify``: ``POST /predict`` with records (feature name → value) →
probability, label and, on request, per-feature contributions (TreeSHAP from XGBoost/LightGBM;
exact for the linear model), in log-odds. For K > 2 classes: the most probable class as ``label``
and ``probabilities`` per class; the contributions are those of the predicted class's raw score.
Also the ``stream`` stage, which scores JSON lines with the same predictor.

The request schema is built from the run's ``feature_schema.json``: every feature is required
(``null`` means missing, handled as in training), numerics must be numbers, categoricals strings
(an unseen category is treated as missing, as in training). Mistakes get a 422 naming the field;
the limits (``serve.max_instances`` …) are the app factory's.

    python -m tabular_mining serve [--run runs/tabular_mining/churn/latest] [--port 8000] [eval.threshold=0.3]
    curl -s localhost:8000/predict -H 'content-type: application/json' -d @request.json
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, create_model

from shared.runs import load_metrics
from shared.serving import Predictor, StrictRequest
from tabular_mining.classify.config import ClassifyConfig
from tabular_mining.classify.evaluate import load_classify_run
from tabular_mining.classify.scoring import served_scorer
from tabular_mining.common.features import describe_features, encode_record, example_record, record_model
from tabular_mining.common.runs import TrainedRun
from tabular_mining.common.stream_stage import stream_stage

ON_LOOP_ROWS = 64  # ONNX Runtime on 64 churn rows: ~0.1 ms, about what a thread hand-off costs


class Prediction(BaseModel):
    """Two classes: ``probability`` and ``label``; K > 2 classes: ``label`` and ``probabilities``."""

    probability: float | None = Field(None, description="two classes: probability of the positive class "
                                                        "(absent for K > 2)")
    label: str = Field(description="two classes: the positive class at or above the threshold, else the negative "
                                   "one; K > 2: the most probable class")
    probabilities: dict[str, float] | None = Field(None, description="K > 2 classes: each class's probability "
                                                                     "(absent for two)")
    contributions: dict[str, float] | None = Field(
        None, description="per feature, '(bias)' too: in log-odds for two classes; for K > 2, those of the predicted "
                          "class's raw score (multinomial logit, the trees' class margin)")


class ClassifyResponse(BaseModel):
    """What ``POST /predict`` answers: one prediction per instance, in order."""

    predictions: list[Prediction]
    model: str = Field(description="the served model of the run")
    threshold: float | None = Field(description="eval.threshold: the probability at or above which the label is "
                                                "positive (two classes; null for K > 2)")

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "predictions": [{"probability": 0.6231, "label": "Yes",
                         "contributions": {"tenure": 0.81, "contract": 0.55, "monthly_charges": 0.12,
                                           "(bias)": -1.09}}],
        "model": "lightgbm", "threshold": 0.5}, {
        "predictions": [{"label": "Gentoo", "probabilities": {"Adelie": 0.02, "Chinstrap": 0.01, "Gentoo": 0.97},
                         "contributions": {"flipper_length_mm": 1.9, "bill_depth_mm": 1.2, "island": 0.4,
                                           "(bias)": -0.3}}],
        "model": "xgboost", "threshold": None}]})


class ClassifyPredictor(Predictor):
    """The run's served model behind the app factory; ``threshold`` is the config's ``eval.threshold``.
    ``prepare`` encodes one record (a number a float32 cannot hold is refused there, naming the
    field), so a batch only ever holds rows the model can score. Probabilities come from
    :func:`~tabular_mining.classify.scoring.served_scorer` (ONNX Runtime where it agrees with the
    model), contributions from the model itself."""

    response_model = ClassifyResponse
    page = "tabular-classify"  # the demo page: probability bars, contributions as a sorted chart

    def __init__(self, loaded: TrainedRun, threshold: float):
        self.loaded, self.schema, self.threshold = loaded, loaded.schema, threshold
        self.model = loaded.models[loaded.served]
        self.score, self.scoring = served_scorer(self.model, self.schema)
        self.request_model = create_model(
            "PredictRequest", __base__=StrictRequest,
            instances=(list[record_model(self.schema)], Field(min_length=1)),
            contributions=(bool, Field(False, description="add per-feature contributions (log-odds)")),
        )

    def items(self, body) -> list:
        return [(r, body.contributions) for r in body.instances]

    def prepare(self, item) -> tuple[np.ndarray, bool]:
        record, contributions = item
        return encode_record(record.__dict__, self.schema), contributions

    def predict_batch(self, items: list) -> list:
        X = np.vstack([x for x, _ in items])
        p = self.score(X)
        classes = self.schema.classes
        if p.ndim == 2:
            out = [{"label": classes[int(pi.argmax())], "probabilities": dict(zip(classes, map(float, pi)))}
                   for pi in p]
        else:
            out = [{"probability": float(pi), "label": classes[1] if pi >= self.threshold else classes[0]}
                   for pi in p]
        want = [i for i, (_, c) in enumerate(items) if c]
        if want:
            names = self.schema.names
            for row, i in zip(self.model.contributions(X[want]), want):
                out[i]["contributions"] = {n: float(v) for n, v in zip(names, row[:-1])}
                out[i]["contributions"]["(bias)"] = float(row[-1])
        return out

    def infer_on_loop(self, items: list) -> bool:
        """Probabilities of up to ``ON_LOOP_ROWS`` rows through ONNX Runtime take tens of
        microseconds: on the loop. Contributions (TreeSHAP through the native model) and larger
        batches take milliseconds: in the inference thread."""
        return (self.scoring == "onnxruntime" and len(items) <= ON_LOOP_ROWS
                and not any(contributions for _, contributions in items))

    def respond(self, body, outputs: list) -> dict:
        return {"predictions": outputs, "model": self.loaded.served, "threshold": self._threshold()}

    def _threshold(self) -> float | None:
        return self.threshold if len(self.schema.classes) == 2 else None

    def metadata(self) -> dict:
        return {"run_id": self.loaded.path.name, "task": "classify", "model": self.loaded.served,
                "scoring": self.scoring, "selected_by": self.loaded.selection["by"], "target": self.schema.target,
                "labels": self.schema.classes, "threshold": self._threshold(),
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
