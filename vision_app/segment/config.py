"""The segmentation recipe (``task: segment``, ``configs/vision_app/segment*.yaml``)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from shared.config import StrictModel
from shared.loop_config import LoopConfig
from vision_app.common.config import AugmentConfig, ImageLimitsConfig, VisionServeConfig


class SegmentData(ImageLimitsConfig):
    """``shapes``: the generated set (:mod:`vision_app.common.shapes`). ``folder``: ``path/images/*``,
    ``path/masks/<same stem><mask_suffix>.<ext>`` and ``path/classes.json`` (or ``classes:`` here);
    an optional ``path/split.json`` fixes the split, otherwise it is drawn with ``seed``.
    ``coco`` / ``yolo``: polygons (and COCO RLE) drawn into masks
    (:mod:`vision_app.segment.polygon_masks`); a set's own split folders or files are its split."""

    # coco: path is a COCO .json or an export's folder (Roboflow train/_annotations.coco.json,
    # COCO annotations/instances_train2017.json); yolo: an Ultralytics YOLO-seg folder (data.yaml,
    # images/{train,val}, labels/{train,val})
    source: Literal["shapes", "folder", "coco", "yolo"] = "shapes"
    path: str | None = None
    classes: list[str] | None = None  # background first; coco/yolo: fixes the order of the file's classes
    image_folder: str = "images"  # folder only: the sub-folders of path (PennFudan: PNGImages, PedMasks)
    mask_folder: str = "masks"
    mask_suffix: str = ""  # image cat.jpg -> mask cat<suffix>.png, e.g. "_mask"
    # class_ids: pixel values are class ids; nonzero_foreground: anything not 0/black is the one
    # foreground class; instances: 0 = background, one id per object, all of them the one foreground
    # class (both: classes default to [background, foreground])
    mask_mode: Literal["class_ids", "nonzero_foreground", "instances"] = "class_ids"
    # class_ids masks whose pixel values are not the ids: value -> class id (255 = void), every value
    # the masks hold listed; Oxford-IIIT Pet trimaps (1 pet, 2 background, 3 border): {1: 1, 2: 0, 3: 255}
    mask_values: dict[int, int] = Field(default_factory=dict)
    n_images: int = Field(600, ge=3)  # shapes only
    image_size: int = Field(64, ge=16)  # shapes only
    test_fraction: float = Field(0.15, gt=0, lt=1)
    valid_fraction: float = Field(0.15, ge=0, lt=1)
    seed: int = 0

    @model_validator(mode="after")
    def _path_needed(self) -> SegmentData:
        if self.source != "shapes" and not self.path:
            raise ValueError(f"data.path is required when data.source is '{self.source}'")
        if self.source in ("coco", "yolo") and self.mask_mode != "class_ids":
            raise ValueError(f"data.source={self.source} draws class-id masks: leave data.mask_mode at class_ids")
        if self.mask_values and (self.source != "folder" or self.mask_mode != "class_ids"):
            raise ValueError("data.mask_values maps the pixel values of data.source=folder masks read as "
                             "class_ids; leave it empty here")
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
