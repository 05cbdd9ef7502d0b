"""The detection ``train`` stage: data → presets → detector → :func:`shared.training.fit` → test scores.

The run gets ``labels.json`` (the class names in index order, kept with the model),
``model.safetensors`` (best validation mAP@0.5, or the last weights when ``train.monitor`` is
null), ``history.jsonl``, ``checkpoints/`` (a killed run resumes from them), ``pr_curve.png`` and
``detections/*.png``; the CLI adds ``config.yaml``, ``metrics.json`` and the model card.
"""
from __future__ import annotations

import logging
from pathlib import Path

import torch

from shared.config import to_dict
from shared.device import seed_everything
from shared.distributed import is_main_process
from shared.inference import build_runner
from shared.metrics import with_split
from shared.runs import write_json
from shared.training import fit
from vision_app.common.models import count_parameters
from vision_app.common.train import on_rank0
from vision_app.detect.config import DetectConfig
from vision_app.detect.data import DetectionDataset, collate, eval_preset, load_processed, train_preset
from vision_app.detect.evaluate import MapScorer, score
from vision_app.detect.models import build_detector, runner_outputs
from vision_app.detect.predict import Detector

log = logging.getLogger(__name__)


class DetectionTask(MapScorer):
    """The loss is the sum of the detector's loss dict; validation is mAP on original pixels."""

    def loss(self, model, batch) -> torch.Tensor:
        return sum(model(batch["images"], batch["targets"]).values())


def train(cfg: DetectConfig, run: Path) -> dict:
    """Train the recipe's detector (a resumed run continues from ``run/checkpoints``), then score
    it on the test split: ``train/``, ``valid/`` and ``test/`` metrics."""
    classes, sets = load_processed(cfg)
    seed_everything(cfg.train.seed)
    model = build_detector(cfg.model, len(classes))
    loop = cfg.train
    if not sets["valid"].images:
        log.warning("no validation images: keeping the last weights, no early stopping")
        loop = loop.model_copy(update={"monitor": None, "early_stopping_patience": None})
    if is_main_process():
        write_json(run / "labels.json", classes)
    result = fit(model, DetectionTask(sets["valid"], cfg.model.input_size),
                 DetectionDataset(sets["train"], train_preset(cfg)),
                 DetectionDataset(sets["valid"], eval_preset(cfg)) if sets["valid"].images else None,
                 loop, run, collate_fn=collate, extra_state={"config": to_dict(cfg)})
    reference = Detector(cfg, run, build_runner(run, "torch", lambda: model, None, forward=runner_outputs,
                                                device=cfg.train.device))
    test = on_rank0(lambda: score(cfg, sets["test"], reference, run, "test"))
    if test:
        log.info("test mAP@0.5 %.3f, mAP@0.5:0.95 %.3f (%s)", test["test/map_50"], test["test/map"], run)
    return {**with_split("valid", result.best_metrics or result.last_metrics), **test,
            "train/seconds": result.train_seconds, "train/images_per_second": result.samples_per_second,
            "train/steps": result.steps, "card": model_card(cfg, classes, sets, model)}


def model_card(cfg: DetectConfig, classes: list[str], sets: dict, model: torch.nn.Module) -> str:
    """The detector's section of the model card (``finish_run`` writes the card)."""
    m = cfg.model
    return "\n".join([
        "", f"## Detector: {m.arch} ({m.backbone} backbone), {count_parameters(model):,} parameters",
        f"- classes ({len(classes)}): {', '.join(classes)}",
        f"- input: letterboxed to {m.input_size}x{m.input_size}; boxes are returned in original image pixels",
        f"- initialisation: {m.weights or 'random'}; backbone: {m.backbone_weights or 'random'}",
        "- images train/valid/test = " + "/".join(str(len(sets[s].images)) for s in ("train", "valid", "test")),
        "",
    ])
