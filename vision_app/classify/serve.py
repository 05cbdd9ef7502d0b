"""The served classifier: ``POST /predict`` with image uploads (multipart or base64 JSON; limits
and errors in :mod:`vision_app.common.uploads`) answers ``{"predictions": [{"label",
"probability", "top": [{"label", "probability"}, …]}, …]}``, one entry per image in upload order,
computed as ``predict`` computes it (:func:`vision_app.classify.predict.predict_images`)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from vision_app.classify.export import export
from vision_app.classify.model import load_model
from vision_app.classify.predict import predict_images
from vision_app.common.serving import RunPredictor


class LabelProbability(BaseModel):
    label: str
    probability: float = Field(ge=0, le=1)


class ClassPrediction(LabelProbability):
    top: list[LabelProbability] = Field(description="the most likely labels, best first (eval.top_k)")


class ClassifyResponse(BaseModel):
    predictions: list[ClassPrediction] = Field(description="one per image, in upload order")

    model_config = ConfigDict(json_schema_extra={"examples": [{"predictions": [{
        "label": "7", "probability": 0.93,
        "top": [{"label": "7", "probability": 0.93}, {"label": "1", "probability": 0.04}]}]}]})


class ClassifyPredictor(RunPredictor):
    """A classification run on the backend its ``serve:`` section names."""

    response_model = ClassifyResponse
    page = "image-classify"  # the demo page: uploads, then each image with its probability bars

    def __init__(self, cfg, run: Path):
        super().__init__(cfg, run, load_model, export)

    @classmethod
    def from_run(cls, cfg, run: Path) -> ClassifyPredictor:
        """The ``predictor`` stage: ``(cfg, run) -> Predictor``."""
        return cls(cfg, run)

    def predict_batch(self, images: list[np.ndarray]) -> list[dict]:
        k = max(self.cfg.eval.top_k or [1])
        return predict_images(self.runner, images, self.cfg, self.classes, top_k=k)
