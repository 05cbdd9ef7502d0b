"""Reading the user's (or the embedded) images, validating them, splitting, and torch datasets.

Classification comes as a folder per class (``root/<class>/<image>``) or a CSV of ``path,label``
rows; segmentation as ``root/images/*`` with ``root/masks/<stem>.png`` and a class list. Every
image is decoded once at preprocess time, so an unreadable or truncated file, a mask of the wrong
size, a label outside the class list or an empty split stops the run with a message naming the
file (all bad files are listed, not just the first).
"""
from __future__ import annotations

import csv
import hashlib
import json
import logging
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from sklearn.model_selection import train_test_split
from torch.utils.data import Dataset

from shared.errors import UserError
from shared.runs import atomic_path, data_root
from vision_app.images import IMAGE_SUFFIXES, BadImage, ImageLimits, read_image, read_mask
from vision_app.shapes import ensure_shapes

log = logging.getLogger(__name__)
SPLITS = ("train", "valid", "test")


# ---------------------------------------------------------------- embedded data
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


# ---------------------------------------------------------------- classification sources
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


# ---------------------------------------------------------------- segmentation sources
def segmentation_records(cfg) -> tuple[list[str], list[tuple[str, str]], dict | None]:
    """``(class names, [(image path, mask path), …], fixed split or None)`` for ``cfg.data``."""
    if cfg.source == "shapes":
        root = ensure_shapes(data_root() / "generated" / f"shapes-{cfg.image_size}px-{cfg.n_images}-s{cfg.seed}",
                             cfg.n_images, cfg.image_size, cfg.seed)
    else:
        root = Path(cfg.path)
    if not (root / "images").is_dir() or not (root / "masks").is_dir():
        raise UserError(f"{root} must hold images/ and masks/ folders (a mask per image, same file stem)")
    if cfg.classes:
        classes = list(cfg.classes)
    elif (root / "classes.json").exists():
        classes = json.loads((root / "classes.json").read_text(encoding="utf-8"))
    else:
        raise UserError(f"no class list: write {root}/classes.json (a JSON list, background first) "
                        "or set data.classes")
    masks = {m.stem: m for m in (root / "masks").iterdir() if m.suffix.lower() == ".png"}
    records, missing = [], []
    for img in sorted((root / "images").iterdir()):
        if img.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        if img.stem in masks:
            records.append((str(img), str(masks[img.stem])))
        else:
            missing.append(img.name)
    if missing:
        raise UserError(f"{len(missing)} image(s) in {root}/images have no mask in {root}/masks: {missing[:5]}")
    split = None
    if (root / "split.json").exists():
        names = json.loads((root / "split.json").read_text(encoding="utf-8"))
        where = {n: s for s, files in names.items() for n in files}
        split = {s: [i for i, (img, _) in enumerate(records) if where.get(Path(img).name) == s] for s in SPLITS}
    return classes, records, split


# ---------------------------------------------------------------- validation and splitting
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
        hashes.append(_sha(path))
    _raise_if_bad(bad)
    return [index[c] for _, c in records], hashes


def validate_segmentation(records, n_classes: int, limits: ImageLimits) -> list[str]:
    bad, hashes = [], []
    for img_path, mask_path in records:
        try:
            size = read_image(img_path, limits).size
            read_mask(mask_path, expected_size=size, num_classes=n_classes, limits=limits)
        except BadImage as exc:
            bad.append(str(exc))
        hashes.append(_sha(img_path))
    _raise_if_bad(bad)
    return hashes


def _raise_if_bad(bad: list[str]) -> None:
    if bad:
        more = f" (and {len(bad) - 5} more)" if len(bad) > 5 else ""
        raise UserError(f"{len(bad)} bad file(s): " + "; ".join(bad[:5]) + more)


def _sha(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def dedupe(hashes: list[str], labels: list | None = None) -> tuple[list[int], int]:
    """Indices to keep (first of each identical file) and how many duplicates were dropped.
    Identical files with different labels are a :class:`UserError`."""
    first: dict[str, int] = {}
    keep = []
    for i, h in enumerate(hashes):
        if h in first:
            if labels is not None and labels[first[h]] != labels[i]:
                raise UserError(f"the same image appears with two labels (entries {first[h]} and {i}); fix the data")
            continue
        first[h] = i
        keep.append(i)
    return keep, len(hashes) - len(keep)


def split_indices(n: int, test_fraction: float, valid_fraction: float, seed: int,
                  stratify: list[int] | None = None) -> dict[str, list[int]]:
    """Seeded train/valid/test index lists (stratified by ``stratify`` when given)."""
    idx = np.arange(n)
    strat = np.asarray(stratify) if stratify is not None else None
    try:
        rest, test = train_test_split(idx, test_size=test_fraction, random_state=seed, stratify=strat)
        valid: np.ndarray = np.array([], dtype=int)
        if valid_fraction > 0:
            rest, valid = train_test_split(rest, test_size=valid_fraction / (1 - test_fraction),
                                           random_state=seed, stratify=None if strat is None else strat[rest])
    except ValueError as exc:
        raise UserError(f"cannot split {n} images (test_fraction={test_fraction}, valid_fraction={valid_fraction}): "
                        f"{exc}") from None
    return {"train": sorted(rest.tolist()), "valid": sorted(valid.tolist()), "test": sorted(test.tolist())}


def check_splits(splits: dict[str, list], need_valid: bool = True) -> None:
    for s in SPLITS:
        if not splits.get(s) and (s != "valid" or need_valid):
            raise UserError(f"the {s} split is empty ({', '.join(f'{k}={len(v)}' for k, v in splits.items())}); "
                            "add images or change data.test_fraction / data.valid_fraction")


# ---------------------------------------------------------------- torch datasets
class ImageDataset(Dataset):
    """Records → preset-transformed examples. ``records`` items are ``{"image": path, "label": int}``
    (classification) or ``{"image": path, "mask": path}`` (segmentation). Decoded images are kept
    in memory after first use (these data sets are small; set ``cache=False`` for big ones)."""

    def __init__(self, records: list[dict], preset, limits: ImageLimits = ImageLimits(), cache: bool = True):
        self.records, self.preset, self.limits, self.cache = records, preset, limits, cache
        self._memo: dict[int, tuple] = {}

    def __len__(self) -> int:
        return len(self.records)

    def raw(self, i: int) -> tuple[np.ndarray, object]:
        """The decoded image (``HxWx3`` uint8) and its label or mask, before any transform."""
        if i in self._memo:
            return self._memo[i]
        rec = self.records[i]
        image = np.asarray(read_image(rec["image"], self.limits))
        target = read_mask(rec["mask"], limits=self.limits) if "mask" in rec else int(rec["label"])
        if self.cache:
            self._memo[i] = (image, target)
        return image, target

    def __getitem__(self, i: int) -> dict:
        image, target = self.raw(i)
        if isinstance(target, int):
            return {"image": self.preset(image), "label": torch.tensor(target)}
        x, mask = self.preset(image, target)
        return {"image": x, "mask": mask.as_subclass(torch.Tensor)}
