"""Classification data: a folder per class (``root/<class>/<image>``), a root of ``train/``, ``val/``
and ``test/`` folders each holding a folder per class (the data's own split), a CSV of
``path,label[,split]`` rows, or the embedded digits; validated, de-duplicated and split once by
``preprocess`` into the manifest cache. The train and eval presets live here too: ``evaluate``, ``predict`` and the server
all feed the model through :func:`eval_preset`.
"""
from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from shared.errors import UserError
from shared.runs import atomic_path, data_root
from vision_app.common import data as common
from vision_app.common.data import SPLIT_NAMES, SPLITS, file_hash, raise_if_bad
from vision_app.common.images import (
    IMAGE_SUFFIXES,
    BadImage,
    ImageLimits,
    data_dirs,
    image_files,
    read_image,
    with_image_suffix,
)
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


def split_folders(root: Path) -> dict[str, Path] | None:
    """``{split: folder}`` when ``root`` holds ``train/`` and ``val/`` or ``test/`` (each a folder per
    class) and nothing else; ``None`` for a plain folder per class."""
    subs = data_dirs(root)
    named = {SPLIT_NAMES.get(d.name.lower()): d for d in subs}
    if None in named or "train" not in named or len(named) < 2 or len(named) != len(subs):
        return None
    return named


def folder_records(root: Path, split: str | None = None) -> tuple[list[str], list[tuple[str, str, str | None]]]:
    """``root/<class>/<image>`` as ``(classes, [(path, class, split), …])``."""
    classes = [d.name for d in data_dirs(root)]
    if not classes:
        raise UserError(f"{root} has no class sub-folders; expected {root}/<class>/<image>")
    records = [(str(f), c, split) for c in classes for f in image_files(root / c)]
    empty = [c for c in classes if not any(r[1] == c for r in records)]
    deeper = [c for c in classes if c not in empty and any(image_files(d) for d in data_dirs(root / c))]
    loose = image_files(root)
    unread = ([f"{len(loose)} image(s) directly in it"] if loose else []) + \
        ([f"the images in sub-folders of class folder(s) {deeper[:5]}"] if deeper else [])
    if unread:
        log.warning("%s: %s are not read (only %s/<class>/<image>)", root, " and ".join(unread), root)
    if empty:
        nested = [c for c in empty if data_dirs(root / c)]
        hint = (f"; {nested[:3]} hold folders, not images: name the split folders train/, val/ and test/ "
                "(each a folder per class) to use the data set's own split") if nested else ""
        raise UserError(f"class folder(s) with no images in {root}: {empty[:10]} "
                        f"(image suffixes: {', '.join(IMAGE_SUFFIXES)}){hint}")
    return classes, records


@dataclass(frozen=True)
class CsvColumns:
    """How a classification CSV names its columns and where its images are (``data.*`` keys)."""

    path: str = "path"
    label: str = "label"
    images_dir: str | None = None

    @classmethod
    def of(cls, data) -> CsvColumns:
        return cls(data.path_column, data.label_column, data.images_dir)


def csv_records(path: Path, columns: CsvColumns = CsvColumns()) -> tuple[list[str], list[tuple[str, str, str | None]]]:
    """A ``path,label[,split]`` CSV (paths relative to its folder or ``columns.images_dir``; other
    column names by ``columns``) as ``(classes, [(path, class, split), …])``."""
    base = Path(columns.images_dir) if columns.images_dir else path.parent
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or not {columns.path, columns.label} <= set(reader.fieldnames):
            raise UserError(f"{path}: needs a header with columns {columns.path},{columns.label} (and optionally "
                            f"split); found {reader.fieldnames}: name yours with data.path_column and "
                            "data.label_column")
        records, bad_splits = [], set()
        for row_no, row in enumerate(reader, start=2):
            image, label = (row[columns.path] or "").strip(), (row[columns.label] or "").strip()
            if not image or not label:
                raise UserError(f"{path}, row {row_no}: empty {columns.path} or {columns.label}")
            given = (row.get("split") or "").strip()
            if given and given.lower() not in SPLIT_NAMES:
                bad_splits.add(given)
            p = Path(image.replace("\\", "/"))  # a CSV written on Windows: imgs\cat\1.jpg
            records.append((str(with_image_suffix(p if p.is_absolute() else base / p)), label,
                            SPLIT_NAMES.get(given.lower()) if given else None))
    if bad_splits:
        raise UserError(f"{path}: split value(s) {sorted(bad_splits)[:5]} are not train, val or test "
                        "(or empty: the row joins train)")
    if not records:
        raise UserError(f"{path} has a header but no rows")
    return sorted({r[1] for r in records}), records


