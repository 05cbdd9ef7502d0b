"""YOLO txt labels: ``<stem>.txt`` per image (``class cx cy w h``, normalised; no file or an empty
file = a background image), class names from a ``classes.txt`` or an Ultralytics ``data.yaml``
(the files, names and split folders are found by :mod:`vision_app.common.annotations`; a set of
several folders is joined by :mod:`vision_app.detect.layouts`). Into and out of the internal form
of :mod:`vision_app.detect.formats`.
"""
from __future__ import annotations

import os
from pathlib import Path

from shared.errors import UserError
from shared.runs import write_text
from vision_app.common.annotations import header_size, yolo_lines, yolo_pairs
from vision_app.detect.formats import BoxChecker, DetectionSet, ImageRecord


def read_yolo(labels_dir: str | os.PathLike, images_dir: str | os.PathLike, classes: list[str],
              bad_boxes: str = "error") -> DetectionSet:
    """Every image in ``images_dir``; its labels in ``labels_dir/<stem>.txt`` (none = no objects)."""
    labels_dir, images_dir = Path(labels_dir), Path(images_dir)
    records, check = [], BoxChecker(bad_boxes)
    for img_path, txt in yolo_pairs(labels_dir, images_dir):
        w, h = header_size(img_path, str(img_path))
        rec = ImageRecord(img_path.name, w, h)
        for where, line in yolo_lines(txt):
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
