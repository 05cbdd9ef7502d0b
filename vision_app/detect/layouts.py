"""Where a detection set's files lie, read into one :class:`~vision_app.detect.formats.DetectionSet`
with the set's own split, for ``preprocess``/``train`` (``data.format``, ``data.annotations``,
``data.images``) and ``evaluate --data`` (the format told from the folder).

``data.annotations`` with ``data.images`` is one annotation file or folder and the folder of its
images. ``data.annotations`` alone is an export as a labelling tool writes it, found by
:func:`~vision_app.common.annotations.coco_layout` (one JSON; Roboflow's ``train/``, ``valid/``,
``test/`` folders each with ``_annotations.coco.json``; COCO 2017's ``annotations/`` beside
``train2017/``, ``val2017/``; CVAT's ``annotations/instances_default.json`` beside ``images/``;
Label Studio's ``result.json`` beside ``images/``), :func:`~vision_app.common.annotations.yolo_layout`
(Ultralytics' ``images/`` beside ``labels/``; Roboflow's ``train/images``, ``train/labels``) or
:func:`~vision_app.detect.formats.voc_layout` (a devkit; Roboflow's split folders with each image's
.xml beside it). The parts (per-split files or folders) are joined under their images' common folder,
each file named relative to it (``train/x.jpg``), and a part's split is the split of its images.
"""
from __future__ import annotations

import os
from pathlib import Path

from shared.errors import UserError
from vision_app.common.annotations import (
    coco_layout,
    merged_names,
    read_classes_file,
    yolo_folders,
    yolo_layout,
    yolo_names_file,
)
from vision_app.common.data import voc_image_sets
from vision_app.common.images import data_dirs, data_files
from vision_app.detect.formats import DetectionSet, read_coco, read_voc, voc_layout
from vision_app.detect.yolo_txt import read_yolo

Split = dict[str, list[str] | str]  # split -> file names, or a VOC ImageSets list file


def read_set(fmt: str, annotations: str | os.PathLike, images: str | os.PathLike | None,
             classes: list[str] | None, bad_boxes: str = "error") -> tuple[DetectionSet, Split | None]:
    """The set of ``fmt`` (``coco``, ``voc``, ``yolo``) at ``annotations`` (+ ``images``; see the
    module) and its own split (``None``: it has none). ``classes`` fixes the order (VOC) or gives
    the names (YOLO; without ``images`` its ``data.yaml`` or ``labels/classes.txt`` when not given)."""
    if fmt == "coco":
        parts = [(split, read_coco(js, folder, bad_boxes)) for split, js, folder in _coco_files(annotations, images)]
        return joined(parts, merged_names(ds.classes for _, ds in parts))
    if fmt == "voc":
        found = [(None, Path(annotations), Path(images))] if images else voc_layout(annotations)
        parts = [(split, read_voc(xml, folder, classes, bad_boxes)) for split, xml, folder in found]
        ds, split = joined(parts, classes or sorted({n for _, part in parts for n in part.classes}))
        return ds, split or (voc_split_files(found[0][1]) if len(found) == 1 else None)
    if images:
        folders = yolo_folders(Path(annotations), Path(images))
    else:
        folders = yolo_layout(Path(annotations))
        classes = classes or read_classes_file(yolo_names_file(Path(annotations)))
    if not classes:
        raise UserError("a YOLO set needs its class names: data.classes (a list or a classes.txt / data.yaml)")
    return joined([(split, read_yolo(labels, folder, classes, bad_boxes)) for split, _, folder, labels in folders],
                  classes)


def _coco_files(annotations, images) -> list[tuple[str | None, Path, Path]]:
    path = Path(annotations)
    if not images:
        return coco_layout(path)
    if path.is_dir():
        raise UserError(f"data.images={images} goes with one COCO .json in data.annotations; for the export folder "
                        f"{path} leave data.images out (null): its images are found beside its JSON files")
    return [(None, path, Path(images))]


def joined(parts: list[tuple[str | None, DetectionSet]], classes: list[str]) -> tuple[DetectionSet, Split | None]:
    """One set of ``parts`` in the class order ``classes`` (labels mapped by name), each file named
    relative to the parts' common images folder; the parts' splits as the split (``None`` when a
    part has none)."""
    folders = [Path(ds.images_dir).resolve() for _, ds in parts]
    base = Path(os.path.commonpath(folders))
    records, split = [], {}
    for (name, ds), folder in zip(parts, folders):
        prefix = folder.relative_to(base)
        for rec in ds.in_class_order(classes).images:
            rec.file = (prefix / rec.file).as_posix()
            records.append(rec)
            split.setdefault(name, []).append(rec.file)
    return DetectionSet(list(classes), records, str(base)), None if None in split else split


def voc_split_files(annotations: Path) -> dict[str, str] | None:
    """A VOC set's own split: ``ImageSets/Main/{train,val,test}.txt`` (or ``trainval.txt`` when there
    is no ``train.txt``) beside its annotation folder; ``None`` when it has none (CVAT's
    ``default.txt`` alone is no split: the whole set is split by the fractions)."""
    found = voc_image_sets(annotations.parent / "ImageSets" / "Main")
    return None if found is None else {name: str(path) for name, path in found.items()}


def eval_format(path: Path) -> str:
    """The format of ``evaluate --data path``: ``coco`` for a .json, ``yolo`` for a folder with
    ``labels/`` or ``data.yaml`` (or split folders holding ``labels/``), ``voc`` for .xml files in it
    or one level down, else ``coco`` for .json files there."""
    if path.suffix.lower() == ".json":
        return "coco"
    if not path.is_dir():
        raise UserError(f"--data {path} not found: give a COCO .json or the folder of a COCO, VOC or YOLO set")
    subs = data_dirs(path)
    if (path / "labels").is_dir() or (path / "data.yaml").is_file() or any((d / "labels").is_dir() for d in subs):
        return "yolo"
    for suffix, fmt in (("xml", "voc"), ("json", "coco")):
        if any(data_files(folder, f"*.{suffix}") for folder in (path, *subs)):
            return fmt
    raise UserError(f"--data {path}: no COCO .json, VOC .xml or YOLO labels/ in it or its folders; give a COCO "
                    ".json, a folder with images/ and annotations/ (VOC) or labels/ (YOLO), a VOC devkit, or an "
                    "export's folder (Roboflow, CVAT, Label Studio, COCO 2017)")
