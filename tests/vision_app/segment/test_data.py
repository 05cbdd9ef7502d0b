"""Segmentation masks as people have them, in sets made here: PennFudan's layout (``PNGImages/``,
``PedMasks/<stem>_mask.png`` holding one id per person), 0/255 and colour masks, masks beside
their images; each read into class-id masks by ``data.mask_mode`` and ``data.mask_suffix``."""
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from shared.config import validate
from shared.errors import UserError
from vision_app.common.data import ImageDataset
from vision_app.common.manifest import load_manifest
from vision_app.segment.config import SegmentConfig
from vision_app.tasks import TASKS

RNG = np.random.default_rng(3)


def _cfg(path: Path, **data) -> SegmentConfig:
    return validate(SegmentConfig, {"name": "seg-layouts", "task": "segment", "data": {
        "source": "folder", "path": str(path), "test_fraction": 0.25, "valid_fraction": 0.25, **data}})


def _pair(image: Path, mask: Path, values: np.ndarray) -> None:
    """An image and its mask (``values``: ``HxW`` ids, or ``HxWx3`` colours)."""
    image.parent.mkdir(parents=True, exist_ok=True)
    mask.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(RNG.integers(0, 255, (*values.shape[:2], 3), dtype=np.uint8)).save(image)
    Image.fromarray(values.astype(np.uint8)).save(mask)


def _instances(i: int) -> np.ndarray:
    ids = np.zeros((20, 16), np.uint8)
    ids[2:8, 2:6] = 1
    ids[10:18, 8:14] = 2 + i % 2  # a second (or third) person
    return ids


def pennfudan(root: Path, n: int = 8) -> Path:
    for i in range(n):
        name = f"FudanPed{i + 1:05d}"
        _pair(root / "PNGImages" / f"{name}.png", root / "PedMasks" / f"{name}_mask.png", _instances(i))
    return root


def _masks(cfg) -> list[np.ndarray]:
    TASKS["segment"].preprocess(cfg)
    manifest = load_manifest(cfg, TASKS["segment"].preprocess)
    records = [r for split in manifest["splits"].values() for r in split]
    ds = ImageDataset(records, None, cache=False)
    return [ds.raw(i)[1] for i in range(len(ds))]


def test_pennfudan_instance_masks_become_one_foreground_class(tmp_path):
    root = pennfudan(tmp_path / "PennFudanPed")
    cfg = _cfg(root, image_folder="PNGImages", mask_folder="PedMasks", mask_suffix="_mask", mask_mode="instances",
               classes=["background", "person"])
    masks = _masks(cfg)
    assert len(masks) == 8 and all(set(np.unique(m)) == {0, 1} for m in masks)
    assert all(int(m.sum()) == 24 + 48 for m in masks)  # both people, every pixel of each


def test_instance_ids_read_as_class_ids_are_refused_and_a_missing_suffix_named(tmp_path):
    root = pennfudan(tmp_path / "PennFudanPed")
    with pytest.raises(UserError, match="no mask .*PedMasks/<stem>.png.*set data.mask_suffix"):
        _masks(_cfg(root, image_folder="PNGImages", mask_folder="PedMasks", mask_mode="instances"))
    cfg = _cfg(root, image_folder="PNGImages", mask_folder="PedMasks", mask_suffix="_mask",
               classes=["background", "person"])
    with pytest.raises(UserError, match=r"class id\(s\) \[2\] outside the class list"):
        _masks(cfg)
    with pytest.raises(UserError, match="gives one foreground class: the class list needs two names"):
        _masks(cfg.model_copy(update={"data": cfg.data.model_copy(update={
            "mask_mode": "instances", "classes": ["background", "adult", "child"]})}))


