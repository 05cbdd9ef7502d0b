"""Segmentation data: ``root/images/*`` with ``root/masks/<stem><mask_suffix>.png`` (class ids per
pixel, or one foreground class from 0/255, colour or instance masks: ``data.mask_mode``) and a
class list, or the generated shapes set, or COCO / YOLO-seg polygons drawn into masks
(:mod:`vision_app.segment.polygon_masks`); validated, de-duplicated and split once by
``preprocess`` into the manifest cache. The train and eval presets live here too: ``evaluate``,
``predict`` and the server all feed the model through :func:`eval_preset`.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

from shared.errors import UserError
from shared.runs import data_root
from vision_app.common import data as common
from vision_app.common.data import SPLIT_NAMES, SPLITS, file_hash, raise_if_bad, voc_image_sets
from vision_app.common.images import BadImage, ImageLimits, image_files, read_image, read_mask
from vision_app.common.manifest import write_manifest
from vision_app.common.shapes import ensure_shapes
from vision_app.common.transforms import SegmentationEval, SegmentationTrain
from vision_app.segment.polygon_masks import drawn_masks

log = logging.getLogger(__name__)


def train_preset(cfg) -> SegmentationTrain:
    a = cfg.augment
    return SegmentationTrain(a.size, (a.scale_min, 1.0), a.rotation, a.hflip, a.vflip, a.jitter, a.mean, a.std)


def eval_preset(cfg) -> SegmentationEval:
    """The one eval preset: ``evaluate``, ``predict`` and the server all use it."""
    return SegmentationEval(cfg.augment.size, cfg.augment.mean, cfg.augment.std)


def segmentation_records(cfg) -> tuple[list[str], list[tuple[str, str]], dict | None]:
    """``(class names, [(image path, mask path), …], fixed split or None)`` for ``cfg.data``."""
    if cfg.source in ("coco", "yolo"):
        return drawn_masks(cfg)
    if cfg.source == "shapes":
        root = ensure_shapes(data_root() / "generated" / f"shapes-{cfg.image_size}px-{cfg.n_images}-s{cfg.seed}",
                             cfg.n_images, cfg.image_size, cfg.seed)
        images, masks_dir = root / "images", root / "masks"
    else:
        root = Path(cfg.path)
        images, masks_dir = root / cfg.image_folder, root / cfg.mask_folder
    if not images.is_dir() or not masks_dir.is_dir():
        raise UserError(f"{root} must hold {images.name}/ and {masks_dir.name}/ folders (a mask per image, "
                        "same file stem; data.image_folder / data.mask_folder name them)")
    classes = class_list(cfg, root)
    masks = {m.stem: m for m in image_files(masks_dir)}
    records, missing = [], []
    together = images.resolve() == masks_dir.resolve()  # cat.jpg beside cat_mask.png
    listed = voc_lists(root) if cfg.source == "folder" else None
    for img in image_files(images):
        if (together and cfg.mask_suffix and img.stem.endswith(cfg.mask_suffix)) or (listed and img.stem not in listed):
            continue
        if img.stem + cfg.mask_suffix in masks:
            records.append((str(img), str(masks[img.stem + cfg.mask_suffix])))
        else:
            missing.append(img.name)
    if missing:
        shown = sorted(masks)[:2]
        raise UserError(f"{len(missing)} image(s) in {images} have no mask {masks_dir}/<stem>{cfg.mask_suffix}.png: "
                        f"{missing[:5]} (masks there are e.g. {shown}; set data.mask_suffix)")
    split = None
    if (root / "split.json").exists():
        names = json.loads((root / "split.json").read_text(encoding="utf-8-sig"))
        where = {n: s for s, files in names.items() for n in files}
        split = {s: [i for i, (img, _) in enumerate(records) if where.get(Path(img).name) == s] for s in SPLITS}
    elif listed:
        split = {s: [i for i, (img, _) in enumerate(records) if listed[Path(img).stem] == s] for s in SPLITS}
    return classes, records, split


def voc_lists(root: Path) -> dict[str, str] | None:
    """Pascal VOC's own segmentation split, ``ImageSets/Segmentation/{train,val,test}.txt`` (or
    ``trainval.txt`` without ``train.txt``): image stem → split, or ``None`` without those lists.
    Only listed images are read (VOC's ``JPEGImages`` holds many more than have masks)."""
    files = voc_image_sets(root / "ImageSets" / "Segmentation")
    if files is None:
        return None
    return {line.strip(): SPLIT_NAMES[n] for n, f in files.items()
            for line in f.read_text(encoding="utf-8-sig").splitlines() if line.strip()}


def class_list(cfg, root: Path) -> list[str]:
    """``data.classes``, else ``root/classes.json``; for one-foreground mask modes ``[background, foreground]``."""
    binary = cfg.mask_mode != "class_ids"
    if cfg.classes:
        classes = list(cfg.classes)
    elif (root / "classes.json").exists():
        classes = json.loads((root / "classes.json").read_text(encoding="utf-8-sig"))
    elif binary:
        classes = ["background", "foreground"]
    else:
        raise UserError(f"no class list: write {root}/classes.json (a JSON list, background first) "
                        "or set data.classes")
    if binary and len(classes) != 2:
        raise UserError(f"data.mask_mode={cfg.mask_mode} gives one foreground class: the class list needs two "
                        f"names (background first), got {classes}")
    return classes


def validate_segmentation(records, n_classes: int, limits: ImageLimits, mask_mode: str = "class_ids",
                          mask_values: dict[int, int] | None = None) -> list[str]:
    bad, hashes = [], []
    for img_path, mask_path in records:
        try:
            size = read_image(img_path, limits).size
            read_mask(mask_path, expected_size=size, num_classes=n_classes, limits=limits, mode=mask_mode,
                      image=img_path, mask_values=mask_values)
        except BadImage as exc:
            bad.append(common.bad_file(exc))
        hashes.append(file_hash(img_path))
    raise_if_bad(bad)
    return hashes


def _record(image: str, mask: str, mask_mode: str, mask_values: dict[int, int] | None = None) -> dict:
    """A cached split's entry: the pair, and how its mask reads when not plain class ids."""
    return {"image": image, "mask": mask, **({"mask_mode": mask_mode} if mask_mode != "class_ids" else {}),
            **({"mask_values": {str(k): v for k, v in mask_values.items()}} if mask_values else {})}


def preprocess(cfg) -> dict:
    """Check every image and mask (decodable, same size, ids inside the class list), drop
    duplicate images, and split: the set's own ``split.json`` or VOC ``ImageSets/Segmentation``
    lists when it has them (a split they lack carved out of train), else seeded."""
    d = cfg.data
    classes, records, fixed = segmentation_records(d)
    if len(classes) < 2:
        raise UserError(f"the class list needs background and at least one class, got {classes}")
    hashes = validate_segmentation(records, len(classes), d.limits(), d.mask_mode, d.mask_values)
    keep, dropped = common.dedupe(hashes)
    if fixed is None:
        kept_split = common.split_indices(len(keep), d.test_fraction, d.valid_fraction, d.seed)
    else:  # the set's own split, a split it lacks carved out of train; images it does not name left out
        tag = {i: s for s, ix in fixed.items() for i in ix}
        kept_split = common.given_split([tag.get(i, "unlisted") for i in keep], d.test_fraction,
                                        d.valid_fraction, d.seed)
    idx = {s: [keep[i] for i in ix] for s, ix in kept_split.items()}
    common.check_splits(idx, need_valid=d.valid_fraction > 0 or fixed is not None)
    splits = {s: [_record(*records[i], d.mask_mode, d.mask_values) for i in ix] for s, ix in idx.items()}
    manifest = write_manifest(cfg, classes, splits, {"duplicates_dropped": dropped}, [hashes[i] for i in keep])
    log.info("segmentation data: classes %s, %s", classes, manifest["counts"])
    return {"classes": classes, "counts": manifest["counts"], "duplicates_dropped": dropped}


def masked_records(cfg, path: Path, classes: list[str]) -> list[dict]:
    """``evaluate --data``: a folder with images/ and masks/ (ids in the run's class order), a COCO
    .json or export folder, or a YOLO-seg folder (``labels/`` or ``data.yaml``; the classes mapped
    to the run's by name); when the set has its own test split (a ``test/`` folder or file,
    ``split.json``, VOC's ``ImageSets/Segmentation/test.txt``) only that split, else every image
    (detection's ``evaluate --data`` rule)."""
    source = eval_source(cfg.data, path)
    drawn = {"mask_mode": "class_ids", "mask_values": {}} if source != "folder" else {}  # drawn masks hold class ids
    dcfg = cfg.data.model_copy(update={"source": source, "path": str(path), "classes": classes, **drawn})
    _, pairs, own = segmentation_records(dcfg)
    if own and own.get("test"):
        pairs = [pairs[i] for i in own["test"]]
        log.info("--data %s: its own test split, %d image(s)", path, len(pairs))
    validate_segmentation(pairs, len(classes), cfg.data.limits(), dcfg.mask_mode, dcfg.mask_values)
    return [_record(i, m, dcfg.mask_mode, dcfg.mask_values) for i, m in pairs]


def eval_source(data, path: Path) -> str:
    """What ``evaluate --data path`` holds: ``coco`` (a .json, or a folder of COCO files without
    a mask folder), ``yolo`` (``labels/`` or ``data.yaml``), else ``folder`` (images and masks)."""
    if path.suffix.lower() == ".json":
        return "coco"
    if (path / data.mask_folder).is_dir() or (path / "classes.json").is_file():
        return "folder"
    if (path / "labels").is_dir() or (path / "data.yaml").is_file():
        return "yolo"
    return "coco" if any(path.glob("*.json")) or any(path.glob("*/*.json")) else "folder"
