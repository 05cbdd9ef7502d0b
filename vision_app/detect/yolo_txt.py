"""YOLO txt labels: ``<stem>.txt`` per image (``class cx cy w h``, normalised; no file or an empty
file = a background image), class names from a ``classes.txt`` or an Ultralytics ``data.yaml``;
and the Ultralytics layout of split folders, ``images/{train,val,test}/`` beside
``labels/{train,val,test}/``, read with its split. Into and out of the internal form of
:mod:`vision_app.detect.formats`.
"""
from __future__ import annotations

import os
from pathlib import Path

from shared.errors import UserError
from shared.runs import write_text
from vision_app.common.data import SPLIT_NAMES
from vision_app.common.images import data_dirs, is_junk
from vision_app.detect.formats import IMAGE_SUFFIXES, BoxChecker, DetectionSet, ImageRecord, header_size


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


def read_yolo(labels_dir: str | os.PathLike, images_dir: str | os.PathLike, classes: list[str],
              bad_boxes: str = "error") -> DetectionSet:
    """Every image in ``images_dir``; its labels in ``labels_dir/<stem>.txt`` (none = no objects)."""
    labels_dir, images_dir = Path(labels_dir), Path(images_dir)
    if not images_dir.is_dir():
        raise UserError(f"image folder not found: {images_dir}")
    images = {p.stem: p for p in sorted(images_dir.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES and not is_junk(p)}
    label_files = sorted(f for f in labels_dir.glob("*.txt") if not is_junk(f)) if labels_dir.is_dir() else []
    for txt in label_files:
        if txt.stem not in images and txt.name != "classes.txt":
            raise UserError(f"{txt}: image {images_dir / txt.stem}.* is listed but missing")
    records, check = [], BoxChecker(bad_boxes)
    for stem, img_path in images.items():
        w, h = header_size(img_path, str(img_path))
        rec = ImageRecord(img_path.name, w, h)
        txt = labels_dir / f"{stem}.txt"
        lines = txt.read_text(encoding="utf-8-sig").splitlines() if txt.is_file() else []
        for n, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            where = f"{txt} line {n}"
            parts = line.split()
            if len(parts) != 5:
                raise UserError(f"{where}: expected 'class cx cy w h', got {line.strip()!r}")
            try:
                cls, cx, cy, bw, bh = int(parts[0]), *(float(p) for p in parts[1:])
            except ValueError:
                raise UserError(f"{where}: not numbers: {line.strip()!r}") from None
            if not 0 <= cls < len(classes):
                raise UserError(f"{where}: unknown class index {cls} ({len(classes)} classes: 0..{len(classes) - 1})")
            box = check([(cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h], w, h, where)
            if box is not None:
                rec.boxes.append(box)
                rec.labels.append(cls)
        records.append(rec)
    check.finish(labels_dir)
    return DetectionSet(list(classes), records, str(images_dir))


def write_yolo(ds: DetectionSet, labels_dir: str | os.PathLike) -> Path:
    """``<stem>.txt`` per image and ``classes.txt`` into ``labels_dir``."""
    out = Path(labels_dir)
    for rec in ds.images:
        lines = []
        for (x1, y1, x2, y2), label in zip(rec.boxes, rec.labels):
            cx, cy = (x1 + x2) / 2 / rec.width, (y1 + y2) / 2 / rec.height
            lines.append(f"{label} {cx:.6f} {cy:.6f} {(x2 - x1) / rec.width:.6f} {(y2 - y1) / rec.height:.6f}")
        write_text(out / (Path(rec.file).stem + ".txt"), "".join(line + "\n" for line in lines))
    write_text(out / "classes.txt", "".join(c + "\n" for c in ds.classes))
    return out


def read_yolo_folders(labels_dir: str | os.PathLike, images_dir: str | os.PathLike, classes: list[str],
                      bad_boxes: str = "error") -> tuple[DetectionSet, dict[str, list[str]] | None]:
    """A YOLO set and its own split: with ``images_dir`` holding split folders and no images
    (Ultralytics: ``images/train``, ``images/val`` and ``labels/train``, ``labels/val``), every
    split folder is read with its labels folder, files named ``<split folder>/<image>``; else the
    flat folder, split ``None``."""
    labels_dir, images_dir = Path(labels_dir), Path(images_dir)
    subs = data_dirs(images_dir) if images_dir.is_dir() else []
    named = {d.name: SPLIT_NAMES.get(d.name.lower()) for d in subs}
    flat = any(p.suffix.lower() in IMAGE_SUFFIXES and not is_junk(p) for p in images_dir.iterdir()) if subs else True
    if flat or None in named.values():
        return read_yolo(labels_dir, images_dir, classes, bad_boxes), None
    records, split = [], {}
    for folder, name in named.items():
        part = read_yolo(labels_dir / folder, images_dir / folder, classes, bad_boxes)
        for rec in part.images:
            rec.file = f"{folder}/{rec.file}"
        records += part.images
        split.setdefault(name, []).extend(r.file for r in part.images)
    return DetectionSet(list(classes), records, str(images_dir)), split
