"""Image classification: preprocess → train → evaluate → predict → export (serving: :mod:`vision_app.serve`).

Commands (see :mod:`vision_app`): ``python -m vision_app train --config configs/vision_app/classify-quick.yaml``.
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from shared import plots
from shared.checkpoint import load_weights
from shared.device import seed_everything
from shared.distributed import gather_cat
from shared.errors import UserError
from shared.metrics import confusion, multiclass_classification, with_split
from shared.runs import read_json, update_metrics, write_text
from shared.training import evaluate_model
from vision_app import data as vdata
from vision_app.figures import mistakes_grid
from vision_app.images import read_image
from vision_app.inference import batched, build_engine, export_model
from vision_app.models import build_classifier
from vision_app.stages import list_inputs, load_manifest, resolve, train_run, write_manifest
from vision_app.transforms import ClassificationEval, ClassificationTrain

log = logging.getLogger(__name__)


def train_preset(cfg) -> ClassificationTrain:
    a = cfg.augment
    return ClassificationTrain(a.size, (a.scale_min, 1.0), a.rotation, a.hflip, a.vflip, a.jitter, a.mean, a.std)


def eval_preset(cfg) -> ClassificationEval:
    """The one eval preset: ``evaluate``, ``predict`` and the server all use it."""
    return ClassificationEval(cfg.augment.size, cfg.augment.mean, cfg.augment.std)


def preprocess(cfg) -> dict:
    """Read the images (folder per class, CSV, or the embedded digits), decode every one, drop
    duplicate files, and split stratified and seeded into train/valid/test."""
    d = cfg.data
    found, records = vdata.classification_records(d.source, d.path)
    classes = list(d.classes) if d.classes else found
    labels, hashes = vdata.validate_classification(records, classes, d.limits())
    keep, dropped = vdata.dedupe(hashes, labels)
    labels = [labels[i] for i in keep]
    counts = np.bincount(labels, minlength=len(classes))
    if (counts < d.min_per_class).any():
        few = [f"{classes[i]}={counts[i]}" for i in np.flatnonzero(counts < d.min_per_class)]
        raise UserError(f"class(es) with fewer than data.min_per_class={d.min_per_class} images: {few[:10]}")
    idx = vdata.split_indices(len(keep), d.test_fraction, d.valid_fraction, d.seed, stratify=labels)
    vdata.check_splits(idx, need_valid=d.valid_fraction > 0)
    splits = {s: [{"image": records[keep[i]][0], "label": labels[i]} for i in ix] for s, ix in idx.items()}
    manifest = write_manifest(cfg, classes, splits, {"duplicates_dropped": dropped},
                              [hashes[i] for i in keep])
    log.info("classification data: %d classes, %s, %d duplicate files dropped",
             len(classes), manifest["counts"], dropped)
    return {"classes": len(classes), "counts": manifest["counts"], "duplicates_dropped": dropped}


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


def train(cfg) -> dict:
    """Train on the train split (early stopping on valid), then score the test split."""
    seed_everything(cfg.train.seed)
    manifest = load_manifest(cfg, preprocess)
    return train_run(cfg, manifest, build_classifier(cfg.model, len(manifest["classes"])), ClassifyTask(cfg.loss.label_smoothing), train_preset(cfg),
                     eval_preset(cfg), evaluate, "Image classifier")


def load_model(run: Path, cfg) -> torch.nn.Module:
    model = build_classifier(cfg.model.model_copy(update={"weights": "none"}), len(read_json(run / "labels.json")))
    return load_weights(model, run / "model.safetensors").eval()


def _scored(model, ds, cfg) -> tuple[np.ndarray, np.ndarray]:
    probs: list[np.ndarray] = []

    class _Collect:  # evaluate_model gives us the fit-identical loader, device and precision
        def evaluate(self, m, loader):
            for batch in loader:
                probs.append(torch.softmax(m(batch["image"]).double(), 1).cpu().numpy())
            return {}

    evaluate_model(model, _Collect(), ds, cfg.train)
    labels = np.array([int(r["label"]) for r in ds.records])
    return labels, np.concatenate(probs)


def svm_baseline(manifest: dict, test_records: list[dict], side: int = 8) -> float:
    """An RBF SVM on grey pixels resized to ``side``² (the classic digits baseline), same split."""
    from sklearn.svm import SVC

    def features(records):
        return np.stack([np.asarray(Image.open(r["image"]).convert("L").resize((side, side), Image.BILINEAR),
                                    dtype=np.float32).ravel() / 255 for r in records])

    train_recs = manifest["splits"]["train"] + manifest["splits"]["valid"]
    svm = SVC(kernel="rbf", gamma="scale", C=10).fit(features(train_recs), [r["label"] for r in train_recs])
    return float((svm.predict(features(test_records)) == np.array([r["label"] for r in test_records])).mean())


def evaluate(cfg, run: str | None = None, data: str | None = None, model: torch.nn.Module | None = None) -> dict:
    """Test-split (or ``--data`` folder/CSV) accuracy, top-k, per-class P/R/F1, confusion matrix,
    the grid of the most confident mistakes, and the SVM baseline on the same split."""
    run_dir = resolve(cfg, run)
    classes = read_json(run_dir / "labels.json")
    manifest = load_manifest(cfg, preprocess)
    split = "test" if data is None else "data"
    if data is None:
        records = manifest["splits"]["test"]
    else:
        _, raw = vdata.classification_records("csv" if data.endswith(".csv") else "folder", data)
        labels, _ = vdata.validate_classification(raw, classes, cfg.data.limits())
        records = [{"image": p, "label": y} for (p, _), y in zip(raw, labels)]
    ds = vdata.ImageDataset(records, eval_preset(cfg), cfg.data.limits(), cache=False)
    model = model if model is not None else load_model(run_dir, cfg)
    y, proba = _scored(model, ds, cfg)
    values = multiclass_classification(y, proba, classes, top_k=cfg.eval.top_k)
    if cfg.eval.svm_baseline and data is None:
        t0 = time.perf_counter()
        values["baseline_svm_accuracy"] = svm_baseline(manifest, records)
        values["baseline_svm_seconds"] = time.perf_counter() - t0
    plots.confusion_matrix(confusion(y, proba.argmax(1), len(classes)), classes, run_dir / f"confusion_{split}.png")
    pred = proba.argmax(1)
    wrong = np.flatnonzero(pred != y)
    worst = wrong[np.argsort(-proba[wrong, pred[wrong]])][: cfg.eval.worst]
    mistakes_grid([np.asarray(read_image(records[i]["image"])) for i in worst], [classes[y[i]] for i in worst],
                  [classes[pred[i]] for i in worst], [float(proba[i, pred[i]]) for i in worst],
                  run_dir / f"mistakes_{split}.png")
    metrics = update_metrics(run_dir, with_split(split, values))
    return {k: v for k, v in metrics.items() if k.startswith(f"{split}/") and "/" not in k[len(split) + 1:]}


def predict_images(engine, images: list[np.ndarray], cfg, classes: list[str], top_k: int = 3) -> list[dict]:
    """Decoded ``HxWx3`` images → ``{"label", "probability", "top": [...]}`` each (shared with the server)."""
    preset = eval_preset(cfg)
    logits = batched(engine, [preset(im) for im in images])
    proba = torch.softmax(torch.from_numpy(logits).float(), 1).numpy()
    out = []
    for p in proba:
        order = np.argsort(-p)[: max(1, min(top_k, len(classes)))]
        out.append({"label": classes[order[0]], "probability": float(p[order[0]]),
                    "top": [{"label": classes[j], "probability": float(p[j])} for j in order]})
    return out


def predict(cfg, run: str | None, input_path: str | None, output: str | None) -> dict:
    """Label every image of ``--input`` with the served backend; JSON lines to ``--output``."""
    run_dir = resolve(cfg, run)
    classes = read_json(run_dir / "labels.json")
    engine = build_engine(run_dir, lambda: load_model(run_dir, cfg), cfg.serve, lambda: export(cfg, str(run_dir)))
    files = list_inputs(input_path)
    rows = []
    for start in range(0, len(files), 64):
        chunk = files[start:start + 64]
        images = [np.asarray(read_image(f, cfg.serve.limits())) for f in chunk]
        rows += [{"path": str(f), **r} for f, r in zip(chunk, predict_images(engine, images, cfg, classes))]
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    out = Path(output) if output and output != "-" else run_dir / "predictions.jsonl"
    if output == "-":
        print(text, end="")
    else:
        write_text(out, text)
    return {"images": len(rows), "output": "-" if output == "-" else str(out)}


def export(cfg, run: str | None) -> dict:
    """``model.onnx`` and ``model.int8.onnx`` (int8 calibrated on validation images) in the run."""
    run_dir = resolve(cfg, run)
    manifest = load_manifest(cfg, preprocess)
    recs = (manifest["splits"]["valid"] or manifest["splits"]["train"])[:64]
    ds = vdata.ImageDataset(recs, eval_preset(cfg), cfg.data.limits(), cache=False)
    calib = [torch.stack([ds[i]["image"] for i in range(j, min(j + 16, len(ds)))]) for j in range(0, len(ds), 16)]
    return export_model(load_model(run_dir, cfg), run_dir, cfg.augment.size, calib)

