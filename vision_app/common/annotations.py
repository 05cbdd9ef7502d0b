"""The annotation files detection and segmentation both read, up to where their targets differ
(boxes: :mod:`vision_app.detect.formats` and :mod:`~vision_app.detect.yolo_txt`; masks:
:mod:`vision_app.segment.polygon_masks`):

- COCO JSON: the file checked and loaded (:func:`read_coco_file`: categories ordered by id, less
  Roboflow's unused root category; images found and sized; an annotation's image and category
  looked up with one-line errors), and where a set's files lie (:func:`coco_layout`: one JSON,
  Roboflow's ``train/_annotations.coco.json`` per split folder, COCO's
  ``annotations/instances_train2017.json`` beside ``train2017/``).
- YOLO txt: class names from a ``classes.txt`` or an Ultralytics ``data.yaml``, each image paired
  with its ``<stem>.txt``, and the Ultralytics split folders ``images/{train,val}`` +
  ``labels/{train,val}`` (:func:`yolo_folders`).
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from PIL import Image

from shared.errors import UserError
from vision_app.common.data import SPLIT_NAMES
from vision_app.common.images import data_dirs, data_files, image_files

# ---- images ----------------------------------------------------------------------------------

def header_size(path: Path, where: str) -> tuple[int, int]:
    """An image's ``(width, height)`` from its header; ``where`` names the annotation in errors."""
    if not path.is_file():
        raise UserError(f"{where}: image {path} is listed but missing")
    try:
        with Image.open(path) as im:  # reads the header only
            return im.size
    except (OSError, Image.DecompressionBombError) as exc:
        raise UserError(f"{where}: cannot read image {path}: {exc}") from None


def check_size(path: Path, width: int, height: int, where: str) -> tuple[int, int]:
    """The image's ``(width, height)``: the annotation's, checked against the file; the file's
    when the annotation has none (a size of 0, or missing)."""
    real = header_size(path, where)
    if not width or not height:
        return real
    if real != (width, height):
        raise UserError(f"{where}: annotation says {width}x{height} but image {path} is {real[0]}x{real[1]}")
    return real


# ---- COCO ------------------------------------------------------------------------------------

@dataclass
class CocoImage:
    file: str  # relative to CocoFile.images_dir
    width: int
    height: int


@dataclass
class CocoFile:
    """A checked COCO JSON: ``categories`` ordered by id, ``images`` by id in file order."""

    path: Path
    images_dir: Path
    categories: list[dict]
    images: dict[object, CocoImage]
    annotations: list[dict]

    @property
    def names(self) -> list[str]:
        """The class names: :attr:`categories`' names, in their order."""
        return [str(c["name"]) for c in self.categories]

    def image_of(self, ann: dict, where: str) -> CocoImage:
        if ann["image_id"] not in self.images:
            raise UserError(f"{where}: image_id {ann['image_id']} is not in 'images'")
        return self.images[ann["image_id"]]

    @cached_property
    def category_index(self) -> dict:
        """Category id → index into :attr:`categories` (built on first use: drop categories before)."""
        return {c["id"]: i for i, c in enumerate(self.categories)}

    def category_of(self, ann: dict, where: str) -> int:
        """The annotation's category as an index into :attr:`categories`."""
        index = self.category_index
        if ann["category_id"] not in index:
            raise UserError(f"{where}: unknown category_id {ann['category_id']} (known: {sorted(index)})")
        return index[ann["category_id"]]


def merged_names(name_lists) -> list[str]:
    """The class names of several files (a set's per-split COCO files) in one list, in the order
    first seen."""
    names: list[str] = []
    for found in name_lists:
        names += [n for n in found if n not in names]
    return names


def read_json_file(path: Path, what: str):
    """A JSON file (a UTF-8 byte-order mark dropped); ``what`` names it when it is missing."""
    if not path.is_file():
        raise UserError(f"{what} not found: {path}")
    try:
        return json.loads(path.read_text(encoding="utf-8-sig"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path} is not valid JSON: {exc}") from None


def read_coco_file(annotations: str | os.PathLike, images_dir: str | os.PathLike) -> CocoFile:
    """A COCO JSON checked: its three lists, categories with an id and a name, images with an id
    and a ``file_name`` that exists under ``images_dir`` (sizes checked, or taken from the file)."""
    path, images_dir = Path(annotations), Path(images_dir)
    data = read_json_file(path, "COCO annotation file")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data, dict) or not isinstance(data.get(key), list):
            raise UserError(f"{path}: a COCO file needs a '{key}' list")
    for cat in data["categories"]:
        if not isinstance(cat, dict) or "id" not in cat or "name" not in cat:
            raise UserError(f"{path}: category {cat!r} needs an 'id' and a 'name'")
    images = {}
    for img in data["images"]:
        where = f"{path} image id {img.get('id')}"
        if "file_name" not in img or "id" not in img:
            raise UserError(f"{where}: an image needs an 'id' and a 'file_name'")
        file = coco_file_name(str(img["file_name"]), images_dir)
        width, height = check_size(images_dir / file, int(img.get("width") or 0), int(img.get("height") or 0), where)
        images[img["id"]] = CocoImage(file, width, height)
    cats = sorted(_without_roboflow_root(data["categories"], data["annotations"]), key=lambda c: c["id"])
    return CocoFile(path, images_dir, cats, images, data["annotations"])


