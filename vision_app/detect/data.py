"""Detection data: read the configured source (its files found by :mod:`vision_app.detect.layouts`),
validate, de-duplicate, split, cache; and the torch dataset that feeds images and boxes through the
``transforms.v2`` presets (the eval preset, letterbox + normalise, is what ``evaluate``,
``predict``, export and the server feed the model).

``preprocess(cfg)`` writes ``dataset.json`` (class names, image folder, and per split the image
records in the internal form of :mod:`vision_app.detect.formats`) and ``manifest.json``
(counts, boxes per class, dropped duplicates, the data config) into the cache keyed by
``cfg.data``; ``load_processed(cfg)`` reads it back, preprocessing first when it is missing.
"""
from __future__ import annotations

import csv
import hashlib
import json
import logging
import random
from collections import Counter
from pathlib import Path

import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors

from shared.config import to_dict
from shared.errors import UserError
from shared.runs import cache_dir, data_root, read_json, write_json
from vision_app.common import shapes
from vision_app.common.annotations import read_classes_file
from vision_app.common.data import SPLIT_NAMES, raise_if_bad
from vision_app.common.images import BadImage, decode_image, read_image
from vision_app.common.transforms import DetectionEval, DetectionTrain
from vision_app.detect.config import DetectConfig, DetectData
from vision_app.detect.formats import DetectionSet, read_coco
from vision_app.detect.layouts import eval_format, read_set

log = logging.getLogger(__name__)
APP = "vision_app"
SPLITS = ("train", "valid", "test")


def train_preset(cfg: DetectConfig) -> DetectionTrain:
    a = cfg.augment
    return DetectionTrain(cfg.model.input_size, hflip=a.hflip, jitter=a.jitter, letterbox=True, scale=a.scale)


def eval_preset(cfg: DetectConfig) -> DetectionEval:
    """What evaluation, ``predict``, export and the server feed the model: letterbox + normalise."""
    return DetectionEval(cfg.model.input_size, letterbox=True)


def _classes(value) -> list[str] | None:
    if value is None or isinstance(value, list):
        return value
    return read_classes_file(value)


def read_source(data: DetectData) -> tuple[DetectionSet, str | dict | None]:
    """The configured data as a :class:`DetectionSet`, and the split spec to apply to it: ``data.split``,
    else the set's own (:func:`~vision_app.detect.layouts.read_set`)."""
    if data.format == "shapes":
        root = shapes.ensure_shapes(
            data_root() / "generated" / f"shapes-detect-n{data.shapes_images}-s{data.shapes_size}-seed{data.seed}",
            data.shapes_images, data.shapes_size, data.seed, data.shapes_max_objects)
        ds = read_coco(root / "annotations.json", root / "images", data.bad_boxes)
        return ds, data.split or str(root / "split.json")
    ds, own = read_set(data.format, data.annotations, data.images, _classes(data.classes), data.bad_boxes)
    return ds, data.split or own


def _read_name_list(path: Path) -> list[str]:
    if not path.is_file():
        raise UserError(f"split file not found: {path}")
    if path.suffix.lower() == ".csv":
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.DictReader(f))
        if rows and "filename" not in rows[0]:
            raise UserError(f"{path}: a split CSV needs a 'filename' column (has {list(rows[0])})")
        return [r["filename"] for r in rows]
    return [line.strip() for line in path.read_text(encoding="utf-8-sig").splitlines() if line.strip()]


def read_split_spec(spec: str | dict | None) -> dict[str, list[str]]:
    """A split spec (see ``DetectData.split``) as ``{split: [file names]}``; names may repeat."""
    if spec is None:
        return {}
    if isinstance(spec, str):
        path = Path(spec)
        if not path.is_file():
            raise UserError(f"split file not found: {path}")
        spec_data = json.loads(path.read_text(encoding="utf-8-sig"))
        if not isinstance(spec_data, dict):
            raise UserError(f"{path}: expected {{\"train\": [...], \"valid\": [...], \"test\": [...]}}")
        named = {k: list(v) for k, v in spec_data.items()}
    else:
        named = {k: list(v) if isinstance(v, list) else _read_name_list(Path(v)) for k, v in spec.items()}
    unknown = sorted(k for k in named if k.lower() not in SPLIT_NAMES)
    if unknown:
        raise UserError(f"unknown split name(s) {unknown}: use train, valid (or val) and test")
    out: dict[str, list[str]] = {}
    for key, names in named.items():
        if SPLIT_NAMES[key.lower()] in out:
            raise UserError(f"split {SPLIT_NAMES[key.lower()]!r} is given twice ({sorted(named)})")
        out[SPLIT_NAMES[key.lower()]] = names
    return out