def classification_records(source: str, path: str | None, columns: CsvColumns = CsvColumns(),
                           ) -> tuple[list[str], list[tuple[str, str, str | None]]]:
    """``(class names, [(image path, class name, given split or None), …])`` from a folder per class,
    a root of ``train/ val/ test/`` folders per class, or a CSV (with an optional ``split`` column)."""
    if source == "digits":
        source, path = "folder", str(write_digits())
    root = Path(path or "")
    if source == "folder":
        if not root.is_dir():
            raise UserError(f"data.path {root} is not a folder (expected one sub-folder per class)")
        splits = split_folders(root)
        if splits is None:
            return folder_records(root)
        parts = [folder_records(folder, split) for split, folder in sorted(splits.items(), key=_split_order)]
        return sorted({c for classes, _ in parts for c in classes}), [r for _, recs in parts for r in recs]
    if not root.is_file():
        raise UserError(f"data.path {root} is not a file (expected a CSV with columns {columns.path},{columns.label})")
    return csv_records(root, columns)


def _split_order(item: tuple[str, Path]) -> int:
    return SPLITS.index(item[0])


def validate_classification(records, classes, limits: ImageLimits) -> tuple[list[int], list[str]]:
    """Decode every image; returns ``(labels, sha256 per file)``; raises listing the bad files."""
    index = {c: i for i, c in enumerate(classes)}
    unknown = sorted({r[1] for r in records} - set(index))
    if unknown:
        raise UserError(f"label(s) {unknown[:10]} are not in the class list {classes[:20]}")
    bad, hashes = [], []
    for path, *_ in records:
        try:
            read_image(path, limits)
        except BadImage as exc:  # a missing file too: listed with the others, never hashed
            bad.append(common.bad_file(exc))
            continue
        hashes.append(file_hash(path))
    raise_if_bad(bad)
    return [index[r[1]] for r in records], hashes


def preprocess(cfg) -> dict:
    """Read the images (folder per class, ``train/ val/ test/`` folders of them, CSV, or the embedded
    digits), decode every one, drop duplicate files (a copy in a later split leaves it), and split:
    the data's own split when it has one (``data.split: auto``; a split it lacks is carved out of
    train), else stratified and seeded into train/valid/test."""
    d = cfg.data
    found, records = classification_records(d.source, d.path, CsvColumns.of(d))
    classes = list(d.classes) if d.classes else found
    labels, hashes = validate_classification(records, classes, d.limits())
    keep, dropped = common.dedupe(hashes, labels)
    labels = [labels[i] for i in keep]
    counts = np.bincount(labels, minlength=len(classes))
    if (counts < d.min_per_class).any():
        few = [f"{classes[i]}={counts[i]}" for i in np.flatnonzero(counts < d.min_per_class)]
        raise UserError(f"class(es) with fewer than data.min_per_class={d.min_per_class} images: {few[:10]}")
    tags = [records[i][2] for i in keep]
    given = d.split == "auto" and any(t is not None for t in tags)
    if given:
        idx = common.given_split(tags, d.test_fraction, d.valid_fraction, d.seed, stratify=labels)
    else:
        idx = common.split_indices(len(keep), d.test_fraction, d.valid_fraction, d.seed, stratify=labels)
    common.check_splits(idx, need_valid=d.valid_fraction > 0 or "valid" in tags)
    untrained = sorted(set(range(len(classes))) - {labels[i] for i in idx["train"]})
    if untrained:
        log.warning("class(es) %s have no train images (only in %s): the model cannot learn them",
                    [classes[c] for c in untrained][:10], "/".join(s for s in SPLITS if s != "train"))
    splits = {s: [{"image": records[keep[i]][0], "label": labels[i]} for i in ix] for s, ix in idx.items()}
    manifest = write_manifest(cfg, classes, splits, {"duplicates_dropped": dropped,
                                                     "split": "given" if given else "random"},
                              [hashes[i] for i in keep])
    log.info("classification data: %d classes, %s (%s split), %d duplicate files dropped",
             len(classes), manifest["counts"], "the data's own" if given else "a seeded random", dropped)
    return {"classes": len(classes), "counts": manifest["counts"], "duplicates_dropped": dropped}


def labelled_records(path: Path, classes: list[str], limits: ImageLimits,
                     columns: CsvColumns = CsvColumns()) -> list[dict]:
    """``evaluate --data``: a folder per class or a CSV (named by ``columns``: the recipe's), labels in
    the run's class order; when the set has its own test split (a ``test/`` folder, ``test`` in the
    CSV's split column) only that split, else every image (detection's and segmentation's
    ``evaluate --data`` rule)."""
    _, raw = classification_records("csv" if path.suffix.lower() == ".csv" else "folder", str(path), columns)
    test = [r for r in raw if r[2] == "test"]
    if test:
        log.info("--data %s: its own test split, %d of %d images", path, len(test), len(raw))
        raw = test
    elif any(r[2] is not None for r in raw):
        log.warning("%s has its own split but no test part; scoring all %d images", path, len(raw))
    labels, _ = validate_classification(raw, classes, limits)
    return [{"image": r[0], "label": y} for r, y in zip(raw, labels)]
