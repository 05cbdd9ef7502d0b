"""Classification data: a folder per class (``root/<class>/<image>``), a CSV of ``path,label`` rows,
or the embedded digits; validated, de-duplicated and split once by ``preprocess`` into the
manifest cache. The train and eval presets live here too: ``evaluate``, ``predict`` and the server
all feed the model through :func:`eval_preset`.
"""
from __future__ import annotations

import csv
import logging
from pathlib import Path

import numpy as np
from PIL import Image

from shared.errors import UserError
from shared.runs import atomic_path, data_root
from vision_app.common import data as common
from vision_app.common.data import file_hash, raise_if_bad
from vision_app.common.images import IMAGE_SUFFIXES, BadImage, ImageLimits, read_image
from vision_app.common.manifest import write_manifest
from vision_app.common.transforms import ClassificationEval, ClassificationTrain

log = logging.getLogger(__name__)


def train_preset(cfg) -> ClassificationTrain:
    a = cfg.augment
    return ClassificationTrain(a.size, (a.scale_min, 1.0), a.rotation, a.hflip, a.vflip, a.jitter, a.mean, a.std)


def eval_preset(cfg) -> ClassificationEval:
    """The one eval preset: ``evaluate``, ``predict`` and the server all use it."""
    return ClassificationEval(cfg.augment.size, cfg.augment.mean, cfg.augment.std)


def write_digits(root: Path | None = None) -> Path:
    """scikit-learn's 1,797 8×8 digits as grey PNGs in ``root/<digit>/<index>.png`` (once)."""
    from sklearn.datasets import load_digits

    root = root or data_root() / "generated" / "digits"
    done = root / "DONE"
    if done.exists():
        return root
    digits = load_digits()
    for i, (pixels, label) in enumerate(zip(digits.images, digits.target)):
        path = root / str(int(label)) / f"{i:04d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:  # 0..16 intensities stretched to 0..255
            Image.fromarray(np.round(pixels * 255 / 16).astype(np.uint8), "L").save(tmp, format="PNG")
    done.write_text("1797\n")
    return root


def classification_records(source: str, path: str | None) -> tuple[list[str], list[tuple[str, str]]]:
    """``(class names, [(image path, class name), …])`` from a folder per class or a CSV."""
    if source == "digits":
        source, path = "folder", str(write_digits())
    root = Path(path or "")
    if source == "folder":
        if not root.is_dir():
            raise UserError(f"data.path {root} is not a folder (expected one sub-folder per class)")
        classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
        if not classes:
            raise UserError(f"{root} has no class sub-folders; expected {root}/<class>/<image>")
        records = [(str(f), c) for c in classes for f in sorted((root / c).iterdir())
                   if f.suffix.lower() in IMAGE_SUFFIXES]
        empty = [c for c in classes if not any(r[1] == c for r in records)]
        if empty:
            raise UserError(f"class folder(s) with no images in {root}: {empty[:10]} "
                            f"(image suffixes: {', '.join(IMAGE_SUFFIXES)})")
        return classes, records
    if not root.is_file():
        raise UserError(f"data.path {root} is not a file (expected a CSV with columns path,label)")
    with open(root, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or not {"path", "label"} <= set(reader.fieldnames):
            raise UserError(f"{root}: needs a header with columns path,label; found {reader.fieldnames}")
        records = []
        for row_no, row in enumerate(reader, start=2):
            if not row["path"] or not row["label"]:
                raise UserError(f"{root}, row {row_no}: empty path or label")
            p = Path(row["path"])
            records.append((str(p if p.is_absolute() else root.parent / p), row["label"].strip()))
    if not records:
        raise UserError(f"{root} has a header but no rows")
    return sorted({r[1] for r in records}), records


def validate_classification(records, classes, limits: ImageLimits) -> tuple[list[int], list[str]]:
    """Decode every image; returns ``(labels, sha256 per file)``; raises listing the bad files."""
    index = {c: i for i, c in enumerate(classes)}
    unknown = sorted({c for _, c in records} - set(index))
    if unknown:
        raise UserError(f"label(s) {unknown[:10]} are not in the class list {classes[:20]}")
    bad, hashes = [], []
    for path, _ in records:
        try:
            read_image(path, limits)
        except BadImage as exc:
            bad.append(str(exc))
        hashes.append(file_hash(path))
    raise_if_bad(bad)
    return [index[c] for _, c in records], hashes


def preprocess(cfg) -> dict:
    """Read the images (folder per class, CSV, or the embedded digits), decode every one, drop
    duplicate files, and split stratified and seeded into train/valid/test."""
    d = cfg.data
    found, records = classification_records(d.source, d.path)
    classes = list(d.classes) if d.classes else found
    labels, hashes = validate_classification(records, classes, d.limits())
    keep, dropped = common.dedupe(hashes, labels)
    labels = [labels[i] for i in keep]
    counts = np.bincount(labels, minlength=len(classes))
    if (counts < d.min_per_class).any():
        few = [f"{classes[i]}={counts[i]}" for i in np.flatnonzero(counts < d.min_per_class)]
        raise UserError(f"class(es) with fewer than data.min_per_class={d.min_per_class} images: {few[:10]}")
    idx = common.split_indices(len(keep), d.test_fraction, d.valid_fraction, d.seed, stratify=labels)
    common.check_splits(idx, need_valid=d.valid_fraction > 0)
    splits = {s: [{"image": records[keep[i]][0], "label": labels[i]} for i in ix] for s, ix in idx.items()}
    manifest = write_manifest(cfg, classes, splits, {"duplicates_dropped": dropped},
                              [hashes[i] for i in keep])
    log.info("classification data: %d classes, %s, %d duplicate files dropped",
             len(classes), manifest["counts"], dropped)
    return {"classes": len(classes), "counts": manifest["counts"], "duplicates_dropped": dropped}


def labelled_records(path: Path, classes: list[str], limits: ImageLimits) -> list[dict]:
    """``evaluate --data``: a folder per class or a ``path,label`` CSV, labels in the run's class order."""
    _, raw = classification_records("csv" if path.suffix.lower() == ".csv" else "folder", str(path))
    labels, _ = validate_classification(raw, classes, limits)
    return [{"image": p, "label": y} for (p, _), y in zip(raw, labels)]
