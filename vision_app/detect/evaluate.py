"""Scoring detections: mAP (torchmetrics ``MeanAveragePrecision`` on the faster-coco-eval backend),
per-class AP and recall, a precision-recall plot, and images with true and predicted boxes drawn.

Predictions are mapped back to each image's original pixels before scoring; the ``evaluate``
stage runs the served path itself (:class:`~vision_app.detect.predict.Detector` on the backend
``serve:`` names). ``train`` calls :func:`score` on the test split and returns the metrics (the
run's ``metrics.json``); the ``evaluate`` stage writes to ``evaluations/test-split/`` or, for a
``--data`` file, ``evaluations/<stem>/`` (keys and folders: :mod:`vision_app.common.evaluation`).
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from torchmetrics.detection import MeanAveragePrecision
from torchvision.utils import draw_bounding_boxes

from shared import distributed as dist
from shared import plots
from shared.metrics import with_split
from shared.runs import evaluation_dir, write_bytes
from vision_app.common.evaluation import split_name, summary, write_evaluation
from vision_app.common.images import encode_png, read_image
from vision_app.detect.config import DetectConfig
from vision_app.detect.data import load_processed, read_eval_data
from vision_app.detect.formats import DetectionSet, ImageRecord
from vision_app.detect.predict import Detector, to_original

RECALL_POINTS = np.linspace(0, 1, 101)  # where COCO evaluation samples each PR curve
logging.getLogger("faster_coco_eval").setLevel(logging.WARNING)  # it logs its summary table at INFO


def predict_loader(model, loader, ds: DetectionSet, input_size: int) -> list[dict]:
    """Predictions in original pixels for every image of ``ds`` (in order; all ranks' shards)."""
    local = []
    for batch in loader:
        for i, pred in zip(batch["index"].tolist(), model(batch["images"])):
            rec = ds.images[i]
            local.append(to_original(pred, rec.width, rec.height, input_size))
    return dist.gather_list(local)


def truth(rec: ImageRecord) -> dict:
    return {"boxes": torch.tensor(rec.boxes, dtype=torch.float32).reshape(-1, 4),
            "labels": torch.tensor(rec.labels, dtype=torch.long)}


def detection_metrics(preds: list[dict], records: list[ImageRecord], classes: list[str]) -> tuple[dict, dict]:
    """``(metrics, pr_curves)``: mAP@0.5, mAP@0.5:0.95, mAP@0.75, mAR@100, and per class ``<name>/ap50``,
    ``<name>/ap`` (0.5:0.95) and ``<name>/recall50``; ``pr_curves`` maps a class name to its
    precision at :data:`RECALL_POINTS` (IoU 0.5, all areas, 100 detections)."""
    metric = MeanAveragePrecision(backend="faster_coco_eval", iou_type="bbox", class_metrics=True,
                                  extended_summary=True)
    metric.update(preds, [truth(r) for r in records])
    r = metric.compute()
    out = {"map_50": r["map_50"], "map": r["map"], "map_75": r["map_75"], "mar_100": r["mar_100"]}
    curves = {}
    for k, c in enumerate(torch.atleast_1d(r["classes"]).tolist()):
        if not 0 <= c < len(classes):
            continue
        name = classes[c]
        precision = r["precision"][0, :, k, 0, -1].numpy()  # IoU 0.5, all areas, maxDets 100
        valid = precision > -1
        out[f"{name}/ap50"] = float(precision[valid].mean()) if valid.any() else float("nan")
        out[f"{name}/ap"] = torch.atleast_1d(r["map_per_class"])[k]
        out[f"{name}/recall50"] = float(r["recall"][0, k, 0, -1])
        curves[name] = np.clip(precision, 0, 1)
    return {k: float(v) for k, v in out.items()}, curves


def plot_pr(curves: dict, metrics: dict, path) -> Path:
    """Precision-recall at IoU 0.5, one curve per class."""
    series = {f"{name} (AP50 {metrics[f'{name}/ap50']:.3f})": p for name, p in curves.items()}
    return plots.curves(series, path, xlabel="recall", ylabel="precision", x=RECALL_POINTS,
                        title="Precision-recall at IoU 0.5")


def draw_detections(image: np.ndarray, pred: dict, classes: list[str], true: dict | None = None,
                    score_thresh: float = 0.3) -> np.ndarray:
    """``HxWx3`` uint8 image with true boxes in green and predictions (label and score) in red."""
    img = torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1)
    width = max(1, round(max(img.shape[1:]) / 200))
    if true is not None and len(true["boxes"]):
        img = draw_bounding_boxes(img, true["boxes"], colors="lime", width=width)
    keep = pred["scores"] >= score_thresh
    if keep.any():
        names = [f"{classes[int(c)]} {float(s):.2f}" for c, s in zip(pred["labels"][keep], pred["scores"][keep])]
        img = draw_bounding_boxes(img, pred["boxes"][keep], labels=names, colors="red", width=width)
    return img.permute(1, 2, 0).numpy()


