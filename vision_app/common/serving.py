"""The base of the served classification and segmentation models: a run's classes, its backend
runner (:mod:`vision_app.common.backend`) and its ``/metadata``. Uploads are parsed and decoded by
:class:`~vision_app.common.uploads.ImageUploadPredictor`; each task's ``serve.py`` adds
``predict_batch``.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from shared.runs import load_metrics, read_json
from vision_app.common.backend import run_backend
from vision_app.common.manifest import manifest_path
from vision_app.common.uploads import ImageUploadPredictor


class RunPredictor(ImageUploadPredictor):
    """A trained run behind ``POST /predict``, on the backend its ``serve:`` section names."""

    def __init__(self, cfg, run: Path, load_model: Callable[[Path, object], torch.nn.Module],
                 export: Callable[[object, Path], object]):
        super().__init__(cfg.serve.limits())
        self.cfg, self.run = cfg, Path(run)
        self.classes = read_json(self.run / "labels.json")
        self.runner = run_backend(cfg, self.run, lambda: load_model(self.run, cfg), lambda: export(cfg, self.run))

    def metadata(self) -> dict:
        metrics = {k: v for k, v in load_metrics(self.run).items() if k.startswith("test/") and k.count("/") == 1}
        return {"run": self.run.name, "task": self.cfg.task, "model": self.cfg.model.arch, "classes": self.classes,
                "input_size": self.cfg.augment.size, "backend": self.cfg.serve.backend,
                "precision": self.cfg.serve.precision, **image_limits(self.cfg.serve), "metrics": metrics}

    def example_image(self) -> bytes | None:
        """The first image of the run's test split, for the demo page; None when the run's data
        cache is not on this machine (a served run needs only the run directory)."""
        path = manifest_path(self.cfg)
        test = read_json(path)["splits"].get("test") if path.is_file() else None
        image = Path(test[0]["image"]) if test else None
        return image.read_bytes() if image is not None and image.is_file() else None


def image_limits(serve) -> dict:
    """The limits ``/metadata`` states: images per request, bytes and pixels per image, pixels per request."""
    return {"max_instances": serve.max_instances, "max_image_bytes": serve.max_image_bytes,
            "max_item_pixels": serve.max_item_cost, "max_request_pixels": serve.max_request_cost}
