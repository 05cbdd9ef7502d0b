"""Export a segmentation run: ``model.onnx`` and ``model.int8.onnx`` (static int8, calibrated on
up to 32 validation images, or training images when there is no validation split)."""
from __future__ import annotations

from pathlib import Path

from vision_app.common.backend import calibration_batches, export_image_model
from vision_app.common.data import ImageDataset
from vision_app.common.manifest import load_manifest
from vision_app.segment.data import eval_preset, preprocess
from vision_app.segment.model import load_model


def export(cfg, run: Path) -> dict:
    """Write ``model.onnx`` and ``model.int8.onnx`` into the run; returns their paths."""
    splits = load_manifest(cfg, preprocess)["splits"]
    ds = ImageDataset(splits["valid"] or splits["train"], eval_preset(cfg), cfg.data.limits(), cache=False)
    return export_image_model(load_model(run, cfg), run, cfg.augment.size, calibration_batches(ds, 32, 8))
