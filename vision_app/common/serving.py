"""The served vision models: a :class:`~vision_app.uploads.ImageUploadPredictor` per task.

``POST /predict`` answers ``{"predictions": [...]}``, one entry per image in upload order:

- classification: ``{"label", "probability", "top": [{"label", "probability"}, …]}``
- segmentation: ``{"mask_png_base64", "width", "height", "fractions": {class: share of pixels}}``;
  the mask is a palette PNG at the image's own size whose pixel values are class ids.

The backend (``serve.backend``: torch | onnx | onnx-int8, ``serve.precision``: fp32 | bf16) is the same one
``predict`` uses, so an offline prediction and a served one agree.
"""
from __future__ import annotations

import base64
from pathlib import Path

import numpy as np

from shared.runs import load_metrics, read_json, resolve_run
from vision_app import classify, segment
from vision_app.images import encode_png
from vision_app.inference import build_engine
from vision_app.shapes import mask_palette
from vision_app.uploads import ImageUploadPredictor


class _RunPredictor(ImageUploadPredictor):
    task_module = None  # classify or segment: load_model, predict_images

    def __init__(self, cfg, run: str | Path):
        super().__init__(cfg.serve.limits(), cfg.serve.max_images)
        self.cfg, self.run = cfg, resolve_run(run)
        self.classes = read_json(self.run / "labels.json")
        self.engine = build_engine(self.run, lambda: self.task_module.load_model(self.run, cfg), cfg.serve,
                                   lambda: self.task_module.export(cfg, str(self.run)))

    @classmethod
    def from_run(cls, cfg, run: str | Path) -> "_RunPredictor":
        return cls(cfg, run)

    def metadata(self) -> dict:
        metrics = {k: v for k, v in load_metrics(self.run).items() if k.startswith("test/") and k.count("/") == 1}
        return {"run": self.run.name, "task": self.cfg.task, "model": self.cfg.model.arch, "classes": self.classes,
                "input_size": self.cfg.augment.size, "backend": self.cfg.serve.backend,
                "precision": self.cfg.serve.precision, "max_images": self.max_images,
                "max_image_bytes": self.limits.max_bytes, "max_image_pixels": self.limits.max_pixels,
                "metrics": metrics}


class ClassifyPredictor(_RunPredictor):
    task_module = classify

    def predict_batch(self, images: list[np.ndarray]) -> list[dict]:
        k = max(self.cfg.eval.top_k or [1])
        return classify.predict_images(self.engine, images, self.cfg, self.classes, top_k=k)


class SegmentPredictor(_RunPredictor):
    task_module = segment

    def predict_batch(self, images: list[np.ndarray]) -> list[dict]:
        palette = mask_palette()
        out = []
        for r in segment.predict_images(self.engine, images, self.cfg, self.classes):
            h, w = r["mask"].shape
            out.append({"mask_png_base64": base64.b64encode(encode_png(r["mask"], palette=palette)).decode(),
                        "width": w, "height": h, "fractions": r["fractions"]})
        return out
