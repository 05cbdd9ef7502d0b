"""Annotation formats users bring (COCO JSON, Pascal VOC XML; YOLO txt in
:mod:`~vision_app.detect.yolo_txt`) and the one internal form.

Everything is read into a :class:`DetectionSet`: class names in index order, and per image its
file (relative to ``images_dir``), size and boxes as absolute ``xyxy`` pixels with 0-based class
indices. Readers check what users most often get wrong and raise a :class:`UserError` naming the
file and object: unknown category ids / class indices and images listed but missing; bad boxes
(outside the image by more than ``TOLERANCE_PX``, zero-area, inverted, not numbers) are all listed
at once, or dropped or clipped, by ``data.bad_boxes`` (:class:`BoxChecker`).
Writers exist for each format, so a set can be converted and every reader is tested round-trip.

Coordinates: COCO ``bbox`` is ``[x, y, w, h]``; VOC ``bndbox`` corners are taken as given (the
common tools write continuous pixel coordinates); YOLO lines are ``class cx cy w h``, normalised.
"""
from __future__ import annotations

import logging
import math
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from shared.errors import UserError
from shared.runs import write_json, write_text
from vision_app.common.annotations import check_size, read_coco_file
from vision_app.common.data import SPLIT_NAMES
from vision_app.common.images import data_dirs, data_files, is_junk

log = logging.getLogger(__name__)
TOLERANCE_PX = 1.0  # annotation tools round; a box this far past the border is clipped, not refused
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


@dataclass
class ImageRecord:
    file: str  # relative to DetectionSet.images_dir
    width: int
    height: int
    boxes: list[list[float]] = field(default_factory=list)  # xyxy, absolute pixels
    labels: list[int] = field(default_factory=list)  # indices into DetectionSet.classes


@dataclass
class DetectionSet:
    classes: list[str]
    images: list[ImageRecord]
    images_dir: str

    def to_dict(self) -> dict:
        return {"classes": self.classes, "images_dir": self.images_dir,
                "images": [vars(r) for r in self.images]}

    @classmethod
    def from_dict(cls, data: dict) -> DetectionSet:
        return cls(list(data["classes"]), [ImageRecord(**r) for r in data["images"]], data["images_dir"])

    def subset(self, files: set[str]) -> DetectionSet:
        return DetectionSet(self.classes, [r for r in self.images if r.file in files], self.images_dir)

    def in_class_order(self, classes: list[str]) -> DetectionSet:
        """The set with ``classes`` as its class list, each label mapped by name (every one of
        :attr:`classes` must be in it); the records are relabelled in place."""
        index = {name: i for i, name in enumerate(classes)}
        for rec in self.images:
            rec.labels = [index[self.classes[label]] for label in rec.labels]
        return DetectionSet(list(classes), self.images, self.images_dir)


BAD_BOXES = ("error", "drop", "clip")


class BoxChecker:
    """Checks every box of a data set against its image under a ``data.bad_boxes`` policy, so one
    run lists every bad box, not the first. ``error``: collect them, then :meth:`finish` raises one
    :class:`UserError` listing them; ``drop``: leave them out; ``clip``: clip a box into its image
    (inverted corners swapped first) and leave out only what is still empty or not a number.
    A box within ``TOLERANCE_PX`` of the border is clipped under every policy."""

    def __init__(self, policy: str = "error"):
        if policy not in BAD_BOXES:
            raise UserError(f"data.bad_boxes={policy!r}: use one of {', '.join(BAD_BOXES)}")
        self.policy, self.problems, self.dropped, self.clipped = policy, [], 0, 0

    def __call__(self, box, width: int, height: int, where: str) -> list[float] | None:
        """The box to keep (``xyxy`` inside the image), or ``None`` to leave it out."""
        x1, y1, x2, y2 = (float(v) for v in box)
        problem = box_problem(x1, y1, x2, y2, width, height)
        if problem is None:
            return [max(x1, 0.0), max(y1, 0.0), min(x2, float(width)), min(y2, float(height))]
        if self.policy == "clip" and all(math.isfinite(v) for v in (x1, y1, x2, y2)):
            (x1, x2), (y1, y2) = sorted((x1, x2)), sorted((y1, y2))
            x1, y1, x2, y2 = max(x1, 0.0), max(y1, 0.0), min(x2, float(width)), min(y2, float(height))
            if x2 > x1 and y2 > y1:
                self.clipped += 1
                return [x1, y1, x2, y2]
        self.problems.append(f"{where}: {problem}")
        self.dropped += self.policy != "error"
        return None

    def finish(self, source) -> None:
        """Raise the one error listing every bad box (``error``), or log what was changed."""
        if self.policy == "error" and self.problems:
            more = f" (and {len(self.problems) - 5} more)" if len(self.problems) > 5 else ""
            raise UserError(f"{len(self.problems)} bad box(es) in {source}: " + "; ".join(self.problems[:5]) + more
                            + ". Fix them, or set data.bad_boxes=drop (leave them out) or data.bad_boxes=clip "
                            "(clip them into the image)")
        if self.dropped or self.clipped:
            log.warning("%s: %d bad box(es) left out, %d clipped into the image (data.bad_boxes=%s); first: %s",
                        source, self.dropped, self.clipped, self.policy, self.problems[:1])


