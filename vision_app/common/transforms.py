"""Augmentation and eval presets on ``torchvision.transforms.v2``, one small class per task × mode.

A preset is called as ``preset(image)`` or ``preset(image, target)``. The image may be a PIL
image, an ``HxWxC`` uint8 array or a ``CxHxW`` tensor; the target is whatever the task has:

- a class mask (``HxW`` array/tensor, or a ``tv_tensors.Mask``) for segmentation,
- a dict ``{"boxes": tv_tensors.BoundingBoxes, "labels": tensor, "masks": ...}`` for detection,
- nothing (or an int label) for classification.

Geometric steps move the image, the mask and the boxes together (masks are resampled with
nearest-neighbour, so class ids stay class ids); colour steps touch the image only. The output
image is a normalised float tensor; the mask comes back as an int64 tensor. The eval preset of a
task is the one ``evaluate``, ``predict`` and the server use, so they see identical inputs.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image
from torchvision import tv_tensors
from torchvision.transforms import v2

from vision_app.common.images import VOID

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# mask value for pixels a geometric step invented (rotation corners) or the data marks void; the loss skips it
IGNORE_INDEX = VOID


def as_image(image: Any) -> tv_tensors.Image:
    """PIL image, ``HxWxC``/``HxW`` uint8 array or ``CxHxW`` tensor → ``tv_tensors.Image``."""
    if isinstance(image, tv_tensors.Image):
        return image
    if isinstance(image, Image.Image):
        image = np.asarray(image.convert("RGB"))
    if isinstance(image, np.ndarray):
        arr = image[..., None] if image.ndim == 2 else image
        return tv_tensors.Image(torch.from_numpy(np.array(arr, copy=True)).permute(2, 0, 1))  # PIL arrays are read-only
    if isinstance(image, torch.Tensor):
        return tv_tensors.Image(image)
    raise TypeError(f"cannot use {type(image).__name__} as an image")


def as_target(target: Any) -> Any:
    """Wrap a plain mask as ``tv_tensors.Mask`` (also inside a detection dict); pass the rest."""
    if target is None or isinstance(target, (int, tv_tensors.TVTensor)):
        return target
    if isinstance(target, np.ndarray):
        return tv_tensors.Mask(torch.from_numpy(target.astype(np.int64)))
    if isinstance(target, torch.Tensor):
        return tv_tensors.Mask(target.long())
    if isinstance(target, dict):
        out = dict(target)
        if "masks" in out and not isinstance(out["masks"], tv_tensors.Mask):
            out["masks"] = tv_tensors.Mask(torch.as_tensor(out["masks"]))
        return out
    return target


class Preset:
    """``steps`` (geometry and colour) followed by float conversion and normalisation."""

    def __init__(self, steps: Sequence[v2.Transform], mean: Sequence[float] = IMAGENET_MEAN,
                 std: Sequence[float] = IMAGENET_STD):
        self.mean, self.std = tuple(mean), tuple(std)
        self.pipeline = v2.Compose([
            *steps,
            v2.ToDtype({tv_tensors.Image: torch.float32, tv_tensors.Mask: torch.int64, "others": None}, scale=True),
            v2.Normalize(self.mean, self.std),
        ])

    def __call__(self, image: Any, target: Any = None):
        image = as_image(image)
        if target is None:
            return self.pipeline(image)
        return self.pipeline(image, as_target(target))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.pipeline})"


def _jitter(strength: float) -> list[v2.Transform]:
    if strength <= 0:
        return []
    return [v2.ColorJitter(brightness=strength, contrast=strength, saturation=strength, hue=min(0.5, strength / 4))]


def _geometry(size: int, scale: tuple[float, float], rotation: float, hflip: float, vflip: float,
              mask_fill: int) -> list[v2.Transform]:
    steps: list[v2.Transform] = []
    if rotation > 0:
        steps.append(v2.RandomRotation(rotation, fill={tv_tensors.Image: 0, tv_tensors.Mask: mask_fill, "others": 0}))
    steps.append(v2.RandomResizedCrop((size, size), scale=scale, ratio=(3 / 4, 4 / 3), antialias=True))
    if hflip > 0:
        steps.append(v2.RandomHorizontalFlip(hflip))
    if vflip > 0:
        steps.append(v2.RandomVerticalFlip(vflip))
    return steps


class ClassificationTrain(Preset):
    """Rotate, random resized crop to ``size``², flip, colour jitter."""

    def __init__(self, size: int, scale=(0.7, 1.0), rotation: float = 0.0, hflip: float = 0.5,
                 vflip: float = 0.0, jitter: float = 0.0, mean=IMAGENET_MEAN, std=IMAGENET_STD):
        super().__init__(_geometry(size, tuple(scale), rotation, hflip, vflip, 0) + _jitter(jitter), mean, std)


class ClassificationEval(Preset):
    """Resize to ``size``² (no crop: the whole image is seen)."""

    def __init__(self, size: int, mean=IMAGENET_MEAN, std=IMAGENET_STD):
        super().__init__([v2.Resize((size, size), antialias=True)], mean, std)


class SegmentationTrain(Preset):
    """As classification, with the mask moved along; pixels rotated in are ``IGNORE_INDEX``."""

    def __init__(self, size: int, scale=(0.5, 1.0), rotation: float = 0.0, hflip: float = 0.5,
                 vflip: float = 0.0, jitter: float = 0.0, mean=IMAGENET_MEAN, std=IMAGENET_STD):
        super().__init__(_geometry(size, tuple(scale), rotation, hflip, vflip, IGNORE_INDEX) + _jitter(jitter),
                         mean, std)


class SegmentationEval(Preset):
    """Resize image (antialiased) and mask (nearest) to ``size``²."""

    def __init__(self, size: int, mean=IMAGENET_MEAN, std=IMAGENET_STD):
        super().__init__([v2.Resize((size, size), antialias=True)], mean, std)


class Letterbox(v2.Transform):
    """Resize so the longer side is ``size`` (aspect kept), then pad right and bottom to ``size``².

    Anchoring the image top-left makes the way back trivial: a box on the letterboxed image, scaled
    by original / resized size (:func:`letterbox_size`), is in original pixels.
    """

    def __init__(self, size: int, fill: int = 114):
        super().__init__()
        self.size, self.fill = size, fill

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        from torchvision.transforms.v2._utils import query_size

        h, w = query_size(flat_inputs)
        new_w, new_h = letterbox_size(w, h, self.size)
        return {"size": (new_h, new_w), "padding": [0, 0, self.size - new_w, self.size - new_h]}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        out = self._call_kernel(v2.functional.resize, inpt, params["size"], antialias=True)
        fill = self.fill if isinstance(inpt, tv_tensors.Image) else 0
        return self._call_kernel(v2.functional.pad, out, params["padding"], fill=fill)


def letterbox_size(width: int, height: int, size: int) -> tuple[int, int]:
    """``(width, height)`` of a ``width`` × ``height`` image inside :class:`Letterbox` ``(size)``'s square."""
    scale = size / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


