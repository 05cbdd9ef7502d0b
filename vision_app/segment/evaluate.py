"""Scoring a segmentation run, globally over the split's pixels (every pixel of every image counts
once): per-class IoU (Jaccard), mean IoU over all classes (background included, as in Pascal VOC)
and over the foreground classes, macro Dice, pixel accuracy; and overlays of prediction beside
ground truth. Evaluation runs at the model's input size (``augment.size``).

The model runs on the backend ``serve:`` names. ``train`` calls :func:`score` on the test split and
returns the metrics (the run's ``metrics.json``); the ``evaluate`` stage writes to
``evaluations/test-split/`` or, for a ``--data`` folder, ``evaluations/<stem>/`` (keys and folders:
:mod:`vision_app.common.evaluation`).
"""
from __future__ import annotations

from pathlib import Path

import torch
from torchmetrics.classification import MulticlassJaccardIndex
from torchmetrics.segmentation import DiceScore

from shared.inference import Runner
from shared.metrics import with_split
from shared.runs import evaluation_dir, read_json
from vision_app.common.backend import run_backend
from vision_app.common.data import ImageDataset
from vision_app.common.evaluation import split_name, summary, write_evaluation
from vision_app.common.figures import segmentation_overlays
from vision_app.common.manifest import load_manifest
from vision_app.common.shapes import mask_palette
from vision_app.common.transforms import IGNORE_INDEX, denormalize
from vision_app.segment.data import eval_preset, masked_records, preprocess
from vision_app.segment.export import export
from vision_app.segment.model import load_model


def segmentation_metrics(preds: torch.Tensor, masks: torch.Tensor, classes: list[str]) -> dict[str, float]:
    """Global per-class IoU, mean IoU (all / foreground), macro Dice and pixel accuracy (torchmetrics)."""
    n = len(classes)
    keep = masks != IGNORE_INDEX
    iou = MulticlassJaccardIndex(n, average="none", ignore_index=IGNORE_INDEX)(preds, masks)
    dice = DiceScore(n, average="macro", aggregation_level="global", input_format="index")(
        torch.where(keep, preds, 0), torch.where(keep, masks, 0))
    out = {"mean_iou": iou.mean().item(), "mean_iou_foreground": iou[1:].mean().item(), "dice": dice.item(),
           "pixel_accuracy": (preds[keep] == masks[keep]).float().mean().item()}
    out.update({f"{c}/iou": iou[i].item() for i, c in enumerate(classes)})
    return out


def predict_masks(runner: Runner, ds: ImageDataset, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(predicted, true)`` class masks of every item of ``ds``, at the model's input size."""
    preds, masks = [], []
    for start in range(0, len(ds), batch_size):
        items = [ds[i] for i in range(start, min(start + batch_size, len(ds)))]
        logits = runner({"image": torch.stack([it["image"] for it in items])})[0]
        preds.append(torch.from_numpy(logits).argmax(1))
        masks += [it["mask"] for it in items]
    return torch.cat(preds), torch.stack(masks)


def score(cfg, run: Path, records: list[dict], runner: Runner, out_dir: Path, split: str) -> dict:
    """Every metric of ``records`` as ``<split>/…`` keys; ``overlays_<split>.png`` into ``out_dir``."""
    classes = read_json(run / "labels.json")
    ds = ImageDataset(records, eval_preset(cfg), cfg.data.limits(), cache=False)
    pred, masks = predict_masks(runner, ds, cfg.train.eval_batch_size or cfg.train.batch_size)
    values = {**segmentation_metrics(pred, masks, classes), "images": float(len(records))}
    n = min(cfg.eval.overlays, len(ds))
    if n:
        segmentation_overlays([denormalize(ds[i]["image"], cfg.augment.mean, cfg.augment.std) for i in range(n)],
                              [masks[i].numpy() for i in range(n)], [pred[i].numpy() for i in range(n)],
                              mask_palette(), classes, out_dir / f"overlays_{split}.png")
    return with_split(split, values)


def evaluate(cfg, run: Path, data: Path | None = None) -> dict:
    """Score the run on its test split (into ``evaluations/test-split/``), or on ``--data`` (a folder
    with images/, masks/ and classes.json, a COCO .json or export folder, or a YOLO-seg folder; into
    ``evaluations/<stem>/``), with the backend
    ``serve:`` names; the run's own ``metrics.json`` is never written here."""
    runner = run_backend(cfg, run, lambda: load_model(run, cfg), lambda: export(cfg, run))
    out = evaluation_dir(run, data)
    if data is None:
        records, split = load_manifest(cfg, preprocess)["splits"]["test"], split_name(cfg)
    else:
        records, split = masked_records(cfg, Path(data), read_json(run / "labels.json")), split_name(cfg, "data")
    metrics = score(cfg, run, records, runner, out, split)
    write_evaluation(out, metrics)
    return summary(metrics, out)
