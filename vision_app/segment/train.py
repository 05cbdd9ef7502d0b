"""Semantic segmentation: preprocess → train → evaluate → predict → export (serving: :mod:`vision_app.serve`).

Commands (see :mod:`vision_app`): ``python -m vision_app train --config configs/vision_app/segment-quick.yaml``.
Metrics are global over the split's pixels (every pixel of every image counts once): per-class
IoU (Jaccard), mean IoU over all classes (background included, as in Pascal VOC) and over the
foreground classes, macro Dice, pixel accuracy. Evaluation runs at the model's input size
(``augment.size``); ``predict`` and the server return masks at each image's own size.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torchmetrics.classification import MulticlassJaccardIndex
from torchmetrics.segmentation import DiceScore

from shared.checkpoint import load_weights
from shared.device import seed_everything
from shared.distributed import gather_cat
from shared.errors import UserError
from shared.metrics import with_split
from shared.runs import read_json, update_metrics, write_bytes, write_text
from shared.training import evaluate_model
from vision_app import data as vdata
from vision_app.figures import segmentation_overlays
from vision_app.images import encode_png, read_image
from vision_app.inference import build_engine, export_model
from vision_app.models import build_segmenter
from vision_app.shapes import mask_palette
from vision_app.stages import list_inputs, load_manifest, resolve, train_run, write_manifest
from vision_app.transforms import IGNORE_INDEX, SegmentationEval, SegmentationTrain, denormalize

log = logging.getLogger(__name__)


def train_preset(cfg) -> SegmentationTrain:
    a = cfg.augment
    return SegmentationTrain(a.size, (a.scale_min, 1.0), a.rotation, a.hflip, a.vflip, a.jitter, a.mean, a.std)


def eval_preset(cfg) -> SegmentationEval:
    """The one eval preset: ``evaluate``, ``predict`` and the server all use it."""
    return SegmentationEval(cfg.augment.size, cfg.augment.mean, cfg.augment.std)


def preprocess(cfg) -> dict:
    """Check every image and mask (decodable, same size, ids inside the class list), drop
    duplicate images, and split: the set's own ``split.json`` when it has one, else seeded."""
    d = cfg.data
    classes, records, fixed = vdata.segmentation_records(d)
    if len(classes) < 2:
        raise UserError(f"the class list needs background and at least one class, got {classes}")
    hashes = vdata.validate_segmentation(records, len(classes), d.limits())
    keep, dropped = vdata.dedupe(hashes)
    if fixed is None or dropped:
        kept_split = vdata.split_indices(len(keep), d.test_fraction, d.valid_fraction, d.seed)
        idx = {s: [keep[i] for i in ix] for s, ix in kept_split.items()}
    else:
        idx = fixed
    vdata.check_splits(idx, need_valid=d.valid_fraction > 0 or fixed is not None)
    splits = {s: [{"image": records[i][0], "mask": records[i][1]} for i in ix] for s, ix in idx.items()}
    manifest = write_manifest(cfg, classes, splits, {"duplicates_dropped": dropped}, [hashes[i] for i in keep])
    log.info("segmentation data: classes %s, %s", classes, manifest["counts"])
    return {"classes": classes, "counts": manifest["counts"], "duplicates_dropped": dropped}


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