class DetectionTrain(Preset):
    """Colour jitter, horizontal flip, resize to ``size``²; boxes follow, and boxes that became
    degenerate are dropped with their labels (``SanitizeBoundingBoxes``).

    With ``letterbox=True`` the aspect ratio is kept instead: the longer side is scaled to
    ``size`` × a random factor from ``scale``, and a random ``size``² window is cut (a crop when
    the image is larger, a randomly placed letterbox pad when smaller)."""

    def __init__(self, size: int, hflip: float = 0.5, jitter: float = 0.0, mean=IMAGENET_MEAN, std=IMAGENET_STD,
                 letterbox: bool = False, scale: tuple[float, float] = (1.0, 1.0)):
        steps = _jitter(jitter) + ([v2.RandomHorizontalFlip(hflip)] if hflip > 0 else [])
        if letterbox:
            steps += [v2.ScaleJitter((size, size), tuple(scale)),
                      v2.RandomCrop(size, pad_if_needed=True, fill={tv_tensors.Image: 114, "others": 0})]
        else:
            steps += [v2.Resize((size, size), antialias=True)]
        steps += [v2.SanitizeBoundingBoxes()]
        super().__init__(steps, mean, std)


class DetectionEval(Preset):
    """Resize to ``size``² (or :class:`Letterbox` it with ``letterbox=True``); boxes are rescaled with the image."""

    def __init__(self, size: int, mean=IMAGENET_MEAN, std=IMAGENET_STD, letterbox: bool = False):
        super().__init__([Letterbox(size) if letterbox else v2.Resize((size, size), antialias=True)], mean, std)


def denormalize(image: torch.Tensor, mean: Sequence[float] = IMAGENET_MEAN,
                std: Sequence[float] = IMAGENET_STD) -> np.ndarray:
    """A normalised ``CxHxW`` tensor back to an ``HxWx3`` uint8 array (for plots and overlays)."""
    m = torch.tensor(mean).view(-1, 1, 1)
    s = torch.tensor(std).view(-1, 1, 1)
    x = (image.detach().float().cpu() * s + m).clamp(0, 1)
    if x.shape[0] == 1:
        x = x.expand(3, -1, -1)
    return (x.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
