"""ONNX export of the YOLO-style detector: ``run/model.onnx``.

The graph is :meth:`YoloDetector.raw`: a ``[B, 3, S, S]`` normalised, letterboxed batch in
(input name ``image``), decoded boxes ``[B, N, 4]`` (``boxes``, xyxy in input pixels) and class
scores ``[B, N, C]`` (``scores``) out. The NMS stays outside the graph, in
:func:`vision_app.detect.yolo.postprocess`, which the torch backend runs too, so both backends
give the same detections (:class:`vision_app.detect.predict.Detector` runs either).
Faster R-CNN is not exported: its data-dependent proposal stages do not trace to a clean graph.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from shared.errors import UserError
from shared.onnx_export import OnnxSession, export_onnx
from vision_app.detect.config import DetectConfig
from vision_app.detect.models import load_model


class RawYolo(nn.Module):
    """The part of the detector that goes into the graph (everything before the NMS)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, image):
        return self.model.raw(image)


def export(cfg: DetectConfig, run: Path) -> dict:
    """Write ``model.onnx`` into the run and check it against the torch model on one batch."""
    if cfg.model.arch != "yolo":
        raise UserError(f"export writes ONNX for the yolo detector only (this run is {cfg.model.arch}); "
                        "serve Faster R-CNN with serve.backend=torch")
    run_dir = Path(run)
    model = load_model(run_dir, cfg)
    size = cfg.model.input_size
    path = export_onnx(RawYolo(model), (torch.zeros(1, 3, size, size),), run_dir / "model.onnx",
                       input_names=["image"], output_names=["boxes", "scores"],
                       dynamic_axes={"image": {0: "batch"}, "boxes": {0: "batch"}, "scores": {0: "batch"}})
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref_boxes, ref_scores = model.raw(x)
    boxes, scores = OnnxSession(path).run({"image": x})
    diff = max(float(np.abs(boxes - ref_boxes.numpy()).max()), float(np.abs(scores - ref_scores.numpy()).max()))
    return {"onnx": str(path), "max_abs_diff_vs_torch": diff}
