"""Config sections every vision task shares: the input size and augmentation, the image limits
of a data section, and ``serve:`` (the shared server settings, image limits, inference backend).
Each task's own recipe model is in ``vision_app/<task>/config.py``.
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from shared.config import StrictModel
from shared.serving import ServeConfig
from vision_app.common.images import ImageLimits
from vision_app.common.transforms import IMAGENET_MEAN, IMAGENET_STD


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
    """``serve:``: the shared server settings (their limits enforced by the shared app factory) with
    image defaults, the per-image byte limit, and the inference backend."""

    max_body_bytes: int = Field(40_000_000, ge=1024)
    max_instances: int = Field(32, ge=1, description="images in one request")
    # width × height of one image, read from its header before decoding: a decompression bomb costs nothing
    max_item_cost: float | None = Field(25_000_000, gt=0, description="pixels in one image")
    # decoded pixels in one request (×3 bytes as RGB: 64 M pixels ≈ 190 MB), so a request of many
    # large images inside every per-image limit still cannot take the server's memory
    max_request_cost: float | None = Field(64_000_000, gt=0, description="pixels in all of a request's images")
    # after a request of this many pixels, the freed decode buffers go back to the OS (malloc_trim)
    release_memory_cost: float | None = Field(8_000_000, gt=0)
    max_image_bytes: int = Field(8_000_000, ge=1024)  # one image file, encoded
    # onnx-int8: the run's statically quantised model.int8.onnx (classify / segment; `export` writes it)
    backend: Literal["torch", "onnx", "onnx-int8"] = "torch"
    precision: Literal["fp32", "bf16"] = "fp32"  # torch backend on CPU: bf16 autocast + channels_last
    threads: int | None = Field(None, ge=1)  # intra-op threads for inference; None = library default

    @model_validator(mode="before")
    @classmethod
    def _renamed_keys(cls, data):
        # runs trained before the limits moved to the shared keys saved these names in config.yaml
        if isinstance(data, dict):
            data = dict(data)
            for old, new in (("max_images", "max_instances"), ("max_image_pixels", "max_item_cost")):
                if old in data:
                    data.setdefault(new, data.pop(old))
        return data

    def limits(self) -> ImageLimits:
        """What ``prepare`` (and ``predict``) decode an image under."""
        pixels = int(self.max_item_cost) if self.max_item_cost else ImageLimits.max_pixels
        return ImageLimits(self.max_image_bytes, pixels)
