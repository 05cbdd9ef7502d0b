"""Segmentation from polygons, in sets made here in the layouts tools export: a COCO JSON with
polygons, uncompressed RLE crowds and compressed RLE; Roboflow's per-split folders (with its unused
category 0); COCO's annotations/instances_<split>2017.json; Ultralytics YOLO-seg with data.yaml.
Masks are checked pixel by pixel, every bad annotation names its file and annotation or line, and
a tiny run trains and evaluates through the CLI."""
import json
from pathlib import Path

import numpy as np
import pytest
from faster_coco_eval.core import mask as mask_api
from PIL import Image

from shared.config import validate
from shared.errors import UserError
from shared.runs import latest_run
from vision_app.common.images import read_mask
from vision_app.common.manifest import load_manifest
from vision_app.common.shapes import generate_shapes
from vision_app.segment.config import SegmentConfig
from vision_app.tasks import TASKS

RNG = np.random.default_rng(11)
SQUARE = [2, 2, 21, 2, 21, 21, 2, 21]  # pixels 2..21 (PIL fills the outline too)
SMALL = [8, 8, 13, 8, 13, 13, 8, 13]  # inside SQUARE


def _image(path: Path, size=(32, 32)) -> Path:
    """A noise image (every one different, so none is dropped as a duplicate) with a drawn shape."""
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = RNG.integers(0, 120, (size[1], size[0], 3), dtype=np.uint8)
    arr[2:22, 2:22] = (200, 60, 60)
    Image.fromarray(arr).save(path)
    return path


def _coco(path: Path, files: list[str], anns: list[dict], cats=((3, "cat"), (7, "dog")), extra_cats=(),
          parent="shapes") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    images = [{"id": i + 1, "file_name": f, "width": 32, "height": 32} for i, f in enumerate(files)]
    for k, ann in enumerate(anns):
        ann.setdefault("id", k + 1)
        ann.setdefault("iscrowd", 0)
    categories = [*extra_cats, *({"id": i, "name": n, "supercategory": parent} for i, n in cats)]
    path.write_text(json.dumps({"images": images, "annotations": anns, "categories": categories}))
    return path


def _cfg(source: str, path: Path, name: str = "seg-polygons", **data) -> SegmentConfig:
    return validate(SegmentConfig, {"name": name, "task": "segment", "data": {
        "source": source, "path": str(path), "test_fraction": 0.25, "valid_fraction": 0.25, **data}})


def _masks(cfg) -> tuple[dict, dict[str, np.ndarray]]:
    """The manifest and every record's mask by image file name."""
    TASKS["segment"].preprocess(cfg)
    manifest = load_manifest(cfg, TASKS["segment"].preprocess)
    records = [r for split in manifest["splits"].values() for r in split]
    return manifest, {Path(r["image"]).name: read_mask(r["mask"]) for r in records}


def coco_single(root: Path) -> Path:
    """``annotations.json`` + ``images/``: polygons (a small cat listed before the dog around it, a
    two-polygon dog), an uncompressed-RLE crowd under an object, a compressed-RLE dog, a background image."""
    files = [_image(root / "images" / f"{n}.png").name for n in ("a", "b", "c", "d")]
    crowd = np.zeros((32, 32), np.uint8)
    crowd[20:30, 0:32] = 1
    runs, flat, value = [], crowd.flatten(order="F"), 0  # COCO counts: column-major, starting with 0s
    while flat.size:
        n = int(np.argmax(flat != value)) if (flat != value).any() else flat.size
        runs.append(n)
        flat, value = flat[n:], 1 - value
    blob = np.zeros((32, 32), np.uint8)
    blob[0:5, 25:31] = 1
    compressed = mask_api.encode(np.asfortranarray(blob))["counts"].decode()
    anns = [
        {"image_id": 1, "category_id": 3, "segmentation": [SMALL]},
        {"image_id": 1, "category_id": 7, "segmentation": [SQUARE, [26, 26, 30, 26, 30, 30]]},
        {"image_id": 2, "category_id": 3, "segmentation": {"size": [32, 32], "counts": runs}, "iscrowd": 1},
        {"image_id": 2, "category_id": 7, "segmentation": [[0, 24, 10, 24, 10, 27, 0, 27]]},
        {"image_id": 3, "category_id": 7, "segmentation": {"size": [32, 32], "counts": compressed}},
    ]
    return _coco(root / "annotations.json", files, anns)


