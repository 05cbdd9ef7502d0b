"""The served segmenter: ``POST /predict`` with image uploads (multipart or base64 JSON; limits and
errors in :mod:`vision_app.common.uploads`) answers ``{"predictions": [{"mask_png_base64",
"width", "height", "fractions": {class: share of pixels}}, …]}``, one entry per image in upload
order. The mask is a palette PNG at the image's own size whose pixel values are class ids,
computed as ``predict`` computes it (:func:`vision_app.segment.predict.predict_images`)."""
from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from vision_app.common.images import encode_png
from vision_app.common.serving import RunPredictor
from vision_app.common.shapes import mask_palette
from vision_app.segment.export import export
from vision_app.segment.model import load_model
from vision_app.segment.predict import predict_images


class MaskPrediction(BaseModel):
    mask_png_base64: str = Field(description="palette PNG at the image's size; pixel values are class ids")
    width: int
    height: int
    fractions: dict[str, float] = Field(description="share of the image's pixels per class")


class SegmentResponse(BaseModel):
    predictions: list[MaskPrediction] = Field(description="one per image, in upload order")

    model_config = ConfigDict(json_schema_extra={"examples": [{"predictions": [{
        "mask_png_base64": "iVBORw0KGgoAAAANSUhEUgAA...", "width": 64, "height": 64,
        "fractions": {"background": 0.81, "circle": 0.19}}]}]})


class SegmentPredictor(RunPredictor):
    """A segmentation run on the backend its ``serve:`` section names."""

    response_model = SegmentResponse
    page = "image-segment"  # the demo page: uploads, then masks over the images, a legend, an opacity slider

    def __init__(self, cfg, run: Path):
        super().__init__(cfg, run, load_model, export)

    @classmethod
    def from_run(cls, cfg, run: Path) -> SegmentPredictor:
        """The ``predictor`` stage: ``(cfg, run) -> Predictor``."""
        return cls(cfg, run)

    def predict_batch(self, images: list[np.ndarray]) -> list[dict]:
        palette = mask_palette()
        out = []
        for r in predict_images(self.runner, images, self.cfg, self.classes):
            h, w = r["mask"].shape
            out.append({"mask_png_base64": base64.b64encode(encode_png(r["mask"], palette=palette)).decode(),
                        "width": w, "height": h, "fractions": r["fractions"]})
        return out
