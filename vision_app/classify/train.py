"""The classification ``train`` stage: cross-entropy (with label smoothing) on the train split,
best weights by validation accuracy, then the test split scored with those weights."""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from shared.device import seed_everything
from shared.distributed import gather_cat
from vision_app.classify.data import eval_preset, preprocess, train_preset
from vision_app.classify.evaluate import score
from vision_app.classify.model import build_classifier
from vision_app.common.manifest import load_manifest
from vision_app.common.train import card_notes, fit_on_splits, on_rank0, reference_runner


class ClassifyTask:
    """Cross-entropy loss; accuracy on the validation set."""

    def __init__(self, label_smoothing: float = 0.0):
        self.label_smoothing = label_smoothing

    def loss(self, model, batch):
        return F.cross_entropy(model(batch["image"]), batch["label"], label_smoothing=self.label_smoothing)

    def evaluate(self, model, loader):
        logits, labels = [], []
        for batch in loader:
            logits.append(model(batch["image"]).float())
            labels.append(batch["label"])
        logits, labels = gather_cat(torch.cat(logits)), gather_cat(torch.cat(labels))
        return {"accuracy": (logits.argmax(1) == labels).float().mean().item(),
                "loss": F.cross_entropy(logits, labels).item()}


def train(cfg, run: Path) -> dict:
    """Train on the train split (early stopping on valid; a resumed run continues from
    ``run/checkpoints``), then score the test split: ``train/``, ``valid/`` and ``test/`` metrics."""
    seed_everything(cfg.train.seed)
    manifest = load_manifest(cfg, preprocess)
    model = build_classifier(cfg.model, len(manifest["classes"]))
    metrics = fit_on_splits(cfg, run, manifest, model, ClassifyTask(cfg.loss.label_smoothing), train_preset(cfg),
                            eval_preset(cfg))
    test = on_rank0(lambda: score(cfg, run, manifest["splits"]["test"], reference_runner(cfg, run, model), run,
                                  "test", manifest))
    return {**metrics, **test, "card": card_notes(cfg, model, "Image classifier")}