def soft_dice_loss(logits: torch.Tensor, masks: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    """1 − macro soft Dice over the batch's pixels (``IGNORE_INDEX`` pixels left out)."""
    n = logits.shape[1]
    keep = (masks != IGNORE_INDEX).unsqueeze(1)
    probs = logits.float().softmax(1) * keep
    onehot = F.one_hot(torch.where(keep[:, 0], masks, 0), n).permute(0, 3, 1, 2).float() * keep
    inter = (probs * onehot).sum((0, 2, 3))
    denom = probs.sum((0, 2, 3)) + onehot.sum((0, 2, 3))
    return 1 - ((2 * inter + smooth) / (denom + smooth)).mean()


class SegmentTask:
    """Pixel-wise cross-entropy (augmentation-invented pixels ignored), plus ``dice_weight`` × soft
    Dice against class imbalance; mean IoU on validation."""

    def __init__(self, classes: list[str], dice_weight: float = 0.0):
        self.classes, self.dice_weight = classes, dice_weight

    def loss(self, model, batch):
        logits = model(batch["image"])
        loss = F.cross_entropy(logits, batch["mask"], ignore_index=IGNORE_INDEX)
        if self.dice_weight > 0:
            loss = loss + self.dice_weight * soft_dice_loss(logits, batch["mask"])
        return loss

    def evaluate(self, model, loader):
        preds, masks = [], []
        for batch in loader:
            preds.append(model(batch["image"]).argmax(1))
            masks.append(batch["mask"])
        preds, masks = gather_cat(torch.cat(preds)).cpu(), gather_cat(torch.cat(masks)).cpu()
        m = segmentation_metrics(preds, masks, self.classes)
        return {k: v for k, v in m.items() if "/" not in k}


def train(cfg) -> dict:
    """Train the U-Net (best by validation mean IoU), then score the test split."""
    seed_everything(cfg.train.seed)
    manifest = load_manifest(cfg, preprocess)
    return train_run(cfg, manifest, build_segmenter(cfg.model, len(manifest["classes"])), SegmentTask(manifest["classes"], cfg.loss.dice_weight), train_preset(cfg),
                     eval_preset(cfg), evaluate, "Semantic segmentation (U-Net)")


def load_model(run: Path, cfg) -> torch.nn.Module:
    model = build_segmenter(cfg.model.model_copy(update={"weights": "none"}), len(read_json(run / "labels.json")))
    return load_weights(model, run / "model.safetensors").eval()


def evaluate(cfg, run: str | None = None, data: str | None = None, model: torch.nn.Module | None = None) -> dict:
    """Test-split (or ``--data`` folder with images/, masks/, classes.json) IoU, Dice and overlays."""
    run_dir = resolve(cfg, run)
    classes = read_json(run_dir / "labels.json")
    split = "test" if data is None else "data"
    if data is None:
        records = load_manifest(cfg, preprocess)["splits"]["test"]
    else:
        dcfg = cfg.data.model_copy(update={"source": "folder", "path": data, "classes": classes})
        _, pairs, _ = vdata.segmentation_records(dcfg)
        vdata.validate_segmentation(pairs, len(classes), cfg.data.limits())
        records = [{"image": i, "mask": m} for i, m in pairs]
    ds = vdata.ImageDataset(records, eval_preset(cfg), cfg.data.limits(), cache=False)
    model = model if model is not None else load_model(run_dir, cfg)
    preds: list[torch.Tensor] = []

    class _Collect:  # evaluate_model: the same device, precision and batching as validation in fit
        def evaluate(self, m, loader):
            preds.extend(m(b["image"]).argmax(1).cpu() for b in loader)
            return {}

    evaluate_model(model, _Collect(), ds, cfg.train)
    pred = torch.cat(preds)
    masks = torch.stack([ds[i]["mask"] for i in range(len(ds))])
    values = segmentation_metrics(pred, masks, classes)
    n = min(cfg.eval.overlays, len(ds))
    if n:
        segmentation_overlays([denormalize(ds[i]["image"], cfg.augment.mean, cfg.augment.std) for i in range(n)],
                              [masks[i].numpy() for i in range(n)], [pred[i].numpy() for i in range(n)],
                              mask_palette(), classes, run_dir / f"overlays_{split}.png")
    metrics = update_metrics(run_dir, with_split(split, values))
    return {k: v for k, v in metrics.items() if k.startswith(f"{split}/") and "/" not in k[len(split) + 1:]}


def predict_images(engine, images: list[np.ndarray], cfg, classes: list[str]) -> list[dict]:
    """Decoded ``HxWx3`` images → ``{"mask": HxW uint8 at the image's size, "fractions": {class: share}}``."""
    preset = eval_preset(cfg)
    out = []
    for start in range(0, len(images), 32):
        chunk = images[start:start + 32]
        logits = torch.from_numpy(engine(torch.stack([preset(im) for im in chunk]))).float()
        for im, lg in zip(chunk, logits):
            h, w = im.shape[:2]
            full = F.interpolate(lg[None], size=(h, w), mode="bilinear", align_corners=False)[0]
            mask = full.argmax(0).numpy().astype(np.uint8)
            counts = np.bincount(mask.ravel(), minlength=len(classes))[: len(classes)] / mask.size
            out.append({"mask": mask, "fractions": {c: float(f) for c, f in zip(classes, counts)}})
    return out


def predict(cfg, run: str | None, input_path: str | None, output: str | None) -> dict:
    """Masks (palette PNGs, at each image's size) into ``--output`` (a folder) plus ``predictions.jsonl``
    with each image's class pixel fractions; the served backend computes them."""
    run_dir = resolve(cfg, run)
    classes = read_json(run_dir / "labels.json")
    engine = build_engine(run_dir, lambda: load_model(run_dir, cfg), cfg.serve, lambda: export(cfg, str(run_dir)))
    out_dir = Path(output) if output else run_dir / "predictions"
    files, rows = list_inputs(input_path), []
    for f in files:
        result = predict_images(engine, [np.asarray(read_image(f, cfg.serve.limits()))], cfg, classes)[0]
        mask_file = out_dir / f"{f.stem}.png"
        write_bytes(mask_file, encode_png(result["mask"], palette=mask_palette()))
        rows.append({"path": str(f), "mask": str(mask_file), "fractions": result["fractions"]})
    write_text(out_dir / "predictions.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    return {"images": len(rows), "output": str(out_dir)}


def export(cfg, run: str | None) -> dict:
    """``model.onnx`` and ``model.int8.onnx`` (calibrated on validation images) in the run."""
    run_dir = resolve(cfg, run)
    manifest = load_manifest(cfg, preprocess)
    recs = (manifest["splits"]["valid"] or manifest["splits"]["train"])[:32]
    ds = vdata.ImageDataset(recs, eval_preset(cfg), cfg.data.limits(), cache=False)
    calib = [torch.stack([ds[i]["image"] for i in range(j, min(j + 8, len(ds)))]) for j in range(0, len(ds), 8)]
    return export_model(load_model(run_dir, cfg), run_dir, cfg.augment.size, calib)
