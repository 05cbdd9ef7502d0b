"""Using a trained detection run: load it, predict on images, score it, run ``predict`` on files.

:class:`Detector` is the one inference path: the ``predict`` stage, the server and the
benchmarks all call it, so a served answer equals an offline one. Images go through the eval
preset (letterbox to ``model.input_size``, normalise), then either the torch model or the
exported ONNX graph (YOLO-style only; its NMS runs here, outside the graph), and boxes come
back in the original image's pixels.
"""
from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import numpy as np
import torch

from shared.checkpoint import load_weights
from shared.device import set_threads
from shared.errors import UserError
from shared.metrics import with_split
from shared.onnx_export import OnnxSession
from shared.runs import read_json, update_metrics, write_text
from shared.training import evaluate_model
from vision_app.detection.config import DetectConfig
from vision_app.detection.data import DetectionDataset, collate, load_processed
from vision_app.detection.evaluate import to_original, write_report
from vision_app.detection.formats import DetectionSet, read_classes_file, read_coco, read_voc, read_yolo
from vision_app.detection.models import build_detector
from vision_app.detection.train import DetectionTask, eval_preset
from vision_app.detection.yolo import postprocess
from vision_app.images import read_image
from vision_app.stages import list_inputs, resolve

log = logging.getLogger(__name__)


def load_model(run: Path, cfg: DetectConfig) -> torch.nn.Module:
    """The run's detector with its trained weights, in eval mode (no pretrained download)."""
    arch = cfg.model.model_copy(update={"weights": None, "backbone_weights": None})
    model = build_detector(arch, len(read_json(run / "labels.json")))
    return load_weights(model, run / "model.safetensors").eval()


class Detector:
    """A run ready to predict. ``backend``: ``torch`` or ``onnx`` (the run's ``model.onnx``)."""

    def __init__(self, run: Path, cfg: DetectConfig, backend: str = "torch", threads: int | None = None):
        self.run, self.cfg = run, cfg
        self.classes: list[str] = read_json(run / "labels.json")
        self.preset = eval_preset(cfg)
        self.backend = backend
        set_threads(threads)
        if backend == "onnx":
            if cfg.model.arch != "yolo":
                raise UserError("the onnx backend serves the yolo detector only; use serve.backend=torch")
            from vision_app.detection.export import export

            if not (run / "model.onnx").exists():
                log.info("no %s yet: exporting it now", run / "model.onnx")
                export(cfg, str(run))
            self.session = OnnxSession(run / "model.onnx", threads=threads)
        else:
            self.model = load_model(run, cfg)

    def raw_batch(self, x: torch.Tensor, score_thresh: float, max_detections: int) -> list[dict]:
        """Detections on the letterboxed batch ``x`` (input pixels)."""
        m = self.cfg.model
        if self.backend == "onnx":
            boxes, scores = self.session.run({"image": x})
            return postprocess(torch.from_numpy(boxes), torch.from_numpy(scores), score_thresh, m.nms_iou,
                               max_detections)
        with torch.inference_mode():
            out = self.model(x)
        return [{k: v[:max_detections] for k, v in _above(o, score_thresh).items()} for o in out]

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


def _above(pred: dict, thresh: float) -> dict:
    keep = pred["scores"] >= thresh
    return {k: v[keep] for k, v in pred.items()}


def as_json(pred: dict, classes: list[str]) -> list[dict]:
    """One detection dict per box: ``{"box": [x1, y1, x2, y2], "label", "score"}``."""
    return [{"box": [round(float(v), 2) for v in b], "label": classes[int(c)], "score": round(float(s), 4)}
            for b, c, s in zip(pred["boxes"], pred["labels"], pred["scores"])]


def read_eval_data(path: str, classes: list[str]) -> DetectionSet:
    """``--data``: a COCO JSON (images beside it or in ``images/``), or a folder holding
    ``annotations/`` (VOC .xml) or ``labels/`` (YOLO .txt + classes.txt) next to ``images/``."""
    p = Path(path)
    if p.suffix.lower() == ".json":
        images = p.parent / "images" if (p.parent / "images").is_dir() else p.parent
        ds = read_coco(p, images)
    elif (p / "annotations").is_dir():
        ds = read_voc(p / "annotations", p / "images")
    elif (p / "labels").is_dir():
        ds = read_yolo(p / "labels", p / "images", read_classes_file(p / "labels" / "classes.txt"))
    else:
        raise UserError(f"--data {p}: give a COCO .json, or a folder with images/ and annotations/ (VOC) "
                        "or labels/ (YOLO)")
    unknown = sorted(set(ds.classes) - set(classes))
    if unknown:
        raise UserError(f"--data has classes the model does not know: {unknown} (model: {classes})")
    index = {name: i for i, name in enumerate(classes)}
    for rec in ds.images:  # the data's class order → the model's
        rec.labels = [index[ds.classes[label]] for label in rec.labels]
    return DetectionSet(list(classes), ds.images, ds.images_dir)


def evaluate(cfg: DetectConfig, run: str | None = None, data: str | None = None) -> dict:
    """mAP and per-class AP/recall on the test split (or ``--data``), PR curve and drawn images."""
    run_dir = resolve(cfg, run)
    classes = read_json(run_dir / "labels.json")
    split = "test" if data is None else "data"
    ds = load_processed(cfg)[1]["test"] if data is None else read_eval_data(data, classes)
    task = DetectionTask(ds, cfg.model.input_size)
    values = evaluate_model(load_model(run_dir, cfg), task, DetectionDataset(ds, eval_preset(cfg)), cfg.train,
                            collate_fn=collate)
    out_dir = run_dir if data is None else run_dir / "eval_data"
    write_report(out_dir, task.last_predictions, ds, values, task.last_curves, cfg.eval.draw_images,
                 cfg.eval.draw_score_thresh)
    update_metrics(run_dir, with_split(split, values))
    return {f"{split}/{k}": round(v, 4) for k, v in values.items() if "/" not in k}


def predict(cfg: DetectConfig, run: str | None, input_path: str | None, output: str | None) -> dict:
    """Detections for every image of ``--input`` as JSON lines ``{"image", "detections"}``."""
    run_dir = resolve(cfg, run)
    detector = Detector(run_dir, cfg, cfg.serve.backend, cfg.serve.threads)
    files = list_inputs(input_path)
    lines, n_boxes = [], 0
    for i in range(0, len(files), 16):
        chunk = files[i:i + 16]
        for f, pred in zip(chunk, detector([read_image(f, cfg.serve.limits()) for f in chunk])):
            dets = as_json(pred, detector.classes)
            n_boxes += len(dets)
            lines.append(json.dumps({"image": str(f), "detections": dets}, ensure_ascii=False))
    text = "".join(line + "\n" for line in lines)
    if output in (None, "-"):
        sys.stdout.write(text)
    else:
        write_text(output, text)
    return {"images": len(files), "detections": n_boxes, "output": output or "-"}
