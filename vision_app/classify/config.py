"""The classification recipe (``task: classify``, ``configs/vision_app/classify*.yaml``)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from shared.config import StrictModel
from shared.loop_config import LoopConfig
from vision_app.common.config import AugmentConfig, ImageLimitsConfig, VisionServeConfig


class ClassifyData(ImageLimitsConfig):
    """``digits``: scikit-learn's 8×8 digits written once as PNGs in the ImageFolder layout.
    ``folder``: ``path/<class>/<image>``, or ``path/{train,val,test}/<class>/<image>`` (the data's
    own split). ``csv``: a file of ``path,label[,split]`` rows (paths relative to the CSV's folder,
    or to ``images_dir``); other column names (Kaggle's ``image_id,label``, HAM10000's
    ``image_id,dx``) by ``path_column``/``label_column``; a path without an image suffix finds the
    image of that name (``ISIC_0024306`` → ``ISIC_0024306.jpg``)."""

    source: Literal["digits", "folder", "csv"] = "digits"
    path: str | None = None
    path_column: str = "path"  # csv: the column of image paths (or names)
    label_column: str = "label"  # csv: the column of class labels
    images_dir: str | None = None  # csv: the folder its paths are relative to (default: the CSV's own)
    # auto: the data's own split when it has one (train/ val/ test/ folders, a CSV split column; a
    # split it lacks is carved out of train by the fractions below); random: ignore it, split at random
    split: Literal["auto", "random"] = "auto"
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
