"""Serving a text classifier: ``POST /predict`` with a list of texts, through the micro-batcher.

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

from fastapi import FastAPI
from pydantic import BaseModel, Field

from nlp_app.config import NlpServeConfig, load_recipe
from nlp_app.inference import load_classifier
from shared import runs
from shared.serving import HTTPError, Predictor, create_app, serve


class TextsRequest(BaseModel):
    instances: list[str] = Field(min_length=1, description="texts to classify")


class TextClassifierPredictor(Predictor):
    request_model = TextsRequest

    def __init__(self, clf, run: Path, cfg: NlpServeConfig):
        self.clf, self.run, self.cfg = clf, run, cfg

    def items(self, body: TextsRequest) -> list[str]:
        texts = body.instances
        if len(texts) > self.cfg.max_texts:
            raise HTTPError(413, f"{len(texts)} texts in one request; the limit is {self.cfg.max_texts} "
                                 "(split the request)")
        for i, text in enumerate(texts):
            if not text.strip():
                raise HTTPError(422, f"instances[{i}] is empty; send non-empty texts")
            if len(text) > self.cfg.max_chars:
                raise HTTPError(422, f"instances[{i}] has {len(text)} characters; the limit is "
                                     f"{self.cfg.max_chars} (texts are truncated to the model's length anyway)")
        return list(texts)

    def predict_batch(self, items: list[str]) -> list[dict]:
        proba = self.clf.predict_proba(items)
        labels = self.clf.labels
        return [{"label": labels[int(p.argmax())], "probabilities": {lab: round(float(v), 6) for lab, v in zip(labels, p)}}
                for p in proba]

    def metadata(self) -> dict:
        metrics = runs.load_metrics(self.run)
        return {"run": self.run.name, "model": runs.load_run_config(self.run)["model"]["name"],
                "backend": self.clf.backend, "labels": list(self.clf.labels),
                "limits": {"max_texts": self.cfg.max_texts, "max_chars": self.cfg.max_chars},
                "metrics": {k: v for k, v in metrics.items() if k.startswith("test/") and k.count("/") == 1}}

    def example(self) -> dict:
        return {"instances": ["这本书写得很好，值得一读。", "质量太差了，再也不买了。"]}


def build_app(run: str | Path, cfg: NlpServeConfig, batch_size: int = 64) -> FastAPI:
    """The FastAPI app serving ``run`` with ``cfg.backend``; the model loads in the lifespan."""
    run = runs.resolve_run(run)

    def load() -> TextClassifierPredictor:
        return TextClassifierPredictor(load_classifier(run, cfg.backend, batch_size, cfg.threads), run, cfg)

    return create_app(load, cfg, title=f"nlp_app: {run.parent.name} ({run.name})")


def serve_stage(args) -> dict:
    recipe = load_recipe(args.config, args.overrides)
    run = args.run or runs.task_dir("nlp_app", recipe.name) / "latest"
    serve(build_app(run, recipe.serve, recipe.eval.batch_size), host=args.host, port=args.port)
    return {}