def box_problem(x1: float, y1: float, x2: float, y2: float, width: int, height: int) -> str | None:
    """What is wrong with an ``xyxy`` box on a ``width``×``height`` image, or ``None``."""
    shown = f"[x1={x1:g}, y1={y1:g}, x2={x2:g}, y2={y2:g}]"
    if not all(math.isfinite(v) for v in (x1, y1, x2, y2)):
        return f"box {shown} has a missing or non-numeric coordinate"
    if not (x2 > x1 and y2 > y1):
        kind = "zero-area" if (x2 == x1 or y2 == y1) else "inverted"
        return f"{kind} box {shown}; boxes need x2 > x1 and y2 > y1"
    t = TOLERANCE_PX
    if x1 < -t or y1 < -t or x2 > width + t or y2 > height + t:
        return f"box {shown} lies outside the {width}x{height} image"
    return None


# ---- COCO ------------------------------------------------------------------------------------

def read_coco(annotations: str | os.PathLike, images_dir: str | os.PathLike, bad_boxes: str = "error") -> DetectionSet:
    """A COCO instances JSON; categories are ordered by id; ``iscrowd`` objects are skipped."""
    coco = read_coco_file(annotations, images_dir)
    check = BoxChecker(bad_boxes)
    records = {i: ImageRecord(img.file, img.width, img.height) for i, img in coco.images.items()}
    for ann in coco.annotations:
        where = f"{coco.path} annotation id {ann.get('id')}"
        if ann.get("iscrowd", 0):
            continue
        bbox = ann.get("bbox") or polygons_bbox(ann.get("segmentation"))
        missing = [k for k in ("image_id", "category_id") if k not in ann] + ["bbox"] * (bbox is None)
        if missing or not (isinstance(bbox, list) and len(bbox) == 4):
            raise UserError(f"{where}: no {', '.join(repr(k) for k in missing) or 'bbox [x, y, w, h]'} (give every "
                            "annotation a bbox [x, y, w, h], or a polygon segmentation to take it from)")
        coco.image_of(ann, where)
        rec, label = records[ann["image_id"]], coco.category_of(ann, where)
        x, y, w, h = bbox
        box = check([x, y, x + w, y + h], rec.width, rec.height, where)
        if box is not None:
            rec.boxes.append(box)
            rec.labels.append(label)
    check.finish(coco.path)
    return DetectionSet(coco.names, list(records.values()), str(coco.images_dir))


def polygons_bbox(segmentation) -> list[float] | None:
    """``[x, y, w, h]`` around an annotation's polygons (``[[x1, y1, x2, y2, …], …]``), for the
    exports that leave ``bbox`` out or empty; ``None`` when it has none (RLE, nothing, not numbers)."""
    if not (isinstance(segmentation, list) and segmentation
            and all(isinstance(p, list) and len(p) >= 2 for p in segmentation)):
        return None
    try:
        xs = [float(v) for p in segmentation for v in p[0::2]]
        ys = [float(v) for p in segmentation for v in p[1::2]]
    except (TypeError, ValueError):
        return None
    return [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]


def write_coco(ds: DetectionSet, path: str | os.PathLike) -> Path:
    """Write ``ds`` as a COCO instances JSON (category ids 1..C, box-only annotations)."""
    images, anns = [], []
    for i, rec in enumerate(ds.images, start=1):
        images.append({"id": i, "file_name": rec.file, "width": rec.width, "height": rec.height})
        for (x1, y1, x2, y2), label in zip(rec.boxes, rec.labels):
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": label + 1, "iscrowd": 0,
                         "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1)})
    cats = [{"id": i + 1, "name": name} for i, name in enumerate(ds.classes)]
    return write_json(path, {"images": images, "annotations": anns, "categories": cats})


# ---- Pascal VOC ------------------------------------------------------------------------------

