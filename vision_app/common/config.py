"""Typed recipes for the vision tasks. The YAML's ``task:`` key picks the model class
(:data:`vision_app.tasks.TASKS`); each has ``name``, ``task``, ``data``, ``model``, ``augment``,
``train`` (:class:`shared.training.LoopConfig`), ``eval`` and ``serve``.
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from shared.config import StrictModel
from shared.serving import ServeConfig
from shared.loop_config import LoopConfig
from vision_app.images import ImageLimits
from vision_app.transforms import IMAGENET_MEAN, IMAGENET_STD


class AugmentConfig(StrictModel):
    """Input size and the training augmentation (the eval preset only resizes to ``size``)."""

    size: int = Field(224, ge=8)
    scale_min: float = Field(0.7, gt=0, le=1)  # random resized crop keeps this much area or more
    rotation: float = Field(0.0, ge=0, le=180)  # degrees, uniform in ±rotation
    hflip: float = Field(0.5, ge=0, le=1)
    vflip: float = Field(0.0, ge=0, le=1)
    jitter: float = Field(0.0, ge=0, le=1)  # colour jitter strength
    mean: list[float] = Field(default_factory=lambda: list(IMAGENET_MEAN), min_length=3, max_length=3)
    std: list[float] = Field(default_factory=lambda: list(IMAGENET_STD), min_length=3, max_length=3)


class ImageLimitsConfig(StrictModel):
    max_image_bytes: int = Field(20_000_000, ge=1024)
    max_image_pixels: int = Field(40_000_000, ge=64)

    def limits(self) -> ImageLimits:
        return ImageLimits(self.max_image_bytes, self.max_image_pixels)


class VisionServeConfig(ServeConfig):
    """``serve:``: the shared server settings plus the image limits and the inference backend."""

    max_body_bytes: int = Field(40_000_000, ge=1024)
    max_image_bytes: int = Field(8_000_000, ge=1024)
    max_image_pixels: int = Field(25_000_000, ge=64)  # decompression-bomb guard, checked before decoding
    max_images: int = Field(32, ge=1)  # per request
    # onnx-int8: the run's statically quantised model.int8.onnx (classify / segment; `export` writes it)
    backend: Literal["torch", "onnx", "onnx-int8"] = "torch"
    precision: Literal["fp32", "bf16"] = "fp32"  # torch backend on CPU: bf16 autocast + channels_last
    threads: int | None = Field(None, ge=1)  # intra-op threads for inference; None = library default

    def limits(self) -> ImageLimits:
        return ImageLimits(self.max_image_bytes, self.max_image_pixels)


# ---------------------------------------------------------------- classification
class ClassifyData(ImageLimitsConfig):
    """``digits``: scikit-learn's 8×8 digits written once as PNGs in the ImageFolder layout.
    ``folder``: ``path/<class>/<image>``. ``csv``: a file of ``path,label`` rows (paths relative
    to the CSV's folder)."""

    source: Literal["digits", "folder", "csv"] = "digits"
    path: str | None = None
    classes: list[str] | None = None  # the allowed labels, in index order; None: the labels found
    test_fraction: float = Field(0.2, gt=0, lt=1)
    valid_fraction: float = Field(0.1, ge=0, lt=1)  # of the whole set, taken from the non-test part
    seed: int = 0
    min_per_class: int = Field(2, ge=1)

    @model_validator(mode="after")
    def _path_needed(self) -> ClassifyData:
        if self.source != "digits" and not self.path:
            raise ValueError(f"data.path is required when data.source is {self.source!r}")
        if self.test_fraction + self.valid_fraction >= 1:
            raise ValueError("test_fraction + valid_fraction must stay below 1")
        return self


class ClassifyModel(StrictModel):
    arch: Literal["resnet18", "resnet34", "resnet50", "vgg11", "smallcnn"] = "resnet18"
    small_input: bool = False  # 3x3 stride-1 stem and no max-pool: for images of 64 px or less
    # none (random init) | imagenet (torchvision's download; needs the network) | a local .safetensors/.pth
    weights: str = "none"
    dropout: float = Field(0.0, ge=0, lt=1)


class ClassifyLoss(StrictModel):
    label_smoothing: float = Field(0.0, ge=0, lt=1)  # cross-entropy label smoothing


class ClassifyEval(StrictModel):
    top_k: list[int] = Field(default_factory=lambda: [3])
    worst: int = Field(25, ge=0)  # mistakes in the grid of worst errors
    svm_baseline: bool = True  # also score an RBF SVM on the raw pixels of the same split


class ClassifyConfig(StrictModel):
    name: str = "classify"
    task: Literal["classify"] = "classify"
    data: ClassifyData = Field(default_factory=ClassifyData)
    model: ClassifyModel = Field(default_factory=ClassifyModel)
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    loss: ClassifyLoss = Field(default_factory=ClassifyLoss)
    train: LoopConfig = Field(default_factory=lambda: LoopConfig(monitor="accuracy"))
    eval: ClassifyEval = Field(default_factory=ClassifyEval)
    serve: VisionServeConfig = Field(default_factory=VisionServeConfig)


# ---------------------------------------------------------------- segmentation
class SegmentData(ImageLimitsConfig):
    """``shapes``: the generated set (:mod:`vision_app.shapes`). ``folder``: ``path/images/*``,
    ``path/masks/<same stem>.png`` and ``path/classes.json`` (or ``classes:`` here); an optional
    ``path/split.json`` fixes the split, otherwise it is drawn with ``seed``."""

    source: Literal["shapes", "folder"] = "shapes"
    path: str | None = None
    classes: list[str] | None = None
    n_images: int = Field(600, ge=3)  # shapes only
    image_size: int = Field(64, ge=16)  # shapes only
    test_fraction: float = Field(0.15, gt=0, lt=1)
    valid_fraction: float = Field(0.15, ge=0, lt=1)
    seed: int = 0

    @model_validator(mode="after")
    def _path_needed(self) -> SegmentData:
        if self.source == "folder" and not self.path:
            raise ValueError("data.path is required when data.source is 'folder'")
        return self


class SegmentModel(StrictModel):
    arch: Literal["unet", "unet_resnet18"] = "unet"
    depth: int = Field(4, ge=1, le=6)  # down-sampling steps
    width: int = Field(32, ge=4)  # channels of the first level; doubled at each step down
    weights: str = "none"  # unet_resnet18 encoder: none | imagenet | a local file


class SegmentLoss(StrictModel):
    """Pixel-wise cross-entropy plus ``dice_weight`` × soft Dice loss (macro over classes): the Dice
    term counts each class equally, so small foreground classes are not drowned by background."""

    dice_weight: float = Field(0.0, ge=0)


class SegmentEval(StrictModel):
    overlays: int = Field(8, ge=0)  # test images drawn with prediction beside ground truth


class SegmentConfig(StrictModel):
    name: str = "segment"
    task: Literal["segment"] = "segment"
    data: SegmentData = Field(default_factory=SegmentData)
    model: SegmentModel = Field(default_factory=SegmentModel)
    augment: AugmentConfig = Field(default_factory=lambda: AugmentConfig(size=64))
    loss: SegmentLoss = Field(default_factory=SegmentLoss)
    train: LoopConfig = Field(default_factory=lambda: LoopConfig(monitor="mean_iou"))
    eval: SegmentEval = Field(default_factory=SegmentEval)
    serve: VisionServeConfig = Field(default_factory=VisionServeConfig)