def _without_roboflow_root(categories: list[dict], annotations: list) -> list[dict]:
    """Roboflow exports a category 0 named after the data set, the others' supercategory, that no
    annotation uses: not a class (COCO's ``person``, its own supercategory, stays)."""
    used = {ann.get("category_id") for ann in annotations if isinstance(ann, dict)}
    parents = {c.get("supercategory") for c in categories if c.get("supercategory") != c["name"]}
    return [c for c in categories if c["id"] in used or c["name"] not in parents]


def coco_file_name(name: str, images_dir: Path) -> str:
    """``file_name`` relative to ``images_dir``; a name with a folder in front (``train2017/x.jpg``,
    Label Studio's ``images/x.jpg``) when ``images_dir`` is that folder already: its last part."""
    if not (images_dir / name).is_file() and Path(name).parent != Path(".") and (images_dir / Path(name).name).is_file():
        return Path(name).name
    return name


def coco_images_dir(annotations: Path) -> Path:
    """Where a lone COCO JSON's images are: ``images/`` beside it; for a JSON in an ``annotations/``
    folder, the folder its stem names beside that (COCO: ``instances_val2017.json`` → ``val2017/``)
    or ``images/`` there (CVAT: ``instances_default.json``); else its own folder."""
    here = annotations.parent
    if (here / "images").is_dir():
        return here / "images"
    if here.name.lower() == "annotations":
        m = _SPLIT_STEM.match(annotations.stem.lower())
        for folder in ([here.parent / (m.group(1) + m.group(2))] if m else []) + [here.parent / "images"]:
            if folder.is_dir():
                return folder
    return here


_SPLIT_STEM = re.compile(r"^(?:[a-z_]*_)?([a-z]+?)(\d*)$")  # instances_train2017 -> train, 2017


def coco_layout(path: str | os.PathLike) -> list[tuple[str | None, Path, Path]]:
    """The COCO files of a set as ``(split or None, JSON, images folder)``. ``path`` is a JSON
    (images in ``images/`` beside it, or beside it), or a folder holding: split folders with one
    JSON each (Roboflow: ``train/_annotations.coco.json``, ``valid/…``, images beside each);
    ``annotations/<kind>_<split><year>.json`` (COCO: ``instances_train2017.json``, images in
    ``train2017/``; a single file such as CVAT's ``instances_default.json``: images in ``images/``);
    or one JSON (images in ``images/`` or beside it)."""
    root = Path(path)
    if root.is_file():
        return [(None, root, coco_images_dir(root))]
    if not root.is_dir():
        raise UserError(f"COCO data not found: {root} (give a COCO .json file or the folder of a COCO export)")
    per_split = []
    for folder in data_dirs(root):
        if folder.name.lower() in SPLIT_NAMES and (found := data_files(folder, "*.json")):
            if len(found) > 1:
                raise UserError(f"{folder} holds {len(found)} JSON files ({[f.name for f in found]}); "
                                "a split folder needs exactly one COCO annotation file")
            per_split.append((SPLIT_NAMES[folder.name.lower()], found[0], coco_images_dir(found[0])))
    if per_split:
        return per_split
    files = data_files(root / "annotations", "*.json") or [f for f in data_files(root, "*.json")
                                                             if f.name not in ("classes.json", "split.json")]
    images = root / "images" if (root / "images").is_dir() else root
    if len(files) == 1:
        return [(None, files[0], images)]
    by_split: dict[str, list[tuple[Path, str]]] = {}
    for f in files:
        m = _SPLIT_STEM.match(f.stem.lower())
        if m and m.group(1) in SPLIT_NAMES:
            by_split.setdefault(SPLIT_NAMES[m.group(1)], []).append((f, m.group(1) + m.group(2)))
    out = []
    for split, found in by_split.items():
        if len(found) > 1:  # COCO's annotations/ holds captions_ and person_keypoints_ files too
            found = [(f, name) for f, name in found if f.stem.lower().startswith("instances_")] or found
        if len(found) > 1:
            raise UserError(f"{root}: {len(found)} COCO files for the {split} split ({[f.name for f, _ in found]}); "
                            "give data.path the one to read")
        f, name = found[0]
        out.append((split, f, next(c for c in (root / name, images / name, images) if c.is_dir())))
    if not out:
        raise UserError(f"{root}: found {[str(f) for f in files] or 'no'} COCO annotation file(s); give "
                        "data.path a COCO .json, or a folder with one, with train/, valid/, test/ folders holding "
                        "one each (Roboflow), or with annotations/instances_<split>.json (COCO)")
    return out


