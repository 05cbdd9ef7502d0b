"""Segmentation from the polygons labelling tools export: ``data.source: coco`` (COCO JSON polygons
or RLE: Roboflow, CVAT, Label Studio, COCO itself) and ``data.source: yolo`` (Ultralytics YOLO-seg
``class x1 y1 x2 y2 …`` lines), drawn into class-id mask PNGs so the image + mask pipeline of
:mod:`vision_app.segment.data` runs on them unchanged.

Mask ids: 0 is background, then the file's classes (COCO categories by id, YOLO indices + 1), or
their places in ``data.classes`` (background first) when it is given. Where objects overlap the
smaller one is drawn on top (largest first; equal sizes in file order), so an object inside
another stays visible. COCO ``iscrowd`` regions are :data:`VOID` (255: left out of the loss and the
metrics) where no ordinary object covers them. Polygons are filled with ``PIL.ImageDraw.polygon``;
RLE (uncompressed counts, or the compressed string) is decoded by ``faster_coco_eval``.

The masks are written, atomically, under the data cache ``data/cache/vision_app/segment-masks-<hash
of data.source, data.path, data.classes>/`` and redrawn each time ``preprocess`` (or ``evaluate
--data``) reads the annotations.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from shared.errors import UserError
from shared.runs import cache_dir, write_bytes
from vision_app.common.annotations import (
    CocoFile,
    coco_layout,
    header_size,
    merged_names,
    read_classes_file,
    read_coco_file,
    yolo_layout,
    yolo_lines,
    yolo_names_file,
    yolo_pairs,
)
from vision_app.common.images import VOID, encode_png
from vision_app.common.shapes import mask_palette

APP = "vision_app"
Records = tuple[list[str], list[tuple[str, str]], dict[str, list[int]] | None]


def drawn_masks(data) -> Records:
    """``(class names, [(image path, mask path), …], the set's own split or None)`` for
    ``data.source`` ``coco`` or ``yolo``, the masks drawn into the cache first."""
    key = {"source": data.source, "path": str(Path(data.path).resolve()), "classes": data.classes}
    out = cache_dir(APP, "segment-masks", key)
    return read_coco_masks(data.path, data.classes, out) if data.source == "coco" else \
        read_yolo_masks(data.path, data.classes, out)


def mask_ids(names: list[str], classes: list[str] | None, where: str) -> tuple[list[str], list[int]]:
    """The class list and each file class's mask id: ``[background, *names]`` and 1..N, or, with
    ``classes`` (background first), each name's place in it."""
    if classes is None:
        classes = ["background", *names]
    index = {name: i for i, name in enumerate(classes)}
    unknown = [n for n in names if n not in index]
    if unknown:
        raise UserError(f"{where}: class(es) {unknown} are not in the class list {list(classes)} (data.classes, or "
                        "the model's classes for evaluate --data)")
    if len(classes) > VOID:
        raise UserError(f"{where}: {len(classes)} classes; masks hold at most {VOID} (ids 0..{VOID - 1})")
    return list(classes), [index[n] for n in names]


def paint(width: int, height: int, objects: list[tuple[int, np.ndarray]], crowd: list[np.ndarray]) -> np.ndarray:
    """A class-id mask: each ``(id, region)`` of ``objects``, largest first (the smaller on top),
    then every ``crowd`` region as :data:`VOID` where no object is."""
    mask = np.zeros((height, width), np.uint8)
    for cls, region in sorted(objects, key=lambda o: -int(o[1].sum())):  # stable: equal sizes in file order
        mask[region] = cls
    for region in crowd:
        mask[region & (mask == 0)] = VOID
    return mask


def polygons_region(polygons: list[list[float]], width: int, height: int) -> np.ndarray:
    """The pixels covered by any of ``polygons`` (each ``[x1, y1, x2, y2, …]`` in pixels)."""
    canvas = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    for poly in polygons:
        draw.polygon(list(zip(poly[::2], poly[1::2])), fill=1)
    return np.asarray(canvas, dtype=bool)


def check_points(poly: list[float], width: int, height: int, where: str) -> list[float]:
    """``poly`` (pixels), refused when a point lies more than an image's size outside it: a
    coordinate in the wrong unit (normalised vs pixels), and drawing would overflow."""
    for x, y in zip(poly[::2], poly[1::2]):
        if not (-width <= x <= 2 * width and -height <= y <= 2 * height):
            raise UserError(f"{where}: point ({x:g}, {y:g}) lies far outside the {width}x{height} image")
    return poly


def _save(mask: np.ndarray, path: Path) -> str:
    write_bytes(path, encode_png(mask, mask_palette()))
    return str(path)


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


# ---- COCO ------------------------------------------------------------------------------------

def coco_region(seg, width: int, height: int, where: str) -> np.ndarray:
    """An annotation's ``segmentation`` (polygons, or RLE with ``size`` ``[height, width]``) as pixels."""
    if isinstance(seg, list) and seg:
        for k, poly in enumerate(seg):
            if not isinstance(poly, list) or not all(_number(v) for v in poly):
                raise UserError(f"{where}: polygon {k} has coordinates that are not numbers: {str(poly)[:80]}")
            if len(poly) < 6 or len(poly) % 2:
                raise UserError(f"{where}: polygon {k} has {len(poly)} coordinates; a polygon is [x1, y1, x2, y2, "
                                "x3, y3, …], 3 or more points")
            check_points(poly, width, height, f"{where} polygon {k}")
        return polygons_region(seg, width, height)
    if not isinstance(seg, dict):
        raise UserError(f"{where}: no 'segmentation' to draw (polygons [[x1, y1, …]] or RLE {{size, counts}}); "
                        "a box-only annotation cannot train segmentation")
    return _rle_region(seg, width, height, where)


def _rle_region(seg: dict, width: int, height: int, where: str) -> np.ndarray:
    from faster_coco_eval.core import mask as mask_api

    size, counts = seg.get("size"), seg.get("counts")
    if size != [height, width]:
        raise UserError(f"{where}: RLE size {size} is not its image's [height, width] [{height}, {width}]")
    if isinstance(counts, list):
        if not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in counts):
            raise UserError(f"{where}: RLE counts must be whole numbers >= 0, got {str(counts)[:80]}")
        rle = mask_api.frPyObjects({"size": size, "counts": counts}, height, width)
    elif isinstance(counts, (str, bytes)):
        rle = {"size": size, "counts": counts}
    else:
        raise UserError(f"{where}: RLE counts must be a list of run lengths or a compressed string")
    try:
        return mask_api.decode(rle).astype(bool)
    except (ValueError, RuntimeError) as exc:
        raise UserError(f"{where}: RLE counts do not describe a {height}x{width} mask: {exc}") from None


