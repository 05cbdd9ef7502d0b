"""The vision tasks, by the recipe's ``task:`` key: one :class:`shared.tasks.Task` each, an explicit
dict (a new task is one more entry here and one more folder beside ``classify/``)."""
from __future__ import annotations

from shared.tasks import Task
from vision_app.classify import data as classify_data
from vision_app.classify import evaluate as classify_evaluate
from vision_app.classify import export as classify_export
from vision_app.classify import predict as classify_predict
from vision_app.classify import train as classify_train
from vision_app.classify.config import ClassifyConfig
from vision_app.classify.serve import ClassifyPredictor
from vision_app.detect import data as detect_data
from vision_app.detect import evaluate as detect_evaluate
from vision_app.detect import export as detect_export
from vision_app.detect import predict as detect_predict
from vision_app.detect import train as detect_train
from vision_app.detect.config import DetectConfig
from vision_app.detect.serve import DetectPredictor
from vision_app.segment import data as segment_data
from vision_app.segment import evaluate as segment_evaluate
from vision_app.segment import export as segment_export
from vision_app.segment import predict as segment_predict
from vision_app.segment import train as segment_train
from vision_app.segment.config import SegmentConfig
from vision_app.segment.serve import SegmentPredictor

TASKS: dict[str, Task] = {
    "classify": Task(
        config=ClassifyConfig, help="image classification (a folder per class, a path,label CSV, or digits)",
        preprocess=classify_data.preprocess, train=classify_train.train, evaluate=classify_evaluate.evaluate,
        predict=classify_predict.predict, export=classify_export.export, predictor=ClassifyPredictor.from_run),
    "segment": Task(
        config=SegmentConfig, help="semantic segmentation (images with class-id masks, or generated shapes)",
        preprocess=segment_data.preprocess, train=segment_train.train, evaluate=segment_evaluate.evaluate,
        predict=segment_predict.predict, export=segment_export.export, predictor=SegmentPredictor.from_run),
    "detect": Task(
        config=DetectConfig, help="object detection (COCO / VOC / YOLO boxes, or generated shapes)",
        preprocess=detect_data.preprocess, train=detect_train.train, evaluate=detect_evaluate.evaluate,
        predict=detect_predict.predict, export=detect_export.export, predictor=DetectPredictor.from_run),
}