def match_names(names: list[str], files: list[str]) -> tuple[list[str], list[str]]:
    """``(matched files, names that match none)``: a name matches a file by its name, or by its
    name without the extension (VOC split files list ``2008_000123``, not ``2008_000123.jpg``)."""
    known = set(files)
    by_stem: dict[str, list[str]] = {}
    for f in files:
        by_stem.setdefault(str(Path(f).with_suffix("")), []).append(f)
    matched, missing = [], []
    for name in names:
        if name in known:
            matched.append(name)
        elif len(by_stem.get(name, [])) == 1:
            matched.append(by_stem[name][0])
        else:
            missing.append(name)
    return matched, missing


def assign_splits(files: list[str], named: dict[str, list[str]], valid_fraction: float,
                  test_fraction: float, seed: int) -> dict[str, list[str]]:
    """Keep the named lists; cut each missing split (a fraction of all images, seeded) out of the
    named train list when there is one, else out of the images no list names (then train)."""
    known = set(files)
    out: dict[str, list[str]] = {}
    for split, names in named.items():
        matched, missing = match_names(names, files)
        if missing:
            raise UserError(f"split '{split}' lists {len(missing)} name(s) that match no annotated image (with or "
                            f"without its extension), e.g. {missing[:3]}; annotated images are e.g. {files[:3]}")
        out[split] = sorted(set(matched))
    taken = [f for names in out.values() for f in names]
    if len(taken) != len(set(taken)):
        raise UserError("an image is listed in more than one split; each image belongs to exactly one")
    unlisted = sorted(known - set(taken))
    if "train" in out and unlisted:
        log.warning("%d image(s) are in no split list and are left out", len(unlisted))
    pool = list(out["train"]) if "train" in out else unlisted
    random.Random(seed).shuffle(pool)
    for split, frac in (("test", test_fraction), ("valid", valid_fraction)):
        if split not in out:
            n = min(round(frac * len(known)), max(len(pool) - 1, 0))
            out[split], pool = sorted(pool[:n]), pool[n:]
    out["train"] = sorted(pool)
    return {s: out[s] for s in SPLITS}


def drop_duplicates(ds: DetectionSet) -> tuple[DetectionSet, list[str]]:
    """Keep the first of images with identical bytes (a duplicate across splits would leak).
    Every image is decoded on the way: a truncated or unreadable one stops here, all of them
    listed in one message, not in the middle of training."""
    seen, keep, dropped, bad = set(), [], [], []
    for rec in ds.images:
        path = Path(ds.images_dir) / rec.file
        data = path.read_bytes()
        try:
            decode_image(data, str(path))
        except BadImage as exc:
            bad.append(str(exc))
        digest = hashlib.sha256(data).hexdigest()
        if digest in seen:
            dropped.append(rec.file)
        else:
            seen.add(digest)
            keep.append(rec)
    raise_if_bad(bad)
    return DetectionSet(ds.classes, keep, ds.images_dir), dropped


