"""The typed recipe of a detection run (``configs/vision_app/detect*.yaml``)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from shared.config import StrictModel
from shared.loop_config import LoopConfig
from vision_app.common.config import VisionServeConfig


class DetectData(StrictModel):
    """Where the images and boxes come from. ``format: shapes`` generates the embedded demo set."""

    format: Literal["shapes", "coco", "voc", "yolo"] = "shapes"
    # with data.images: coco: the JSON file; voc: folder of .xml; yolo: folder of .txt. Alone: an
    # export's folder, its parts and split found (vision_app/detect/layouts.py): coco: a JSON or a
    # Roboflow / COCO 2017 / CVAT / Label Studio export; voc: a devkit or Roboflow's train/ valid/
    # test/ of images + .xml; yolo: Ultralytics images/ + labels/ or Roboflow's train/images + labels
    annotations: str | None = None
    images: str | None = None  # folder the annotations' file names are relative to
    # yolo: names or a classes.txt / data.yaml (without data.images: the set's own when not given);
    # voc: fixes the order
    classes: list[str] | str | None = None
    # the split: a JSON {"train": [file names], "valid": [...], "test": [...]}, or a mapping
    # split -> a .txt (one file name per line) or .csv (a 'filename' column); names match with or
    # without their extension (VOC's ImageSets/Main/*.txt), split names train|trainval, val|valid,
    # test. Missing splits are carved out of what is left at random (seeded), as is everything when
    # this is null, unless a VOC set has ImageSets/Main/{train,val,test}.txt beside its annotations
    split: str | dict[str, str] | None = None
    # a box outside its image, zero-area, inverted or not a number: error (list every one and stop),
    # drop (leave them out), clip (clip into the image; what is still empty is left out)
    bad_boxes: Literal["error", "drop", "clip"] = "error"
    valid_fraction: float = Field(0.15, ge=0, lt=1)
    test_fraction: float = Field(0.15, ge=0, lt=1)
    seed: int = 0
    shapes_images: int = Field(600, ge=3)  # format: shapes only
    shapes_size: int = Field(128, ge=32)
    shapes_max_objects: int = Field(4, ge=1)

    @model_validator(mode="after")
    def _paths_given(self) -> DetectData:
        if self.format != "shapes" and not self.annotations:
            raise ValueError(f"format {self.format} needs data.annotations (with data.images, or an export's folder)")
        if self.format == "yolo" and self.images and not self.classes:
            raise ValueError("format yolo with data.images needs data.classes (a list of names or a classes.txt file)")
        return self


class DetectModel(StrictModel):
    arch: Literal["yolo", "fasterrcnn"] = "yolo"
    # yolo: csp | resnet18 | resnet34 | resnet50; fasterrcnn: resnet18 | resnet34 | mobilenet_v3 | resnet50
    backbone: str = "csp"
    input_size: int = Field(128, ge=32, multiple_of=32)  # every image is letterboxed to this square
    width: int = Field(16, ge=4)  # yolo csp backbone: channels of the first stage
    depth: int = Field(1, ge=1)  # yolo: residual pairs per CSP block
    neck_width: int = Field(64, ge=8)  # yolo: channels of the pyramid and heads
    # fasterrcnn: anchor sizes in input pixels, one per pyramid level (resnet18/34: 4 levels;
    # resnet50, mobilenet_v3: 5); null keeps torchvision's (32 px and up: too big for small images)
    anchor_sizes: tuple[int, ...] | None = None
    # a local .safetensors / .pt state_dict of the whole detector, or a torchvision weights enum
    # name (e.g. COCO_V1; fasterrcnn only); null = random initialisation
    weights: str | None = None
    backbone_weights: str | None = None  # a torchvision enum name such as IMAGENET1K_V1; null = random
    score_thresh: float = Field(0.05, ge=0, le=1)  # detections below are dropped before NMS
    nms_iou: float = Field(0.6, gt=0, le=1)
    max_detections: int = Field(100, ge=1)

    @field_validator("weights", "backbone_weights")
    @classmethod
    def _none_means_random(cls, v: str | None) -> str | None:
        return None if v is None or v.strip().lower() in ("", "none", "random") else v


class DetectTrainAug(StrictModel):
    hflip: float = Field(0.5, ge=0, le=1)
    scale: tuple[float, float] = (0.6, 1.4)  # random zoom of the letterboxed image
    jitter: float = Field(0.2, ge=0)  # colour jitter strength


class DetectEval(StrictModel):
    draw_images: int = Field(8, ge=0)  # test images drawn with true and predicted boxes
    draw_score_thresh: float = Field(0.3, ge=0, le=1)


class DetectServeConfig(VisionServeConfig):
    backend: Literal["torch", "onnx"] = "torch"  # onnx: the yolo detector only; no int8 detector


class DetectConfig(StrictModel):
    name: str = "detect"
    task: Literal["detect"] = "detect"
    data: DetectData = DetectData()
    model: DetectModel = DetectModel()
    augment: DetectTrainAug = DetectTrainAug()
    train: LoopConfig = LoopConfig(monitor="map_50", epochs=30, batch_size=16, lr=2e-3, weight_decay=5e-4,
                                   schedule="cosine", warmup_ratio=0.05, clip_grad_norm=10.0)
    eval: DetectEval = DetectEval()
    serve: DetectServeConfig = DetectServeConfig(max_batch_size=8)