def read_voc(annotations_dir: str | os.PathLike, images_dir: str | os.PathLike,
             classes: list[str] | None = None, bad_boxes: str = "error") -> DetectionSet:
    """One VOC XML per image. Without ``classes`` the names found are sorted alphabetically."""
    annotations_dir, images_dir = Path(annotations_dir), Path(images_dir)
    files = data_files(annotations_dir, "*.xml")
    if not files:
        raise UserError(f"no VOC .xml files in {annotations_dir}")
    parsed, by_stem = [], {}
    for xml_path in files:
        try:
            root = ET.parse(xml_path).getroot()
        except ET.ParseError as exc:
            raise UserError(f"{xml_path} is not valid XML: {exc}") from None
        name = _voc_image_name(root.findtext("filename") or "", xml_path, images_dir, by_stem)
        size = root.find("size")
        w, h = (0, 0) if size is None else (int(float(size.findtext("width") or 0)),
                                            int(float(size.findtext("height") or 0)))
        objects = []
        for k, obj in enumerate(root.iter("object")):
            bb = obj.find("bndbox")
            if bb is None:
                raise UserError(f"{xml_path} object {k}: no <bndbox>")
            box = [_number(bb.findtext(t)) for t in ("xmin", "ymin", "xmax", "ymax")]
            cls = (obj.findtext("name") or "").strip()
            if not cls:
                raise UserError(f"{xml_path} object {k}: no <name> (the object's class)")
            objects.append((cls, box, f"{xml_path} object {k}"))
        parsed.append((xml_path, name, w, h, objects))
    names = sorted({o[0] for p in parsed for o in p[4]}) if classes is None else list(classes)
    index = {n: i for i, n in enumerate(names)}
    records, check = [], BoxChecker(bad_boxes)
    for xml_path, name, w, h, objects in parsed:
        w, h = check_size(images_dir / name, w, h, str(xml_path))  # no <size>: the image's
        rec = ImageRecord(name, w, h)
        for cls, box, where in objects:
            if cls not in index:
                raise UserError(f"{where}: unknown class {cls!r} (known: {names})")
            if (box := check(box, w, h, where)) is not None:
                rec.boxes.append(box)
                rec.labels.append(index[cls])
        records.append(rec)
    check.finish(annotations_dir)
    return DetectionSet(names, records, str(images_dir))


def voc_layout(root: str | os.PathLike) -> list[tuple[str | None, Path, Path]]:
    """The VOC folders of a set as ``(split or None, .xml folder, images folder)``: a devkit
    (``Annotations/`` beside ``JPEGImages/``: CVAT's Pascal VOC 1.1, VOC2012), ``annotations/``
    beside ``images/``, split folders each holding images and their .xml side by side (Roboflow's
    Pascal VOC export: ``train/``, ``valid/``, ``test/``), or one such folder."""
    root = Path(root)
    for xml, images in (("Annotations", "JPEGImages"), ("annotations", "images")):
        if (root / xml).is_dir():
            return [(None, root / xml, root / images)]
    per_split = [(SPLIT_NAMES[d.name.lower()], d, d) for d in (data_dirs(root) if root.is_dir() else [])
                 if d.name.lower() in SPLIT_NAMES and _has_xml(d)]
    if per_split:
        return per_split
    if not _has_xml(root):
        raise UserError(f"{root}: no Pascal VOC .xml files: give a devkit folder (Annotations/, JPEGImages/), a "
                        "folder with annotations/ and images/, train/ valid/ test/ folders holding images and .xml "
                        "side by side (Roboflow), or a folder of .xml with data.images")
    return [(None, root, root)]


def _has_xml(folder: Path) -> bool:
    return bool(data_files(folder, "*.xml"))


def _number(text: str | None) -> float:
    """A coordinate as written (``12``, ``12.0``); NaN (reported as a bad box) when missing or not a number."""
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan


def _voc_image_name(name: str, xml_path: Path, images_dir: Path, by_stem: dict[str, list[str]]) -> str:
    """``<filename>``, or, when no such image exists (a name without its extension, a renamed
    file), the one image of that stem or the .xml's (``by_stem``: filled on first need, per read)."""
    name = name.strip()
    if name and (images_dir / name).is_file():
        return name
    if not by_stem and images_dir.is_dir():
        for p in images_dir.iterdir():
            if p.suffix.lower() in IMAGE_SUFFIXES and not is_junk(p):
                by_stem.setdefault(p.stem, []).append(p.name)
    found = [by_stem.get(s, []) for s in (name, Path(name).stem, xml_path.stem) if s]
    if one := next((f[0] for f in found if len(f) == 1), None):
        return one
    if not name:
        raise UserError(f"{xml_path}: no <filename> and no image {images_dir}/{xml_path.stem}.*")
    return name  # reported as listed but missing


def write_voc(ds: DetectionSet, annotations_dir: str | os.PathLike) -> Path:
    """One XML per image into ``annotations_dir`` (named after the image file's stem)."""
    out = Path(annotations_dir)
    for rec in ds.images:
        root = ET.Element("annotation")
        ET.SubElement(root, "filename").text = rec.file
        size = ET.SubElement(root, "size")
        for tag, v in (("width", rec.width), ("height", rec.height), ("depth", 3)):
            ET.SubElement(size, tag).text = str(v)
        for box, label in zip(rec.boxes, rec.labels):
            obj = ET.SubElement(root, "object")
            ET.SubElement(obj, "name").text = ds.classes[label]
            ET.SubElement(obj, "difficult").text = "0"
            bb = ET.SubElement(obj, "bndbox")
            for tag, v in zip(("xmin", "ymin", "xmax", "ymax"), box):
                ET.SubElement(bb, tag).text = f"{v:g}"
        write_text(out / (Path(rec.file).stem + ".xml"), ET.tostring(root, encoding="unicode"))
    return out
