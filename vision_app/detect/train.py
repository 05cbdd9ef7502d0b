"""The detection training stage: data → presets → detector → ``shared.training.fit`` → test scores.

A run directory gets ``config.yaml``, ``labels.json`` (the class names in index order, kept with the model),
``model.safetensors`` (best validation mAP@0.5), ``metrics.json`` (``valid/…`` at the best step,
``test/…``), ``history.jsonl``, ``pr_curve.png``, ``detections/*.png`` and ``MODEL_CARD.md``.
"""
from __future__ import annotations

import logging

import torch

from shared.config import to_dict
from shared.device import seed_everything
from shared.metrics import with_split
from shared.runs import create_run, mark_latest, update_metrics, write_json, write_text, write_yaml
from shared.training import evaluate_model, fit
from vision_app.detection.config import DetectConfig
from vision_app.detection.data import APP, DetectionDataset, collate, load_processed
from vision_app.detection.evaluate import detection_metrics, predict_loader, write_report
from vision_app.detection.formats import DetectionSet
from vision_app.detection.models import build_detector
from vision_app.transforms import DetectionEval, DetectionTrain

log = logging.getLogger(__name__)


def train_preset(cfg: DetectConfig) -> DetectionTrain:
    a = cfg.augment
    return DetectionTrain(cfg.model.input_size, hflip=a.hflip, jitter=a.jitter, letterbox=True, scale=a.scale)


def eval_preset(cfg: DetectConfig) -> DetectionEval:
    """What evaluation, ``predict``, export and the server feed the model: letterbox + normalise."""
    return DetectionEval(cfg.model.input_size, letterbox=True)


class DetectionTask:
    """The loss is the sum of the detector's loss dict; validation is mAP on original pixels."""

    def __init__(self, ds: DetectionSet, input_size: int):
        self.ds, self.input_size = ds, input_size
        self.last_predictions: list[dict] = []
        self.last_curves: dict = {}

    def loss(self, model, batch) -> torch.Tensor:
        return sum(model(batch["images"], batch["targets"]).values())

    def evaluate(self, model, loader) -> dict[str, float]:
        preds = predict_loader(model, loader, self.ds, self.input_size)
        metrics, self.last_curves = detection_metrics(preds, self.ds.images, self.ds.classes)
        self.last_predictions = preds
        return metrics


def train(cfg: DetectConfig) -> dict:
    """Train the recipe's detector, score it on the test split, write the run; returns a summary."""
    classes, sets = load_processed(cfg)
    seed_everything(cfg.train.seed)
    model = build_detector(cfg.model, len(classes))
    loop = cfg.train
    if not sets["valid"].images:
        log.warning("no validation images: keeping the last weights, no early stopping")
        loop = loop.model_copy(update={"monitor": None, "early_stopping_patience": None})
    run = create_run(APP, cfg.name)
    write_yaml(run / "config.yaml", to_dict(cfg))
    write_json(run / "labels.json", classes)
    result = fit(model, DetectionTask(sets["valid"], cfg.model.input_size),
                 DetectionDataset(sets["train"], train_preset(cfg)),
                 DetectionDataset(sets["valid"], eval_preset(cfg)) if sets["valid"].images else None,
                 loop, run, collate_fn=collate, extra_state={"config": to_dict(cfg)})
    test_task = DetectionTask(sets["test"], cfg.model.input_size)
    test = evaluate_model(model, test_task, DetectionDataset(sets["test"], eval_preset(cfg)), loop, collate_fn=collate)
    metrics = {**with_split("valid", result.best_metrics or result.last_metrics), **with_split("test", test),
               "train/seconds": result.train_seconds, "train/images_per_second": result.samples_per_second,
               "train/steps": result.steps}
    update_metrics(run, metrics)
    write_report(run, test_task.last_predictions, sets["test"], test, test_task.last_curves,
                 cfg.eval.draw_images, cfg.eval.draw_score_thresh)
    write_text(run / "MODEL_CARD.md", model_card(cfg, classes, sets, metrics))
    mark_latest(run)
    log.info("test mAP@0.5 %.3f, mAP@0.5:0.95 %.3f (%s)", test["map_50"], test["map"], run)
    return {"run": str(run), "test/map_50": test["map_50"], "test/map": test["map"],
            "train/seconds": round(result.train_seconds, 1), "steps": result.steps}


def model_card(cfg: DetectConfig, classes: list[str], sets: dict, metrics: dict) -> str:
    m = cfg.model
    lines = [
        f"# {cfg.name}: {m.arch} detector ({m.backbone} backbone)", "",
        f"- classes ({len(classes)}): {', '.join(classes)}",
        f"- input: letterboxed to {m.input_size}x{m.input_size}; boxes are returned in original image pixels",
        f"- initialisation: {m.weights or 'random'}; backbone: {m.backbone_weights or 'random'}",
        "- data: {}; images train/valid/test = {}".format(
            cfg.data.format, "/".join(str(len(sets[s].images)) for s in ("train", "valid", "test"))),
        (f"- training: {cfg.train.epochs} epochs, batch {cfg.train.batch_size}, lr {cfg.train.lr}, "
         f"{metrics['train/seconds']:.0f}s"),
        "", "| metric | test |", "|---|---|",
    ]
    lines += [f"| {k[5:]} | {v:.4f} |" for k, v in sorted(metrics.items()) if k.startswith("test/")]
    lines += ["", "Limits: trained on the data above only; check it on your own images before relying on it."]
    return "\n".join(lines) + "\n"