def test_zero_255_and_colour_masks_as_nonzero_foreground(tmp_path):
    root = tmp_path / "binary"
    for i in range(8):
        m = np.zeros((12, 12), np.uint8)
        m[3:9, 3:9] = 255
        if i % 2:  # a colour mask: red object on black
            colour = np.zeros((12, 12, 3), np.uint8)
            colour[m > 0] = (200, 0, 0)
            m = colour
        _pair(root / "images" / f"{i}.jpg", root / "masks" / f"{i}.png", m)
    masks = _masks(_cfg(root, mask_mode="nonzero_foreground"))
    assert all(set(np.unique(m)) == {0, 1} and int(m.sum()) == 36 for m in masks)
    with pytest.raises(UserError, match="mask has mode RGB.*data.mask_mode=nonzero_foreground"):
        _masks(_cfg(root, classes=["background", "thing"]))


def test_masks_beside_their_images(tmp_path):
    root = tmp_path / "mixed"
    for i in range(8):
        _pair(root / "all" / f"cell{i}.png", root / "all" / f"cell{i}_mask.png", (_instances(i) > 0) * 1)
    cfg = _cfg(root, image_folder="all", mask_folder="all", mask_suffix="_mask", classes=["background", "cell"])
    masks = _masks(cfg)
    assert len(masks) == 8 and all(set(np.unique(m)) == {0, 1} for m in masks)


