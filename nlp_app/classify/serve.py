"""Serving a text classifier: ``POST /predict`` with a list of texts, through the micro-batcher::

    python -m nlp_app serve --run runs/nlp_app/sentiment/latest [serve.backend=onnx-int8]
    curl -s localhost:8000/predict -H 'Content-Type: application/json' \\
         -d '{"instances": ["这本书写得很好，值得一读。", "质量太差了，再也不买了。"]}'
    → {"predictions": [{"label": "pos", "probabilities": {"neg": 0.03, "pos": 0.97}}, ...]}

Limits: more than ``serve.max_texts`` texts in one request is a 413, a text longer than
``serve.max_chars`` characters or an empty text a 422 naming its index; the body-size limit
(413) and the queue limit (503) come from :mod:`shared.serving`.
"""
from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

from nlp_app.classify.config import ClassifyConfig
from nlp_app.classify.export import classifier_for
from shared import runs
from shared.serving import HTTPError, Predictor


class TextsRequest(BaseModel):
    instances: list[str] = Field(min_length=1, description="texts to classify")


class TextClassifierPredictor(Predictor):
    request_model = TextsRequest
    page = "text-classify"  # the demo page: each text with its probability bars

    def __init__(self, clf, run: Path, cfg: ClassifyConfig):
        self.clf, self.run, self.cfg = clf, run, cfg

    def items(self, body: TextsRequest) -> list[str]:
        texts, limits = body.instances, self.cfg.serve
        if len(texts) > limits.max_texts:
            raise HTTPError(413, f"{len(texts)} texts in one request; the limit is {limits.max_texts} "
                                 "(split the request)")
        for i, text in enumerate(texts):
            if not text.strip():
                raise HTTPError(422, f"instances[{i}] is empty; send non-empty texts")
            if len(text) > limits.max_chars:
                raise HTTPError(422, f"instances[{i}] has {len(text)} characters; the limit is "
                                     f"{limits.max_chars} (texts are truncated to the model's length anyway)")
        return list(texts)

    def predict_batch(self, items: list[str]) -> list[dict]:
        proba = self.clf.predict_proba(items)
        labels = self.clf.labels
        return [{"label": labels[int(p.argmax())], "probabilities": {lab: round(float(v), 6) for lab, v in zip(labels, p)}}
                for p in proba]

    def metadata(self) -> dict:
        metrics = runs.load_metrics(self.run)
        limits = self.cfg.serve
        return {"task": "classify", "run": self.run.name, "recipe": self.cfg.name, "model": self.cfg.model.name,
                "backend": self.clf.backend, "labels": list(self.clf.labels),
                "limits": {"max_texts": limits.max_texts, "max_chars": limits.max_chars},
                "metrics": {k: v for k, v in metrics.items() if k.startswith("test/") and k.count("/") == 1}}

    def example(self) -> dict:
        return {"instances": ["这本书写得很好，值得一读。", "质量太差了，再也不买了。"]}


def predictor(cfg: ClassifyConfig, run: Path) -> TextClassifierPredictor:
    """What ``serve`` runs: the run's classifier on ``serve.backend`` (loaded in the app's lifespan)."""
    return TextClassifierPredictor(classifier_for(cfg, run), run, cfg)