def write_report(out_dir: Path, preds: list[dict], ds: DetectionSet, metrics: dict, curves: dict,
                 n_draw: int, score_thresh: float) -> None:
    """``pr_curve.png`` and ``detections/<image>.png`` for the first ``n_draw`` images."""
    if curves:
        plot_pr(curves, metrics, out_dir / "pr_curve.png")
    for rec, pred in list(zip(ds.images, preds))[:n_draw]:
        image = np.asarray(read_image(Path(ds.images_dir) / rec.file))
        drawn = draw_detections(image, pred, ds.classes, truth(rec), score_thresh)
        write_bytes(out_dir / "detections" / (Path(rec.file).stem + ".png"), encode_png(drawn))


class MapScorer:
    """Validation inside :func:`shared.training.fit`: mAP of the model on ``ds``, in original pixels
    (all ranks' shards gathered); keeps the last predictions and PR curves for the report."""

    def __init__(self, ds: DetectionSet, input_size: int):
        self.ds, self.input_size = ds, input_size
        self.last_predictions: list[dict] = []
        self.last_curves: dict = {}

    def evaluate(self, model, loader) -> dict[str, float]:
        preds = predict_loader(model, loader, self.ds, self.input_size)
        metrics, self.last_curves = detection_metrics(preds, self.ds.images, self.ds.classes)
        self.last_predictions = preds
        return metrics


def score(cfg: DetectConfig, ds: DetectionSet, detector: Detector, out_dir: Path, split: str) -> dict:
    """Every metric of ``ds`` as ``<split>/…`` keys; ``pr_curve.png`` and drawn images into ``out_dir``."""
    batch = cfg.train.eval_batch_size or cfg.train.batch_size
    preds = []
    for i in range(0, len(ds.images), batch):
        images = [read_image(Path(ds.images_dir) / rec.file) for rec in ds.images[i:i + batch]]
        preds += detector(images, batch_size=batch)
    values, curves = detection_metrics(preds, ds.images, ds.classes)
    values["images"] = float(len(ds.images))
    write_report(out_dir, preds, ds, values, curves, cfg.eval.draw_images, cfg.eval.draw_score_thresh)
    return with_split(split, values)


def evaluate(cfg: DetectConfig, run: Path, data: Path | None = None) -> dict:
    """mAP and per-class AP/recall on the test split (into ``evaluations/test-split/``), or on
    ``--data`` (a COCO JSON, or a COCO / VOC / YOLO folder or export: its own test split when it has
    one, into ``evaluations/<stem>/``), PR curve and
    drawn images, with the backend ``serve:`` names; the run's own ``metrics.json`` is never
    written here."""
    detector = Detector.for_run(cfg, run)
    out = evaluation_dir(run, data)
    if data is None:
        ds, split = load_processed(cfg)[1]["test"], split_name(cfg)
    else:
        ds, split = read_eval_data(data, detector.classes, cfg.data.bad_boxes), split_name(cfg, "data")
    metrics = score(cfg, ds, detector, out, split)
    write_evaluation(out, metrics)
    return summary(metrics, out, digits=4)
