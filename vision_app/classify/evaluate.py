"""Scoring a classification run: accuracy, top-k, per-class precision/recall/F1, log loss, the
confusion matrix, a grid of the most confident mistakes, and an RBF SVM on the same split.

The model runs on the backend ``serve:`` names (``evaluate serve.backend=onnx-int8`` scores the int8
export). ``train`` calls :func:`score` on the test split and returns the metrics (the run's
``metrics.json``); the ``evaluate`` stage writes to ``evaluations/test-split/`` or, for a ``--data``
file, ``evaluations/<stem>/`` (keys and folders: :mod:`vision_app.common.evaluation`).
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from shared import plots
from shared.inference import Runner
from shared.metrics import confusion, multiclass_classification, with_split
from shared.runs import evaluation_dir, read_json
from vision_app.classify.data import CsvColumns, eval_preset, labelled_records, preprocess
from vision_app.classify.export import export
from vision_app.classify.model import load_model
from vision_app.common.backend import dataset_logits, run_backend
from vision_app.common.data import ImageDataset
from vision_app.common.evaluation import split_name, summary, write_evaluation
from vision_app.common.figures import mistakes_grid
from vision_app.common.images import read_image
from vision_app.common.manifest import load_manifest


def svm_baseline(manifest: dict, test_records: list[dict], side: int = 8) -> float:
    """An RBF SVM on grey pixels resized to ``side``² (the classic digits baseline), same split."""
    from sklearn.svm import SVC

    def features(records):
        return np.stack([np.asarray(Image.open(r["image"]).convert("L").resize((side, side), Image.BILINEAR),
                                    dtype=np.float32).ravel() / 255 for r in records])

    train_recs = manifest["splits"]["train"] + manifest["splits"]["valid"]
    svm = SVC(kernel="rbf", gamma="scale", C=10).fit(features(train_recs), [r["label"] for r in train_recs])
    return float((svm.predict(features(test_records)) == np.array([r["label"] for r in test_records])).mean())


def score(cfg, run: Path, records: list[dict], runner: Runner, out_dir: Path, split: str,
          manifest: dict | None = None) -> dict:
    """Every metric of ``records`` as ``<split>/…`` keys; the confusion matrix and the mistakes
    grid go into ``out_dir``. ``manifest`` given: the SVM baseline is scored beside it."""
    classes = read_json(run / "labels.json")
    ds = ImageDataset(records, eval_preset(cfg), cfg.data.limits(), cache=False)
    logits = dataset_logits(runner, ds, cfg.train.eval_batch_size or cfg.train.batch_size)
    proba = torch.softmax(torch.from_numpy(logits).double(), 1).numpy()
    y = np.array([int(r["label"]) for r in records])
    values = {**multiclass_classification(y, proba, classes, top_k=cfg.eval.top_k), "images": float(len(records))}
    if cfg.eval.svm_baseline and manifest is not None:
        t0 = time.perf_counter()
        values["baseline_svm_accuracy"] = svm_baseline(manifest, records)
        values["baseline_svm_seconds"] = time.perf_counter() - t0
    pred = proba.argmax(1)
    plots.confusion_matrix(confusion(y, pred, len(classes)), classes, out_dir / f"confusion_{split}.png")
    wrong = np.flatnonzero(pred != y)
    worst = wrong[np.argsort(-proba[wrong, pred[wrong]])][: cfg.eval.worst]
    mistakes_grid([np.asarray(read_image(records[i]["image"])) for i in worst], [classes[y[i]] for i in worst],
                  [classes[pred[i]] for i in worst], [float(proba[i, pred[i]]) for i in worst],
                  out_dir / f"mistakes_{split}.png")
    return with_split(split, values)


def evaluate(cfg, run: Path, data: Path | None = None) -> dict:
    """Score the run on its test split (into ``evaluations/test-split/``), or on ``--data`` (a folder
    per class or a ``path,label`` CSV, into ``evaluations/<stem>/``), with the backend ``serve:``
    names; the run's own ``metrics.json`` is never written here."""
    runner = run_backend(cfg, run, lambda: load_model(run, cfg), lambda: export(cfg, run))
    out = evaluation_dir(run, data)
    if data is None:
        manifest = load_manifest(cfg, preprocess)
        metrics = score(cfg, run, manifest["splits"]["test"], runner, out, split_name(cfg), manifest)
    else:
        records = labelled_records(Path(data), read_json(run / "labels.json"), cfg.data.limits(), CsvColumns.of(cfg.data))
        metrics = score(cfg, run, records, runner, out, split_name(cfg, "data"))
    write_evaluation(out, metrics)
    return summary(metrics, out)
