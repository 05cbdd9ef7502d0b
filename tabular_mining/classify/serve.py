"""Serving a classify run: ``POST /predict`` with records (feature name → value) → probability,
label and, on request, per-feature contributions (TreeSHAP from XGBoost/LightGBM; exact for the
linear model), in log-odds.

The request schema is built from the run's ``feature_schema.json``: every feature is required
(``null`` means missing, handled as in training), numerics must be numbers, categoricals strings
(an unseen category is treated as missing, as in training). Mistakes get a 422 naming the field.

    python -m tabular_mining serve [--run runs/tabular_mining/churn/latest] [--port 8000]
    curl -s localhost:8000/predict -H 'content-type: application/json' -d @request.json
"""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr, create_model

from shared.runs import load_metrics
from shared.serving import Predictor
from tabular_mining.evaluate import ClassifyRun, load_classify_run
from tabular_mining.features import CATEGORICAL, FeatureSchema, encode_records

MAX_INSTANCES = 10_000


def record_model(schema: FeatureSchema) -> type[BaseModel]:
    """A pydantic model with one required field per feature."""
    fields: dict[str, Any] = {}
    for f in schema.features:
        typ = (StrictStr | StrictInt | bool | None) if f.kind == CATEGORICAL else (StrictFloat | StrictInt | None)
        fields[f.name] = (typ, ...)
    return create_model("Record", __config__=ConfigDict(extra="forbid"), **fields)


class ChurnPredictor(Predictor):
    def __init__(self, loaded: ClassifyRun):
        self.loaded = loaded
        self.schema = loaded.schema
        self.model = loaded.models[loaded.served]
        self.threshold = loaded.cfg.eval.threshold
        self.record = record_model(self.schema)
        self.request_model = create_model(
            "PredictRequest", __config__=ConfigDict(extra="forbid"),
            instances=(list[self.record], Field(min_length=1, max_length=MAX_INSTANCES)),
            contributions=(bool, Field(False, description="add per-feature contributions (log-odds)")),
        )

    def items(self, body) -> list:
        return [(r, body.contributions) for r in body.instances]

    def predict_batch(self, items: list) -> list:
        records = [r.__dict__ for r, _ in items]
        X = encode_records(records, self.schema)
        p = self.model.predict_proba(X)
        out = [{"probability": float(pi),
                "label": self.schema.classes[1] if pi >= self.threshold else self.schema.classes[0]} for pi in p]
        want = [i for i, (_, c) in enumerate(items) if c]
        if want:
            contrib = self.model.contributions(X[want])
            names = self.schema.names
            for row, i in zip(contrib, want):
                out[i]["contributions"] = {n: float(v) for n, v in zip(names, row[:-1])}
                out[i]["contributions"]["(bias)"] = float(row[-1])
        return out

    def respond(self, body, outputs: list) -> dict:
        return {"predictions": outputs, "model": self.loaded.served, "threshold": self.threshold}

    def metadata(self) -> dict:
        return {
            "run_id": self.loaded.path.name,
            "task": "classify",
            "model": self.loaded.served,
            "selected_by": self.loaded.selection["by"],
            "target": self.schema.target,
            "labels": self.schema.classes,
            "threshold": self.threshold,
            "features": [{"name": f.name, "kind": f.kind, **({"categories": f.categories} if f.categories else {})}
                         for f in self.schema.features],
            "metrics": load_metrics(self.loaded.path),
        }

    def example(self) -> dict:
        rec = {}
        for f in self.schema.features:
            rec[f.name] = f.categories[0] if f.kind == CATEGORICAL else (f.median if f.median is not None else 0.0)
        return {"instances": [rec], "contributions": True}


def load_predictor(run) -> ChurnPredictor:
    return ChurnPredictor(load_classify_run(run, only_served=True))