def test_coco_polygons_rle_and_crowds_drawn_into_masks(tmp_path):
    path = coco_single(tmp_path / "coco")
    manifest, masks = _masks(_cfg("coco", path))
    assert manifest["classes"] == ["background", "cat", "dog"]  # categories by id (3, 7)
    assert sum(manifest["counts"].values()) == 4
    a, b, c, d = (masks[f"{n}.png"] for n in "abcd")
    assert a[10, 10] == 1 and a[3, 3] == 2 and a[21, 21] == 2 and a[22, 22] == 0  # smaller cat on top of the dog
    assert a[28, 28] == 2 and a[30, 27] == 0  # the dog's second polygon (a triangle)
    assert b[25, 5] == 2 and b[25, 20] == 255 and b[29, 31] == 255 and b[19, 5] == 0  # crowd void around the dog
    assert c[2, 27] == 2 and c.sum() == 2 * 30 and not d.any()  # compressed RLE; no annotation: background
    # the folder finds its one JSON and images/; data.classes fixes the order
    _, again = _masks(_cfg("coco", path.parent, name="seg-polygons-order", classes=["background", "dog", "cat"]))
    assert again["a.png"][10, 10] == 2 and again["a.png"][3, 3] == 1


def test_the_generated_sets_coco_polygons_draw_its_own_masks(tmp_path):
    root = generate_shapes(tmp_path / "shapes", 12, image_size=32, seed=4)
    manifest, masks = _masks(_cfg("coco", root / "annotations.json"))
    assert manifest["classes"] == json.loads((root / "classes.json").read_text())
    for name, drawn in masks.items():  # the same polygons, rounded to 0.01 px in the JSON
        truth = read_mask(root / "masks" / name)
        assert (drawn == truth).mean() > 0.99, name


def test_roboflow_split_folders_are_the_split(tmp_path):
    root = tmp_path / "roboflow"
    for split, n in (("train", 4), ("valid", 2), ("test", 2)):
        files = [_image(root / split / f"{split}_{i}.jpg").name for i in range(n)]
        anns = [{"image_id": i + 1, "category_id": 1 + i % 2, "segmentation": [SQUARE]} for i in range(n)]
        _coco(root / split / "_annotations.coco.json", files, anns, cats=((1, "circle"), (2, "square")),
              extra_cats=({"id": 0, "name": "shapes-x9k", "supercategory": "none"},), parent="shapes-x9k")
    (root / "README.roboflow.txt").write_text("exported")
    manifest, masks = _masks(_cfg("coco", root))
    assert manifest["classes"] == ["background", "circle", "square"]  # Roboflow's category 0 is not a class
    assert manifest["counts"] == {"train": 4, "valid": 2, "test": 2}
    assert {Path(r["image"]).name for r in manifest["splits"]["valid"]} == {"valid_0.jpg", "valid_1.jpg"}
    assert masks["train_1.jpg"][5, 5] == 2 and masks["train_0.jpg"][5, 5] == 1


def test_coco_2017_annotations_folder_by_split(tmp_path):
    root = tmp_path / "coco2017"
    for split, n in (("train", 6), ("val", 2)):
        files = [_image(root / f"{split}2017" / f"{split}{i:09d}.jpg").name for i in range(n)]
        anns = [{"image_id": i + 1, "category_id": 3, "segmentation": [SMALL]} for i in range(n)]
        _coco(root / "annotations" / f"instances_{split}2017.json", files, anns,
              extra_cats=({"id": 1, "name": "person", "supercategory": "person"},))  # unused, its own parent
        (root / "annotations" / f"captions_{split}2017.json").write_text('{"annotations": []}')
    manifest, masks = _masks(_cfg("coco", root))
    assert manifest["classes"] == ["background", "person", "cat", "dog"]
    assert manifest["counts"] == {"train": 4, "valid": 2, "test": 2}  # test carved out of train
    assert all(Path(r["image"]).name.startswith("val") for r in manifest["splits"]["valid"])
    assert masks["train000000000.jpg"][10, 10] == 2 and masks["train000000000.jpg"][3, 3] == 0


