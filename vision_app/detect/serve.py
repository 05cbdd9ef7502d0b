"""Serving a detection run: ``POST /predict`` with image uploads → boxes, labels and scores.

::

    curl -F file=@street.jpg -F score_threshold=0.4 -F max_detections=20 -F annotated=true \\
         http://127.0.0.1:8000/predict
    curl -H 'Content-Type: application/json' http://127.0.0.1:8000/predict \\
         -d '{"instances": [{"image_base64": "..."}], "score_threshold": 0.4}'

Answer: ``{"predictions": [{"width", "height", "detections": [{"box": [x1, y1, x2, y2], "label",
"score"}, …], "annotated_png_base64"?}, …]}``, one entry per image in upload order, boxes in the
image's own pixels. ``score_threshold`` (0-1, default 0.3) and ``max_detections`` (1-1000, at
most the model's ``max_detections``) are bounded (422 outside); uploads have the same limits and
errors as every vision endpoint (:mod:`vision_app.common.uploads`).
"""
from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from shared.config import to_dict
from shared.runs import cache_dir, load_metrics, read_json
from shared.serving import StrictRequest
from vision_app.common.images import encode_png
from vision_app.common.serving import image_limits
from vision_app.common.uploads import ImagesRequest, ImageUploadPredictor, Upload, UploadedImages
from vision_app.detect.config import DetectConfig
from vision_app.detect.data import APP
from vision_app.detect.evaluate import draw_detections
from vision_app.detect.predict import Detector, as_json


class DetectOptions(StrictRequest):
    """The request's options (JSON keys beside ``instances``, or a form's text fields)."""

    score_threshold: float = Field(0.3, ge=0, le=1, description="drop detections scoring below this")
    max_detections: int = Field(100, ge=1, le=1000, description="keep at most this many per image")
    annotated: bool = Field(False, description="also return the image with the boxes drawn, as PNG base64")


class DetectRequest(ImagesRequest, DetectOptions):
    pass


class DetectUploads(UploadedImages, DetectOptions):
    pass


class Detection(BaseModel):
    box: list[float] = Field(description="x1, y1, x2, y2 in the image's own pixels", min_length=4, max_length=4)
    label: str
    score: float = Field(ge=0, le=1)


class ImageDetections(BaseModel):
    width: int
    height: int
    detections: list[Detection] = Field(description="best first")
    annotated_png_base64: str | None = Field(None, description="the image with the boxes drawn (annotated=true)")


class DetectResponse(BaseModel):
    predictions: list[ImageDetections] = Field(description="one per image, in upload order")

    model_config = ConfigDict(json_schema_extra={"examples": [{"predictions": [{
        "width": 640, "height": 480,
        "detections": [{"box": [12.5, 40.0, 200.1, 310.7], "label": "raccoon", "score": 0.91}]}]}]})


class DetectPredictor(ImageUploadPredictor):
    """A detection run on the backend its ``serve:`` section names (:class:`Detector`, as ``predict``)."""

    request_model = DetectRequest
    uploads_model = DetectUploads
    response_model = DetectResponse
    page = "image-detect"  # the demo page: uploads, then boxes with labels and scores drawn over the images

    def __init__(self, cfg: DetectConfig, run: Path):
        super().__init__(cfg.serve.limits())
        self.cfg, self.run = cfg, Path(run)
        self.detector = Detector.for_run(cfg, self.run)

    @classmethod
    def from_run(cls, cfg: DetectConfig, run: Path) -> DetectPredictor:
        """The ``predictor`` stage: ``(cfg, run) -> Predictor``."""
        return cls(cfg, run)

    def form_options(self, fields: dict[str, str]) -> dict:
        """A form's text fields as :class:`DetectOptions` (``-F score_threshold=0.4``): read from
        text, so not strictly typed as JSON is; any other field name is a 422 naming it."""
        return DetectOptions.model_validate(fields, strict=False).model_dump()

    def items(self, body: BaseModel) -> list[tuple[Upload, DetectOptions]]:
        """Each upload with the request's options (a batch may mix requests with different ones)."""
        options = DetectOptions(**{k: getattr(body, k) for k in DetectOptions.model_fields})
        return [(upload, options) for upload in super().items(body)]

    def cost(self, item: tuple[Upload, DetectOptions]) -> float:
        return super().cost(item[0])

    def prepare(self, item: tuple[Upload, DetectOptions]) -> tuple[np.ndarray, DetectOptions]:
        return super().prepare(item[0]), item[1]

    def predict_batch(self, items: list[tuple[np.ndarray, DetectOptions]]) -> list[dict]:
        images = [image for image, _ in items]
        # one model call for the whole batch at the lowest threshold asked; each request's own
        # threshold and cap are applied to its images afterwards
        low = min(o.score_threshold for _, o in items)
        preds = self.detector(images, score_thresh=low, max_detections=self.cfg.model.max_detections)
        out = []
        for (image, opt), pred in zip(items, preds):
            keep = (pred["scores"] >= opt.score_threshold).nonzero().squeeze(1)[: opt.max_detections]
            pred = {k: v[keep] for k, v in pred.items()}
            entry = {"width": image.shape[1], "height": image.shape[0],
                     "detections": as_json(pred, self.detector.classes)}
            if opt.annotated:
                drawn = draw_detections(image, pred, self.detector.classes, score_thresh=opt.score_threshold)
                entry["annotated_png_base64"] = base64.b64encode(encode_png(drawn)).decode()
            out.append(entry)
        return out

    def metadata(self) -> dict:
        metrics = {k: v for k, v in load_metrics(self.run).items() if k.startswith("test/") and k.count("/") == 1}
        m = self.cfg.model
        return {"run": self.run.name, "task": "detect", "model": m.arch, "backbone": m.backbone,
                "classes": self.detector.classes, "input_size": m.input_size, "backend": self.cfg.serve.backend,
                **image_limits(self.cfg.serve), "max_detections": m.max_detections, "metrics": metrics}

    def example_image(self) -> bytes | None:
        """The test image with the most boxes, for the demo page; None when the run's data cache
        is not on this machine (a served run needs only the run directory)."""
        path = cache_dir(APP, self.cfg.name, to_dict(self.cfg.data)) / "dataset.json"
        data = read_json(path) if path.is_file() else None
        test = sorted(data["splits"].get("test") or [], key=lambda r: -len(r["boxes"])) if data else []
        image = Path(data["images_dir"]) / test[0]["file"] if test else None
        return image.read_bytes() if image is not None and image.is_file() else None
