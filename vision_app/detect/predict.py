"""Running a trained detection run on images: :class:`Detector` is the one inference path (the
``predict`` stage, ``evaluate``, the server and the benchmarks all call it), so a served answer
equals an offline one and an evaluated one.

Images go through the eval preset (letterbox to ``model.input_size``, normalise), then the
:mod:`shared.inference` runner ``serve.backend`` names: ``torch`` (either detector) or ``onnx``
(the YOLO-style detector's exported graph; ``model.onnx`` is written by the ``export`` stage on
first use). The YOLO-style detector's NMS runs here, outside the graph, for both backends; boxes
come back in the original image's pixels.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

from shared.errors import UserError
from shared.inference import Runner
from shared.runs import read_json, write_text
from vision_app.common.backend import run_backend
from vision_app.common.images import json_lines_output, list_inputs, read_image
from vision_app.common.transforms import letterbox_size
from vision_app.detect.config import DetectConfig
from vision_app.detect.data import eval_preset
from vision_app.detect.export import export
from vision_app.detect.models import load_model, runner_outputs
from vision_app.detect.yolo import postprocess


def to_original(pred: dict, width: int, height: int, input_size: int) -> dict:
    """Boxes from the letterboxed ``input_size`` square back to the ``width`` × ``height`` image."""
    new_w, new_h = letterbox_size(width, height, input_size)
    scale = torch.tensor([width / new_w, height / new_h] * 2, dtype=torch.float32)
    boxes = pred["boxes"].detach().float().cpu() * scale
    boxes[:, 0::2] = boxes[:, 0::2].clamp(0, width)
    boxes[:, 1::2] = boxes[:, 1::2].clamp(0, height)
    return {"boxes": boxes, "labels": pred["labels"].detach().cpu().long(),
            "scores": pred["scores"].detach().float().cpu()}


class Detector:
    """A run ready to predict with ``runner`` (see :meth:`for_run`)."""

    def __init__(self, cfg: DetectConfig, run: Path, runner: Runner):
        self.cfg, self.run, self.runner = cfg, Path(run), runner
        self.classes: list[str] = read_json(self.run / "labels.json")
        self.preset = eval_preset(cfg)

    @classmethod
    def for_run(cls, cfg: DetectConfig, run: Path) -> Detector:
        """The run on the backend ``cfg.serve`` names."""
        if cfg.serve.backend != "torch" and cfg.model.arch != "yolo":
            raise UserError("the onnx backend serves the yolo detector only; use serve.backend=torch")
        runner = run_backend(cfg, run, lambda: load_model(run, cfg), lambda: export(cfg, run), forward=runner_outputs)
        return cls(cfg, run, runner)

    def raw_batch(self, x: torch.Tensor, score_thresh: float, max_detections: int) -> list[dict]:
        """Detections on the letterboxed batch ``x`` (input pixels), best first."""
        outs = [torch.from_numpy(o) for o in self.runner({"image": x})]
        if self.cfg.model.arch == "yolo":
            return postprocess(outs[0], outs[1], score_thresh, self.cfg.model.nms_iou, max_detections)
        rows, preds = outs[0], []
        for i in range(len(x)):
            r = rows[(rows[:, 0] == i) & (rows[:, 5] >= score_thresh)][:max_detections]
            preds.append({"boxes": r[:, 1:5], "scores": r[:, 5], "labels": r[:, 6].long()})
        return preds

    def __call__(self, images: list, score_thresh: float | None = None, max_detections: int | None = None,
                 batch_size: int = 16) -> list[dict]:
        """``HxWx3`` uint8 arrays or PIL images → ``{"boxes", "labels", "scores"}`` tensors each,
        boxes ``xyxy`` in the image's own pixels, sorted by score."""
        thresh = self.cfg.model.score_thresh if score_thresh is None else score_thresh
        top = min(max_detections or self.cfg.model.max_detections, self.cfg.model.max_detections)
        out = []
        for i in range(0, len(images), batch_size):
            chunk = [np.asarray(im) for im in images[i:i + batch_size]]
            x = torch.stack([self.preset(im) for im in chunk])
            for im, pred in zip(chunk, self.raw_batch(x, thresh, top)):
                out.append(to_original(pred, im.shape[1], im.shape[0], self.cfg.model.input_size))
        return out


def as_json(pred: dict, classes: list[str]) -> list[dict]:
    """One detection dict per box: ``{"box": [x1, y1, x2, y2], "label", "score"}``."""
    return [{"box": [round(float(v), 2) for v in b], "label": classes[int(c)], "score": round(float(s), 4)}
            for b, c, s in zip(pred["boxes"], pred["labels"], pred["scores"])]


def predict(cfg: DetectConfig, run: Path, input: Path, output: Path | str) -> dict:
    """Detections for every image of ``input`` as JSON lines ``{"image", "detections"}`` to
    ``output`` (``-``: stdout)."""
    json_lines_output(output)
    detector = Detector.for_run(cfg, run)
    files = list_inputs(input)
    lines, n_boxes = [], 0
    for i in range(0, len(files), 16):
        chunk = files[i:i + 16]
        for f, pred in zip(chunk, detector([read_image(f, cfg.serve.limits()) for f in chunk])):
            dets = as_json(pred, detector.classes)
            n_boxes += len(dets)
            lines.append(json.dumps({"image": str(f), "detections": dets}, ensure_ascii=False))
    text = "".join(line + "\n" for line in lines)
    if str(output) == "-":
        sys.stdout.write(text)
    else:
        write_text(output, text)
    return {"images": len(files), "detections": n_boxes, "output": str(output), "backend": cfg.serve.backend}
