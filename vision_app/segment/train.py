"""The segmentation ``train`` stage: pixel-wise cross-entropy plus ``loss.dice_weight`` × soft Dice,
best weights by validation mean IoU, then the test split scored with those weights."""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from shared.device import seed_everything
from shared.distributed import gather_cat
from vision_app.common.manifest import load_manifest
from vision_app.common.train import card_notes, fit_on_splits, on_rank0, reference_runner
from vision_app.common.transforms import IGNORE_INDEX
from vision_app.segment.data import eval_preset, preprocess, train_preset
from vision_app.segment.evaluate import score, segmentation_metrics
from vision_app.segment.model import build_segmenter


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


def train(cfg, run: Path) -> dict:
    """Train the segmenter (best by validation mean IoU; a resumed run continues from
    ``run/checkpoints``), then score the test split: ``train/``, ``valid/`` and ``test/`` metrics."""
    seed_everything(cfg.train.seed)
    manifest = load_manifest(cfg, preprocess)
    model = build_segmenter(cfg.model, len(manifest["classes"]))
    task = SegmentTask(manifest["classes"], cfg.loss.dice_weight)
    metrics = fit_on_splits(cfg, run, manifest, model, task, train_preset(cfg), eval_preset(cfg))
    test = on_rank0(lambda: score(cfg, run, manifest["splits"]["test"], reference_runner(cfg, run, model), run,
                                  "test"))
    return {**metrics, **test, "card": card_notes(cfg, model, "Semantic segmentation")}
