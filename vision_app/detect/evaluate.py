"""Scoring detections: mAP (torchmetrics ``MeanAveragePrecision`` on the faster-coco-eval backend),
per-class AP and recall, a precision-recall plot, and images with true and predicted boxes drawn.

Predictions are mapped back to each image's original pixels before scoring, so the numbers are
those of the served path (letterbox in, boxes out in the user's coordinates).
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
from shared.runs import write_bytes
from vision_app.detection.formats import DetectionSet, ImageRecord
from vision_app.images import encode_png, read_image
from vision_app.transforms import letterbox_size

RECALL_POINTS = np.linspace(0, 1, 101)  # where COCO evaluation samples each PR curve
logging.getLogger("faster_coco_eval").setLevel(logging.WARNING)  # it logs its summary table at INFO


def to_original(pred: dict, width: int, height: int, input_size: int) -> dict:
    """Boxes from the letterboxed ``input_size`` square back to the ``width`` × ``height`` image."""
    new_w, new_h = letterbox_size(width, height, input_size)
    scale = torch.tensor([width / new_w, height / new_h] * 2, dtype=torch.float32)
    boxes = pred["boxes"].detach().float().cpu() * scale
    boxes[:, 0::2] = boxes[:, 0::2].clamp(0, width)
    boxes[:, 1::2] = boxes[:, 1::2].clamp(0, height)
    return {"boxes": boxes, "labels": pred["labels"].detach().cpu().long(), "scores": pred["scores"].detach().float().cpu()}


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