def ultralytics_seg(root: Path) -> Path:
    """``images/{train,val}``, ``labels/{train,val}``, ``data.yaml``; a car inside a person, a
    background image without a label file, macOS junk."""
    lines = {"a": "0 0.0625 0.0625 0.6875 0.0625 0.6875 0.6875 0.0625 0.6875\n1 0.25 0.25 0.40625 0.25 0.40625 0.40625\n",
             "b": "1 0.5 0.5 0.9 0.5 0.9 0.9 0.5 0.9\n", "c": None}
    for split in ("train", "val"):
        for stem, text in lines.items():
            _image(root / "images" / split / f"{split}_{stem}.jpg")
            if text is not None:
                (root / "labels" / split).mkdir(parents=True, exist_ok=True)
                (root / "labels" / split / f"{split}_{stem}.txt").write_text(text)
        (root / "images" / split / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (root / "data.yaml").write_text("path: .\ntrain: images/train\nval: images/val\nnames:\n  0: person\n  1: car\n")
    return root


def test_ultralytics_yolo_seg_layout(tmp_path):
    root = ultralytics_seg(tmp_path / "yolo")
    manifest, masks = _masks(_cfg("yolo", root, valid_fraction=0.15, test_fraction=0.15))
    assert manifest["classes"] == ["background", "person", "car"]
    assert manifest["counts"] == {"train": 2, "valid": 3, "test": 1}
    a = masks["train_a.jpg"]
    assert a[3, 3] == 1 and a[10, 10] == 2 and a[20, 20] == 1 and a[25, 25] == 0  # the smaller car on top
    assert masks["val_b.jpg"][20, 20] == 2 and not masks["val_c.jpg"].any()
    _, again = _masks(_cfg("yolo", root, name="seg-yolo-order", classes=["background", "car", "person"]))
    assert again["train_a.jpg"][3, 3] == 2 and again["train_a.jpg"][10, 10] == 1


def test_roboflow_yolo_export_split_folders(tmp_path):
    ultra = ultralytics_seg(tmp_path / "ultra")
    root = tmp_path / "roboflow-yolo"  # train/images, train/labels, valid/…, data.yaml
    for src, dst in (("train", "train"), ("val", "valid")):
        (root / dst).mkdir(parents=True)
        (ultra / "images" / src).rename(root / dst / "images")
        (ultra / "labels" / src).rename(root / dst / "labels")
    (ultra / "data.yaml").rename(root / "data.yaml")
    manifest, masks = _masks(_cfg("yolo", root, valid_fraction=0.15, test_fraction=0.15))
    assert manifest["counts"] == {"train": 2, "valid": 3, "test": 1}
    assert masks["train_a.jpg"][10, 10] == 2 and masks["val_b.jpg"][20, 20] == 2


COCO_ERRORS = [
    ({"segmentation": [[1, 1, 5, 5]]}, r"annotation id 1: polygon 0 has 4 coordinates; a polygon is"),
    ({"segmentation": [[1, 1, "5", 5, 9, 9]]}, r"annotation id 1: polygon 0 has coordinates that are not numbers"),
    ({"segmentation": [[1, 1, 5, 1e12, 9, 9]]}, r"annotation id 1 polygon 0: point \(5, 1e\+12\) lies far outside"),
    ({"image_id": 9}, r"annotation id 1: image_id 9 is not in 'images'"),
    ({"category_id": 5}, r"annotation id 1: unknown category_id 5 \(known: \[3, 7\]\)"),
    ({"segmentation": []}, r"annotation id 1: no 'segmentation' to draw"),
    ({"bbox": [1, 1, 4, 4], "segmentation": None}, r"annotation id 1: no 'segmentation' to draw"),
    ({"segmentation": {"size": [16, 32], "counts": [3, 2]}}, r"annotation id 1: RLE size \[16, 32\] is not its image's"),
    ({"segmentation": {"size": [32, 32], "counts": [3, 2]}}, r"annotation id 1: RLE counts do not describe a 32x32"),
    ({"segmentation": {"size": [32, 32], "counts": [3, -2]}}, r"annotation id 1: RLE counts must be whole numbers"),
]


@pytest.mark.parametrize(("change", "message"), COCO_ERRORS)
def test_bad_coco_annotations_name_file_and_annotation(tmp_path, change, message):
    files = [_image(tmp_path / "images" / "a.png").name]
    path = _coco(tmp_path / "ann.json", files, [{"image_id": 1, "category_id": 3, "segmentation": [SQUARE], **change}])
    with pytest.raises(UserError, match=f"ann.json {message}"):
        TASKS["segment"].preprocess(_cfg("coco", path))


def test_a_missing_image_and_an_unknown_class_name(tmp_path):
    path = _coco(tmp_path / "ann.json", ["gone.png"], [])
    with pytest.raises(UserError, match=r"ann.json image id 1: image .*gone.png is listed but missing"):
        TASKS["segment"].preprocess(_cfg("coco", path))
    _image(tmp_path / "gone.png")
    with pytest.raises(UserError, match=r"class\(es\) \['dog'\] are not in the class list \['background', 'cat'\]"):
        TASKS["segment"].preprocess(_cfg("coco", path, classes=["background", "cat"]))


YOLO_ERRORS = [
    ("0 0.5 0.5 0.2 0.2", r"line 1: a box line 'class cx cy w h'; YOLO-seg lines are"),
    ("0 0.1 0.1 0.5 0.1 0.5", r"line 1: 5 coordinates; a polygon is"),
    ("0 0.1 0.1 0.5 x 0.5 0.5", r"line 1: not numbers"),
    ("2 0.1 0.1 0.5 0.1 0.5 0.5", r"line 1: unknown class index 2 \(2 classes: 0..1\)"),
    ("0 0.1 0.1 20 16 16 20", r"line 1: point \(640, 512\) lies far outside the 32x32 image"),
]


@pytest.mark.parametrize(("line", "message"), YOLO_ERRORS)
def test_bad_yolo_seg_lines_name_file_and_line(tmp_path, line, message):
    root = ultralytics_seg(tmp_path / "yolo")
    (root / "labels" / "val" / "val_b.txt").write_text(f"{line}\n")
    with pytest.raises(UserError, match=f"labels/val/val_b.txt {message}"):
        TASKS["segment"].preprocess(_cfg("yolo", root))


def test_yolo_label_without_image_and_without_class_names(tmp_path):
    root = ultralytics_seg(tmp_path / "yolo")
    (root / "labels" / "train" / "lost.txt").write_text("0 0.1 0.1 0.5 0.1 0.5 0.5\n")
    with pytest.raises(UserError, match=r"labels/train/lost.txt: image .*images/train/lost.\* is listed but missing"):
        TASKS["segment"].preprocess(_cfg("yolo", root))
    (root / "labels" / "train" / "lost.txt").unlink()
    (root / "data.yaml").unlink()
    with pytest.raises(UserError, match=r"no class names: a data.yaml with 'names'"):
        TASKS["segment"].preprocess(_cfg("yolo", root))
    with pytest.raises(UserError, match="data.source=yolo draws class-id masks: leave data.mask_mode at class_ids"):
        _cfg("yolo", root, mask_mode="instances")


def test_train_on_roboflow_coco_and_evaluate_data_on_yolo_seg(tmp_path, cli, make):
    root = tmp_path / "roboflow"
    for split, n in (("train", 6), ("valid", 2), ("test", 2)):
        files = [_image(root / split / f"{split}_{i}.jpg").name for i in range(n)]
        anns = [{"image_id": i + 1, "category_id": 7 if i % 2 else 3, "segmentation": [SQUARE]} for i in range(n)]
        _coco(root / split / "_annotations.coco.json", files, anns, cats=((3, "person"), (7, "car")))
    recipe = make.recipe(tmp_path / "seg-coco.yaml", {
        "name": "t-segment-coco", "task": "segment", "data": {"source": "coco", "path": str(root)},
        "model": {"arch": "unet", "depth": 2, "width": 4}, "augment": {"size": 32},
        "train": {"max_steps": 2, "progress": False, "device": "cpu", "batch_size": 8},
        "eval": {"overlays": 1}, "serve": {"load_in_background": False}})
    assert cli("train", "--config", recipe) == 0
    run = latest_run("vision_app", "t-segment-coco")
    assert json.loads((run / "labels.json").read_text()) == ["background", "person", "car"]
    assert 0 <= json.loads((run / "metrics.json").read_text())["test/mean_iou"] <= 1
    yolo = ultralytics_seg(tmp_path / "yolo")  # names person, car: the run's classes
    assert cli("evaluate", "--run", run, "--data", yolo) == 0
    metrics = json.loads((run / "evaluations" / "yolo" / "metrics.json").read_text())
    assert metrics["data/images"] == 6 and 0 <= metrics["data/mean_iou"] <= 1
    assert cli("evaluate", "--run", run, "--data", root / "test" / "_annotations.coco.json") == 0
    metrics = json.loads((run / "evaluations" / "_annotations.coco" / "metrics.json").read_text())
    assert metrics["data/images"] == 2
    assert cli("evaluate", "--run", run, "--data", root) == 0  # the export's own test split only, as detection
    assert json.loads((run / "evaluations" / "roboflow" / "metrics.json").read_text())["data/images"] == 2