def read_coco_masks(path: str, classes: list[str] | None, out: Path) -> Records:
    """Every image of the COCO file(s) at ``path`` (:func:`coco_layout`) with its mask drawn into ``out``."""
    files = [(split, read_coco_file(js, images)) for split, js, images in coco_layout(path)]
    classes, _ = mask_ids(merged_names(coco.names for _, coco in files), classes, str(path))
    records, split = [], {}
    for k, (name, coco) in enumerate(files):
        _, ids = mask_ids(coco.names, classes, str(coco.path))
        for pair in coco_masks(coco, ids, out / f"{k}-{name or 'all'}"):
            records.append(pair)
            split.setdefault(name, []).append(len(records) - 1)
    return classes, records, None if None in split else split


def coco_masks(coco: CocoFile, ids: list[int], out: Path) -> list[tuple[str, str]]:
    """``(image, mask)`` of every image of ``coco``, each category index drawn as ``ids[index]``;
    every annotation's keys, image and category checked first, then the pixels drawn one image at a
    time (a large set never holds more than one image's objects)."""
    by_image: dict[object, list[tuple[int, dict, str]]] = {i: [] for i in coco.images}
    for ann in coco.annotations:
        where = f"{coco.path} annotation id {ann.get('id')}"
        missing = [key for key in ("image_id", "category_id", "segmentation") if key not in ann]
        if missing:
            raise UserError(f"{where}: no {', '.join(repr(key) for key in missing)}")
        coco.image_of(ann, where)
        by_image[ann["image_id"]].append((ids[coco.category_of(ann, where)], ann, where))
    pairs = []
    for n, (image_id, img) in enumerate(coco.images.items()):
        objects, crowd = [], []
        for cls, ann, where in by_image.pop(image_id):
            region = coco_region(ann["segmentation"], img.width, img.height, where)
            if ann.get("iscrowd", 0):
                crowd.append(region)
            else:
                objects.append((cls, region))
        mask_path = out / f"{n:06d}-{Path(img.file).stem}.png"
        pairs.append((str(coco.images_dir / img.file), _save(paint(img.width, img.height, objects, crowd), mask_path)))
    return pairs