# ---- YOLO txt --------------------------------------------------------------------------------

def read_classes_file(path: str | os.PathLike) -> list[str]:
    """Class names, one per line (YOLO's ``classes.txt``), or the ``names`` of an Ultralytics
    ``data.yaml`` (a list, or a mapping index → name)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"class names file not found: {path} (one class name per line, or a data.yaml with names)")
    if path.suffix.lower() in (".yaml", ".yml"):
        return _yaml_names(path)
    names = [line.strip() for line in path.read_text(encoding="utf-8-sig").splitlines() if line.strip()]
    if not names:
        raise UserError(f"{path} lists no class names")
    return names


def _yaml_names(path: Path) -> list[str]:
    import yaml

    try:
        names = (yaml.safe_load(path.read_text(encoding="utf-8-sig")) or {}).get("names")
    except (yaml.YAMLError, AttributeError) as exc:
        raise UserError(f"{path}: not a YAML mapping with 'names': {str(exc).splitlines()[0]}") from None
    if isinstance(names, dict) and sorted(names) == list(range(len(names))):
        names = [names[i] for i in range(len(names))]
    if not isinstance(names, list) or not names:
        raise UserError(f"{path}: 'names' must be a list of class names or a mapping 0..N-1 -> name, got {names!r}")
    return [str(n) for n in names]


def yolo_names_file(root: Path) -> Path:
    """A YOLO set's class names: its ``data.yaml``, else ``labels/classes.txt`` (LabelImg), else a
    ``classes.txt`` beside ``images/`` and ``labels/`` (Label Studio's YOLO export); when there is
    none, ``labels/classes.txt``, for the error to name."""
    found = [f for f in (root / "data.yaml", root / "labels" / "classes.txt", root / "classes.txt") if f.is_file()]
    return found[0] if found else root / "labels" / "classes.txt"


def yolo_pairs(labels_dir: Path, images_dir: Path) -> list[tuple[Path, Path]]:
    """Every image in ``images_dir`` with its ``labels_dir/<stem>.txt`` (which need not exist: no
    objects); a label file without its image is an error."""
    if not images_dir.is_dir():
        raise UserError(f"image folder not found: {images_dir}")
    images = {p.stem: p for p in image_files(images_dir)}
    for txt in data_files(labels_dir, "*.txt"):
        if txt.stem not in images and txt.name != "classes.txt":
            raise UserError(f"{txt}: image {images_dir / txt.stem}.* is listed but missing")
    return [(img, labels_dir / f"{stem}.txt") for stem, img in images.items()]


def yolo_lines(txt: Path) -> list[tuple[str, str]]:
    """The non-blank lines of a YOLO label file as ``(where, line)``, ``where`` naming the file and
    line for errors; none when the file does not exist (an image without objects)."""
    lines = txt.read_text(encoding="utf-8-sig").splitlines() if txt.is_file() else []
    return [(f"{txt} line {n}", line) for n, line in enumerate(lines, start=1) if line.strip()]


def yolo_folders(labels_dir: Path, images_dir: Path) -> list[tuple[str | None, str, Path, Path]]:
    """``(split or None, file prefix, images folder, labels folder)`` of a YOLO set: with
    ``images_dir`` holding split folders and no images (Ultralytics: ``images/train``,
    ``images/val`` beside ``labels/train``, ``labels/val``) one per split folder, prefix
    ``<folder>/``; else the flat folder, split ``None``."""
    subs = data_dirs(images_dir) if images_dir.is_dir() else []
    named = {d.name: SPLIT_NAMES.get(d.name.lower()) for d in subs}
    if not subs or image_files(images_dir) or None in named.values():
        return [(None, "", images_dir, labels_dir)]
    return [(split, f"{folder}/", images_dir / folder, labels_dir / folder) for folder, split in named.items()]


def yolo_layout(root: Path) -> list[tuple[str | None, str, Path, Path]]:
    """:func:`yolo_folders` of a YOLO set's root: ``images/`` beside ``labels/`` (Ultralytics), or
    split folders holding ``images/`` and ``labels/`` each (Roboflow's YOLO export:
    ``train/images``, ``valid/labels``, …), prefix ``<split folder>/images/``."""
    if (root / "images").is_dir():
        return yolo_folders(root / "labels", root / "images")
    per_split = [(SPLIT_NAMES[d.name.lower()], f"{d.name}/images/", d / "images", d / "labels")
                 for d in (data_dirs(root) if root.is_dir() else []) if d.name.lower() in SPLIT_NAMES
                 and (d / "images").is_dir()]
    if not per_split:
        raise UserError(f"{root}: a YOLO set needs images/ beside labels/ (flat, or with train/ and val/ in each), "
                        "or train/, valid/ folders holding images/ and labels/")
    return per_split