def voc_segmentation(root: Path, n: int = 8) -> Path:
    """Pascal VOC's layout: ``JPEGImages/*.jpg`` (more images than masks), palette
    ``SegmentationClass/*.png`` (class ids, 255 on object borders), ``SegmentationObject/*.png``
    (object ids, 255 borders), ``ImageSets/Segmentation/{train,val}.txt``, and junk."""
    palette = [0, 0, 0, 128, 0, 0, 0, 128, 0] + [0] * (3 * 252) + [224, 224, 192]
    (root / "SegmentationClass").mkdir(parents=True)
    for i in range(n):
        name = f"2007_{i:06d}"
        ids = np.zeros((20, 24), np.uint8)
        ids[3:10, 3:10], ids[12:18, 10:20] = 1, 2
        objects = np.where(ids > 0, np.uint8(1 + i % 2), np.uint8(0))
        for values in (ids, objects):
            values[2, 2:11] = values[10, 2:11] = 255  # the void border of the first object
        _pair(root / "JPEGImages" / f"{name}.jpg", root / "SegmentationObject" / f"{name}.png", objects)
        mask = Image.fromarray(ids, "P")
        mask.putpalette(palette)
        mask.save(root / "SegmentationClass" / f"{name}.png")
    Image.fromarray(RNG.integers(0, 255, (20, 24, 3), dtype=np.uint8)).save(root / "JPEGImages" / "2008_000001.jpg")
    lists = root / "ImageSets" / "Segmentation"  # a detection-only image above: no mask, in no list
    lists.mkdir(parents=True)
    (lists / "train.txt").write_text("".join(f"2007_{i:06d}\n" for i in range(n - 3)))
    (lists / "val.txt").write_text("".join(f"2007_{i:06d}\n" for i in range(n - 3, n)))
    for folder in ("JPEGImages", "SegmentationClass"):
        (root / folder / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
        (root / folder / "._2007_000000.png").write_bytes(b"\x00\x05\x16\x07")
    return root


def test_voc_palette_masks_keep_255_as_void(tmp_path):
    root = voc_segmentation(tmp_path / "VOC2012")
    cfg = _cfg(root, image_folder="JPEGImages", mask_folder="SegmentationClass",
               classes=["background", "aeroplane", "bicycle"])
    masks = _masks(cfg)
    assert len(masks) == 8 and all(set(np.unique(m)) == {0, 1, 2, 255} for m in masks)
    counts = load_manifest(cfg, TASKS["segment"].preprocess)["counts"]
    assert counts == {"train": 3, "valid": 3, "test": 2}  # val.txt as given, test carved out of train.txt
    assert all(int((m == 255).sum()) == 18 for m in masks)
    objects = _masks(_cfg(root, image_folder="JPEGImages", mask_folder="SegmentationObject", mask_mode="instances",
                          classes=["background", "object"]))
    assert all(set(np.unique(m)) == {0, 1, 255} for m in objects)
    bad = np.asarray(Image.open(root / "SegmentationClass" / "2007_000003.png")).copy()
    bad[0, 0] = 254
    Image.fromarray(bad).save(root / "SegmentationClass" / "2007_000003.png")
    with pytest.raises(UserError, match=r"2007_000003.png: mask holds class id\(s\) \[254\].*255 for pixels to ignore"):
        _masks(cfg)


def oxford_pets(root: Path, n: int = 8) -> Path:
    """Oxford-IIIT Pet as it unpacks: ``images/<Breed>_<n>.jpg`` and ``annotations/trimaps/<same>.png``,
    8-bit masks of 1 (pet), 2 (background) and 3 (the border between them)."""
    for i in range(n):
        trimap = np.full((20, 16), 2, np.uint8)
        trimap[4:14, 3:12] = 3
        trimap[5:13, 4:11] = 1
        _pair(root / "images" / f"Abyssinian_{i + 1}.jpg", root / "annotations" / "trimaps" / f"Abyssinian_{i + 1}.png",
              trimap)
    return root


def test_oxford_pet_trimaps_through_mask_values(tmp_path):
    root = oxford_pets(tmp_path / "oxford-iiit-pet")
    cfg = _cfg(root, mask_folder="annotations/trimaps", classes=["background", "pet"],
               mask_values={1: 1, 2: 0, 3: 255})
    masks = _masks(cfg)
    assert len(masks) == 8 and all(set(np.unique(m)) == {0, 1, 255} for m in masks)
    assert all(int((m == 1).sum()) == 56 and int((m == 255).sum()) == 90 - 56 for m in masks)  # the border is void
    with pytest.raises(UserError, match=r"Abyssinian_1.png: mask value\(s\) \[3\] are not in data.mask_values "
                                        r"\(\{1: 1, 2: 0\}\); add what each is \(255: ignore\)"):
        _masks(_cfg(root, mask_folder="annotations/trimaps", classes=["background", "pet"], mask_values={1: 1, 2: 0}))
    with pytest.raises(UserError, match=r"mask holds class id\(s\) \[2, 3\] outside the class list \(0..1, and 255 "
                                        r"for pixels to ignore\); values that are not class ids map to them with "
                                        r"data.mask_values=\{value: id\}"):
        _masks(_cfg(root, mask_folder="annotations/trimaps", classes=["background", "pet"]))  # read as ids


def test_kvasir_jpeg_masks_read_by_threshold_and_refused_as_ids(tmp_path):
    """Kvasir-SEG: ``images/*.jpg`` with 0/255 ``masks/*.jpg``; JPEG blurs the edge (values 1-254)."""
    yy, xx = np.mgrid[:40, :40]
    truth = []
    for i in range(8):
        disc = ((yy - 15 - i) ** 2 + (xx - 21) ** 2) < 100
        _pair(tmp_path / "kvasir" / "images" / f"cju{i}.jpg", tmp_path / "kvasir" / "masks" / f"cju{i}.png", disc * 255)
        Image.open(tmp_path / "kvasir" / "masks" / f"cju{i}.png").save(tmp_path / "kvasir" / "masks" / f"cju{i}.jpg",
                                                                        quality=75)
        (tmp_path / "kvasir" / "masks" / f"cju{i}.png").unlink()
        truth.append(int(disc.sum()))
    edges = np.asarray(Image.open(tmp_path / "kvasir" / "masks" / "cju0.jpg"))
    assert int((edges != 0).sum()) > truth[0]  # the artefacts a "not black" rule would take for foreground
    masks = _masks(_cfg(tmp_path / "kvasir", mask_mode="nonzero_foreground"))
    assert all(abs(a - b) <= 3 for a, b in zip(sorted(int(m.sum()) for m in masks), sorted(truth)))
    with pytest.raises(UserError, match="cju0.jpg: a JPEG mask.*save masks as PNG"):
        _masks(_cfg(tmp_path / "kvasir", classes=["background", "polyp"]))
