"""Serving a text classifier: ``POST /predict`` with a list of texts, through the micro-batcher::

    python -m nlp_app serve --run runs/nlp_app/sentiment/latest [serve.backend=onnx-int8]
    curl -s localhost:8000/predict -H 'Content-Type: application/json' \\
         -d '{"instances": ["这本书写得很好，值得一读。", "质量太差了，再也不买了。"]}'
    → {"predictions": [{"label": "pos", "probabilities": {"neg": 0.03, "pos": 0.97}}, ...]}

The model is the one the run serves (``selection.json``: the better of its models on the
validation split), or ``serve.model=bert|baseline``. Limits (enforced by :mod:`shared.serving`,
each a 413 naming its key): ``serve.max_instances`` texts per request, ``serve.max_item_cost``
characters per text, ``serve.max_body_bytes``; a blank text, or one that is not valid Unicode (a
lone surrogate), is a 422 naming its index (``instances.<i>``) and fails that request only.
"""
from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from nlp_app.classify.config import ClassifyConfig
from nlp_app.classify.export import classifier_for
from nlp_app.common.requests import Text
from shared import runs
from shared.serving import Predictor
from shared.serving.predictor import StrictRequest


class TextsRequest(StrictRequest):
    instances: list[Text] = Field(min_length=1, description="texts to classify (not blank)")

    model_config = ConfigDict(json_schema_extra={"examples": [{"instances": ["这本书写得很好，值得一读。"]}]})


class TextPrediction(BaseModel):
    label: str = Field(description="the most probable label")
    probabilities: dict[str, float] = Field(description="every label's probability; they sum to 1")


class TextsResponse(BaseModel):
    predictions: list[TextPrediction] = Field(description="one per text, in order")

    model_config = ConfigDict(json_schema_extra={"examples": [{"predictions": [
        {"label": "pos", "probabilities": {"neg": 0.03, "pos": 0.97}},
        {"label": "neg", "probabilities": {"neg": 0.91, "pos": 0.09}}]}]})


class TextClassifierPredictor(Predictor):
    request_model = TextsRequest
    page = "text-classify"  # the demo page: each text with its probability bars
    response_model = TextsResponse
    cost_unit = "characters"

    def __init__(self, clf, run: Path, cfg: ClassifyConfig):
        self.clf, self.run, self.cfg = clf, run, cfg

    @classmethod
    def from_run(cls, cfg: ClassifyConfig, run: Path) -> TextClassifierPredictor:
        """What ``serve`` runs: the run's classifier on ``serve.backend`` (loaded in the app's lifespan)."""
        return cls(classifier_for(cfg, run), run, cfg)

    def cost(self, text: str) -> float:
        return len(text)

    def predict_batch(self, items: list[str]) -> list[dict]:
        proba = self.clf.predict_proba(items)
        labels = self.clf.labels
        return [{"label": labels[int(p.argmax())], "probabilities": {lab: round(float(v), 6) for lab, v in zip(labels, p)}}
                for p in proba]

    def metadata(self) -> dict:
        metrics = runs.load_metrics(self.run)
        limits = self.cfg.serve
        return {"task": "classify", "run": self.run.name, "recipe": self.cfg.name, "model": self.clf.name,
                "trained": self.cfg.model.to_train(), "backend": self.clf.backend, "labels": list(self.clf.labels),
                "limits": {"max_instances": limits.max_instances, "max_item_characters": limits.max_item_cost},
                "metrics": {k: v for k, v in metrics.items() if k.startswith("test/") and k.count("/") == 1}}

    def example(self) -> dict:
        return {"instances": ["这本书写得很好，值得一读。", "质量太差了，再也不买了。"]}
