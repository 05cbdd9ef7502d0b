"""The embedded segmentation/detection data: coloured shapes on textured, noisy backgrounds.

``generate_shapes(out_dir, n_images, image_size=64, seed=0)`` writes, reproducibly for a seed::

    out_dir/images/00000.png      RGB image
    out_dir/masks/00000.png       palette PNG of class ids per pixel (0 = background)
    out_dir/instances/00000.png   instance index per pixel (0 = none, k = k-th object of that image)
    out_dir/classes.json          ["background", "circle", "rectangle", "triangle"]
    out_dir/annotations.json      COCO: images, annotations (bbox [x, y, w, h], category_id,
                                  polygon segmentation, area, iscrowd=0), categories (no background)
    out_dir/split.json            {"train": [file names], "valid": [...], "test": [...]}

Every shape is drawn from the same polygon into the image, the class mask and the instance map
(no anti-aliasing), so the three agree pixel for pixel. Shapes never overlap, so each polygon is
exactly its instance's visible region and ``bbox`` is the tight box around its pixels.
The generator is the only source of truth for the demo data; it runs once and the output is
cached on disk (see :func:`ensure_shapes`).
"""
from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from shared.runs import atomic_path, write_json

CLASSES = ["background", "circle", "rectangle", "triangle"]
# palette colours for the class masks (index 0 = background, black); viewers show them in colour
PALETTE = [0, 0, 0, 230, 25, 75, 60, 180, 75, 0, 130, 200, 245, 130, 48, 145, 30, 180, 70, 240, 240, 240, 50, 230]
SPLIT_FRACTIONS = {"train": 0.7, "valid": 0.15, "test": 0.15}
DONE_MARKER = "split.json"  # written last: its presence means the set is complete


