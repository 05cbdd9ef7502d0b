"""The vision tasks, by the YAML's ``task:`` key: its config model and its stage functions.

An explicit dict, no lookup by string magic: a new task (``detect``) adds one entry here.
Stage signatures: ``preprocess(cfg)``, ``train(cfg)``, ``evaluate(cfg, run, data)``,
``predict(cfg, run, input, output)``, ``export(cfg, run)``, ``predictor(cfg, run)`` (what the
server runs; a :class:`shared.serving.Predictor`). Each returns a small JSON-able dict.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from pydantic import BaseModel

from vision_app import classify, segment, serve
from vision_app.config import ClassifyConfig, SegmentConfig
from vision_app.detection import data as detect_data
from vision_app.detection import export as detect_export
from vision_app.detection import predict as detect_predict
from vision_app.detection import serve as detect_serve
from vision_app.detection import train as detect_train
from vision_app.detection.config import DetectConfig


@dataclass(frozen=True)
class VisionTask:
    config: type[BaseModel]
    preprocess: Callable
    train: Callable
    evaluate: Callable
    predict: Callable
    export: Callable
    predictor: Callable


TASKS: dict[str, VisionTask] = {
    "classify": VisionTask(ClassifyConfig, classify.preprocess, classify.train, classify.evaluate,
                           classify.predict, classify.export, serve.ClassifyPredictor.from_run),
    "segment": VisionTask(SegmentConfig, segment.preprocess, segment.train, segment.evaluate,
                          segment.predict, segment.export, serve.SegmentPredictor.from_run),
    "detect": VisionTask(DetectConfig, detect_data.preprocess, detect_train.train, detect_predict.evaluate,
                         detect_predict.predict, detect_export.export, detect_serve.DetectPredictor.from_run),
}