def preprocess(cfg: DetectConfig) -> dict:
    """Read, validate, de-duplicate and split the data; write the cache. Returns the manifest."""
    ds, spec = read_source(cfg.data)
    if not ds.images:
        raise UserError("the data holds no images")
    ds, dropped = drop_duplicates(ds)
    # a copy dropped as a duplicate leaves its split list too (the kept copy stays where it is listed)
    gone = set(dropped) | {str(Path(f).with_suffix("")) for f in dropped}
    named = {k: [f for f in v if f not in gone] for k, v in read_split_spec(spec).items()}
    splits = assign_splits([r.file for r in ds.images], named, cfg.data.valid_fraction,
                           cfg.data.test_fraction, cfg.data.seed)
    for split in ("train", "test"):
        if not splits[split]:
            raise UserError(f"the {split} split is empty; add images or change data.split / fractions")
    out = cache_dir(APP, cfg.name, to_dict(cfg.data))
    by_file = {r.file: r for r in ds.images}
    write_json(out / "dataset.json", {"classes": ds.classes, "images_dir": str(Path(ds.images_dir).resolve()),
                                      "splits": {s: [vars(by_file[f]) for f in files] for s, files in splits.items()}})
    counts = {}
    for s, files in splits.items():
        per_class = Counter(ds.classes[label] for f in files for label in by_file[f].labels)
        counts[s] = {"images": len(files), "boxes": sum(per_class.values()), "boxes_per_class": dict(per_class)}
    manifest = {"classes": ds.classes, "splits": counts, "duplicates_dropped": dropped[:50],
                "n_duplicates_dropped": len(dropped), "data": to_dict(cfg.data), "cache": str(out)}
    write_json(out / "manifest.json", manifest)
    log.info("detection data: %s", {s: c["images"] for s, c in counts.items()})
    return manifest


def load_processed(cfg: DetectConfig) -> tuple[list[str], dict[str, DetectionSet]]:
    """Class names and one :class:`DetectionSet` per split (preprocessing first if needed)."""
    path = cache_dir(APP, cfg.name, to_dict(cfg.data)) / "dataset.json"
    if not path.exists():
        preprocess(cfg)
    data = read_json(path)
    sets = {s: DetectionSet.from_dict({"classes": data["classes"], "images_dir": data["images_dir"], "images": recs})
            for s, recs in data["splits"].items()}
    return data["classes"], sets


def read_eval_data(path: str | Path, classes: list[str], bad_boxes: str = "error") -> DetectionSet:
    """``evaluate --data``: a COCO JSON or a folder in any layout ``data.annotations`` takes alone
    (:mod:`vision_app.detect.layouts`: COCO, Roboflow, CVAT, Label Studio, Ultralytics, VOC
    devkits); when the set has its own test split (a ``test/`` folder or file, a devkit's
    ``ImageSets/Main/test.txt``) only that split, else every image; its labels mapped to the
    model's class order."""
    p = Path(path)
    ds, own = read_set(eval_format(p), p, None, None, bad_boxes)
    test = read_split_spec(own).get("test")
    if test:
        ds = ds.subset(set(assign_splits([r.file for r in ds.images], {"test": test}, 0, 0, 0)["test"]))
        log.info("--data %s: its own test split, %d image(s)", p, len(ds.images))
    unknown = sorted(set(ds.classes) - set(classes))
    if unknown:
        raise UserError(f"--data has classes the model does not know: {unknown} (model: {classes})")
    return ds.in_class_order(classes)  # the data's class order → the model's


class DetectionDataset(Dataset):
    """``(image tensor, {"boxes", "labels"}, index)`` with boxes in the transformed image's pixels."""

    def __init__(self, ds: DetectionSet, preset):
        self.ds, self.preset = ds, preset

    def __len__(self) -> int:
        return len(self.ds.images)

    def __getitem__(self, i: int):
        rec = self.ds.images[i]
        image = read_image(Path(self.ds.images_dir) / rec.file)
        boxes = tv_tensors.BoundingBoxes(torch.tensor(rec.boxes, dtype=torch.float32).reshape(-1, 4),
                                         format="XYXY", canvas_size=(image.height, image.width))
        x, t = self.preset(image, {"boxes": boxes, "labels": torch.tensor(rec.labels, dtype=torch.int64)})
        return x, {"boxes": t["boxes"].as_subclass(torch.Tensor), "labels": t["labels"]}, i


def collate(batch: list) -> dict:
    images, targets, index = zip(*batch)
    return {"images": torch.stack(images), "targets": list(targets), "index": torch.tensor(index)}