def mask_palette() -> list[int]:
    """A 256-colour palette for class-mask PNGs (first few colours distinct, rest grey)."""
    pal = list(PALETTE)
    while len(pal) < 256 * 3:
        g = (len(pal) // 3 * 37) % 256
        pal += [g, g, g]
    return pal


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A smooth colour gradient plus low-frequency blobs and per-pixel noise, in [0, 255]."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    base = rng.uniform(40, 215, size=3)
    slope = rng.uniform(-50, 50, size=(2, 3))
    img = base + xx[..., None] * slope[0] + yy[..., None] * slope[1]
    coarse = rng.normal(0, 18, size=(size // 8 + 1, size // 8 + 1, 3))
    img = img + np.kron(coarse, np.ones((8, 8, 1)))[:size, :size]
    stripes = rng.uniform(0, 12) * np.sin(2 * math.pi * (xx * rng.uniform(1, 6) + yy * rng.uniform(1, 6)))
    img = img + stripes[..., None]
    return img


def _polygon(kind: str, cx: float, cy: float, r: float, angle: float) -> list[tuple[float, float]]:
    if kind == "circle":
        n, offsets = 32, [2 * math.pi * k / 32 for k in range(32)]
        return [(cx + r * math.cos(a), cy + r * math.sin(a)) for a in offsets[:n]]
    if kind == "rectangle":
        aspect = 0.55 + 0.45 * ((angle * 7.0) % 1.0)  # a deterministic aspect from the angle
        hw, hh = r, r * aspect
        corners = [(-hw, -hh), (hw, -hh), (hw, hh), (-hw, hh)]
    else:  # triangle
        corners = [(r * math.cos(a), r * math.sin(a)) for a in (-math.pi / 2, math.pi / 6, 5 * math.pi / 6)]
    c, s = math.cos(angle), math.sin(angle)
    return [(cx + x * c - y * s, cy + x * s + y * c) for x, y in corners]


def _bbox_overlaps(a, b, margin: float) -> bool:
    return not (a[2] + margin < b[0] or b[2] + margin < a[0] or a[3] + margin < b[1] or b[3] + margin < a[1])


def render_image(rng: np.random.Generator, size: int, max_shapes: int = 4):
    """One sample: ``(rgb uint8 HxWx3, class mask uint8 HxW, instance map uint8 HxW, objects)``
    where ``objects`` is a list of ``(class_id, polygon)`` in instance order."""
    img = _background(rng, size)
    mask = Image.new("L", (size, size), 0)
    inst = Image.new("L", (size, size), 0)
    objects: list[tuple[int, list[tuple[float, float]]]] = []
    boxes: list[tuple[float, float, float, float]] = []
    n_shapes = int(rng.integers(1, max_shapes + 1))
    for _ in range(n_shapes * 10):  # rejection sampling for non-overlapping shapes
        if len(objects) == n_shapes:
            break
        cls = int(rng.integers(1, len(CLASSES)))
        r = rng.uniform(0.09, 0.22) * size
        cx, cy = rng.uniform(r, size - r), rng.uniform(r, size - r)
        poly = _polygon(CLASSES[cls], cx, cy, r, float(rng.uniform(0, 2 * math.pi)))
        xs, ys = [p[0] for p in poly], [p[1] for p in poly]
        box = (min(xs), min(ys), max(xs), max(ys))
        if any(_bbox_overlaps(box, b, margin=2) for b in boxes):
            continue
        boxes.append(box)
        objects.append((cls, poly))
        k = len(objects)
        ImageDraw.Draw(mask).polygon(poly, fill=cls)
        ImageDraw.Draw(inst).polygon(poly, fill=k)
    inst_arr = np.asarray(inst)
    for k in range(1, len(objects) + 1):
        region = inst_arr == k
        if not region.any():
            continue
        bg_mean = img[region].mean(axis=0)
        colour = rng.uniform(0, 255, size=3)
        for _ in range(20):  # keep the shape visibly different from what is behind it
            if np.abs(colour - bg_mean).sum() > 150:
                break
            colour = rng.uniform(0, 255, size=3)
        img[region] = colour + rng.normal(0, 10, size=(int(region.sum()), 3))
    img = img + rng.normal(0, 8, size=img.shape)
    rgb = np.clip(img, 0, 255).astype(np.uint8)
    return rgb, np.asarray(mask, dtype=np.uint8), inst_arr.astype(np.uint8), objects


def _split_names(names: list[str], rng: np.random.Generator) -> dict[str, list[str]]:
    order = rng.permutation(len(names))
    n_train = round(SPLIT_FRACTIONS["train"] * len(names))
    n_valid = round(SPLIT_FRACTIONS["valid"] * len(names))
    picked = [names[i] for i in order]
    return {
        "train": sorted(picked[:n_train]),
        "valid": sorted(picked[n_train:n_train + n_valid]),
        "test": sorted(picked[n_train + n_valid:]),
    }


def generate_shapes(out_dir: str | Path, n_images: int, image_size: int = 64, seed: int = 0,
                    max_shapes: int = 4) -> Path:
    """Write the shapes data set to ``out_dir`` (layout in the module docstring); returns it.

    The same ``(n_images, image_size, seed, max_shapes)`` always gives the same files.
    """
    if n_images < 3:
        raise ValueError("n_images must be at least 3 (one per split)")
    out = Path(out_dir)
    for sub in ("images", "masks", "instances"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    images, annotations = [], []
    palette = mask_palette()
    for i in range(n_images):
        rgb, mask, inst, objects = render_image(rng, image_size, max_shapes)
        name = f"{i:05d}.png"
        _save_png(Image.fromarray(rgb, "RGB"), out / "images" / name)
        m = Image.fromarray(mask, "P")
        m.putpalette(palette)
        _save_png(m, out / "masks" / name)
        _save_png(Image.fromarray(inst, "L"), out / "instances" / name)
        images.append({"id": i + 1, "file_name": name, "width": image_size, "height": image_size})
        for k, (cls, poly) in enumerate(objects, start=1):
            ys, xs = np.nonzero(inst == k)
            if len(xs) == 0:
                continue
            x0, y0 = int(xs.min()), int(ys.min())
            w, h = int(xs.max()) - x0 + 1, int(ys.max()) - y0 + 1
            annotations.append({
                "id": len(annotations) + 1, "image_id": i + 1, "category_id": cls,
                "bbox": [x0, y0, w, h], "area": len(xs), "iscrowd": 0,
                "segmentation": [[round(c, 2) for p in poly for c in p]],
            })
    coco = {
        "info": {"description": "mlref shapes", "seed": seed, "image_size": image_size},
        "images": images,
        "annotations": annotations,
        "categories": [{"id": i, "name": n, "supercategory": "shape"} for i, n in enumerate(CLASSES) if i],
    }
    write_json(out / "classes.json", CLASSES)
    write_json(out / "annotations.json", coco)
    split = _split_names([im["file_name"] for im in images], np.random.default_rng(seed + 1))
    write_json(out / DONE_MARKER, split)
    return out


def _save_png(img: Image.Image, path: Path) -> None:
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG")


def ensure_shapes(out_dir: str | Path, n_images: int, image_size: int = 64, seed: int = 0,
                  max_shapes: int = 4) -> Path:
    """Generate the set into ``out_dir`` unless a complete one with the same parameters is there."""
    out = Path(out_dir)
    params = {"n_images": n_images, "image_size": image_size, "seed": seed, "max_shapes": max_shapes}
    stamp = out / "params.json"
    if (out / DONE_MARKER).exists() and stamp.exists() and json.loads(stamp.read_text()) == params:
        return out
    if out.exists():  # a set made with other parameters: replace it whole, never mix the two
        shutil.rmtree(out)
    generate_shapes(out, **params)
    write_json(stamp, params)
    return out