# ---- Ultralytics YOLO-seg --------------------------------------------------------------------

def yolo_polygon(line: str, n_classes: int, width: int, height: int, where: str) -> tuple[int, list[float]]:
    """``class x1 y1 x2 y2 …`` (normalised) as ``(class index, [x1, y1, …] in pixels)``."""
    parts = line.split()
    try:
        cls, coords = int(parts[0]), [float(p) for p in parts[1:]]
    except ValueError:
        raise UserError(f"{where}: not numbers: {line.strip()[:80]!r}") from None
    if not all(math.isfinite(c) for c in coords):
        raise UserError(f"{where}: not numbers: {line.strip()[:80]!r}")
    if len(coords) == 4:
        raise UserError(f"{where}: a box line 'class cx cy w h'; YOLO-seg lines are 'class x1 y1 x2 y2 x3 y3 …' "
                        "(a polygon of 3 or more points)")
    if len(coords) < 6 or len(coords) % 2:
        raise UserError(f"{where}: {len(coords)} coordinates; a polygon is 'x1 y1 x2 y2 x3 y3 …', 3 or more points")
    if not 0 <= cls < n_classes:
        raise UserError(f"{where}: unknown class index {cls} ({n_classes} classes: 0..{n_classes - 1})")
    return cls, check_points([c * (width if i % 2 == 0 else height) for i, c in enumerate(coords)], width, height,
                             where)


def read_yolo_masks(path: str, classes: list[str] | None, out: Path) -> Records:
    """Every image of the YOLO-seg set at ``path`` (:func:`yolo_layout`) with its mask drawn into
    ``out``; class names from its ``data.yaml`` (or a ``classes.txt``: :func:`yolo_names_file`), else ``data.classes``."""
    root = Path(path)
    names_file = yolo_names_file(root)
    if names_file.is_file():
        names = read_classes_file(names_file)
    elif classes:
        names = list(classes[1:])
    else:
        raise UserError(f"{root}: no class names: a data.yaml with 'names' (or labels/classes.txt, or classes.txt) "
                        "in it, or data.classes (background first)")
    classes, ids = mask_ids(names, classes, str(names_file if names_file.is_file() else root))
    records, split = [], {}
    for name, prefix, images, labels in yolo_layout(root):
        for img_path, txt in yolo_pairs(labels, images):
            width, height = header_size(img_path, str(img_path))
            objects = []
            for where, line in yolo_lines(txt):
                cls, poly = yolo_polygon(line, len(names), width, height, where)
                objects.append((ids[cls], polygons_region([poly], width, height)))
            mask_path = out / prefix / f"{img_path.stem}.png"
            records.append((str(img_path), _save(paint(width, height, objects, []), mask_path)))
            split.setdefault(name, []).append(len(records) - 1)
    return classes, records, None if None in split else split
