"""Detection sets in the layouts the public tools write, made here and read through ``preprocess``:
a Pascal VOC devkit as labelImg/CVAT leave it (``<difficult>``, ``<truncated>``, float corners, an
XML without ``<size>``, a ``<filename>`` without its extension, names with spaces and capitals,
macOS junk), a COCO export (category ids 1, 3, 7, crowd objects, images without objects, polygon
and RLE segmentations, an image without its size) and the Ultralytics YOLO layout
(``images/{train,val}``, ``labels/{train,val}``, empty label files, ``data.yaml`` names)."""
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from shared.config import validate
from shared.errors import UserError
from vision_app.detect.config import DetectConfig
from vision_app.detect.data import load_processed, preprocess, read_eval_data

RNG = np.random.default_rng(11)


def _image(path: Path, w: int = 48, h: int = 32) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(RNG.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(path)


def _cfg(name: str, **data) -> DetectConfig:
    return validate(DetectConfig, {"name": name, "data": {"valid_fraction": 0.0, "test_fraction": 0.2, **data}})


def _boxes(cfg) -> dict[str, tuple[list, list]]:
    classes, sets = load_processed(cfg)
    return {r.file: ([[round(v, 3) for v in b] for b in r.boxes], [classes[i] for i in r.labels])
            for ds in sets.values() for r in ds.images}


VOC_OBJECT = ("<object><name>{name}</name><pose>Unspecified</pose><truncated>1</truncated>"
              "<difficult>{difficult}</difficult><bndbox><xmin>{x1}</xmin><ymin>12.0</ymin>"
              "<xmax>{x2}</xmax><ymax>30.5</ymax></bndbox></object>")


def voc_devkit(root: Path) -> Path:
    for i in range(6):
        _image(root / "JPEGImages" / f"img_{i}.jpg")
        size = "" if i == 1 else "<size><width>48</width><height>32</height><depth>3</depth></size>"
        filename = f"img_{i}" if i == 2 else f"img_{i}.jpg"  # CVAT: no extension
        objects = VOC_OBJECT.format(name=" Traffic Light ", difficult=int(i == 3), x1="2.0", x2="20.5")
        objects += VOC_OBJECT.format(name="Dog", difficult=0, x1=21, x2=47) if i % 2 else ""
        (root / "Annotations").mkdir(parents=True, exist_ok=True)
        (root / "Annotations" / f"img_{i}.xml").write_text(
            f"<annotation><folder>VOC</folder><filename>{filename}</filename>{size}{objects}</annotation>")
    (root / "Annotations" / "._img_0.xml").write_bytes(b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X")
    (root / "Annotations" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (root / "JPEGImages" / "._img_0.jpg").write_bytes(b"\x00\x05\x16\x07")
    main = root / "ImageSets" / "Main"
    main.mkdir(parents=True)
    (main / "train.txt").write_text("img_0\nimg_1\nimg_2\nimg_3\n")
    (main / "val.txt").write_text("img_4\nimg_5\n")
    return root


def test_a_voc_devkit_as_annotation_tools_write_it(tmp_path):
    root = voc_devkit(tmp_path / "VOC")
    cfg = _cfg("layouts-voc", format="voc", annotations=str(root / "Annotations"), images=str(root / "JPEGImages"))
    manifest = preprocess(cfg)
    assert manifest["classes"] == ["Dog", "Traffic Light"]
    assert {s: c["images"] for s, c in manifest["splits"].items()} == {"train": 3, "valid": 2, "test": 1}
    boxes = _boxes(cfg)
    assert sorted(boxes) == [f"img_{i}.jpg" for i in range(6)]
    assert boxes["img_1.jpg"] == ([[2.0, 12.0, 20.5, 30.5], [21.0, 12.0, 47.0, 30.5]], ["Traffic Light", "Dog"])
    assert boxes["img_3.jpg"][1] == ["Traffic Light", "Dog"]  # difficult objects are kept as boxes
    xml = root / "Annotations" / "img_4.xml"
    good = xml.read_text()
    xml.write_text(good.replace("<xmin>2.0</xmin>", "<xmin>2px</xmin>"))
    with pytest.raises(UserError, match=r"img_4.xml object 0: box \[x1=nan.*non-numeric"):
        preprocess(cfg.model_copy(update={"name": "layouts-voc-nan"}))
    xml.write_text(xml.read_text().replace("<name> Traffic Light </name>", "<name></name>"))
    with pytest.raises(UserError, match=r"img_4.xml object 0: no <name>"):
        preprocess(cfg.model_copy(update={"name": "layouts-voc-unnamed"}))
    xml.write_text(good)
    (root / "JPEGImages" / "img_2.jpg").unlink()
    with pytest.raises(UserError, match="img_2.xml: image .*img_2 is listed but missing"):
        preprocess(cfg.model_copy(update={"name": "layouts-voc-missing"}))


def coco_export(root: Path) -> Path:
    for i in range(4):
        _image(root / "images" / f"{i:012d}.jpg")
    images = [{"id": 10 + i, "file_name": f"{i:012d}.jpg", "width": 48, "height": 32} for i in range(4)]
    del images[3]["width"], images[3]["height"]  # some exporters leave the size out
    images[1]["file_name"] = f"images/{images[1]['file_name']}"  # Label Studio: the folder in front
    polygon = [[2.0, 2.0, 10.0, 2.0, 10.0, 9.0]]
    rle = {"counts": [0, 5, 10], "size": [32, 48]}
    annotations = [
        {"id": 1, "image_id": 10, "category_id": 7, "bbox": [2, 2, 8, 7], "iscrowd": 0, "segmentation": polygon},
        {"id": 2, "image_id": 10, "category_id": 1, "bbox": [20.5, 4, 10, 12], "iscrowd": 0, "segmentation": polygon},
        {"id": 3, "image_id": 11, "category_id": 3, "bbox": [0, 0, 48, 32], "iscrowd": 1, "segmentation": rle},
        {"id": 4, "image_id": 11, "category_id": 3, "bbox": [5, 5, 10, 10], "iscrowd": 0, "area": 100},
        {"id": 5, "image_id": 13, "category_id": 1, "bbox": [1, 1, 4, 4], "iscrowd": 0},
    ]  # image 12: no objects
    categories = [{"id": 7, "name": "zebra", "supercategory": "animal"}, {"id": 1, "name": "person"},
                  {"id": 3, "name": "car"}]
    path = root / "annotations" / "instances_default.json"
    path.parent.mkdir(parents=True)
    path.write_text("\ufeff" + json.dumps({"info": {}, "licenses": [], "images": images,  # a byte-order mark
                                            "annotations": annotations, "categories": categories}))
    return path


def test_a_coco_export_with_sparse_ids_crowds_and_segmentations(tmp_path):
    path = coco_export(tmp_path / "coco")
    cfg = _cfg("layouts-coco", format="coco", annotations=str(path), images=str(tmp_path / "coco" / "images"))
    assert preprocess(cfg)["classes"] == ["person", "car", "zebra"]  # ordered by category id
    boxes = _boxes(cfg)
    assert boxes["000000000000.jpg"] == ([[2, 2, 10, 9], [20.5, 4, 30.5, 16]], ["zebra", "person"])
    assert boxes["000000000001.jpg"] == ([[5, 5, 15, 15]], ["car"])  # the crowd region is skipped
    assert boxes["000000000002.jpg"] == ([], []) and boxes["000000000003.jpg"] == ([[1, 1, 5, 5]], ["person"])
    data = json.loads(path.read_text(encoding="utf-8-sig"))
    data["annotations"][1]["bbox"] = [20, 4, 0, 12]  # zero width
    del data["annotations"][3]["bbox"]
    path.write_text(json.dumps(data))
    with pytest.raises(UserError, match=r"annotation id 4: no 'bbox'"):
        preprocess(cfg.model_copy(update={"name": "layouts-coco-bad"}))
    data["annotations"][3]["bbox"] = [5, 5, 10]
    path.write_text(json.dumps(data))
    with pytest.raises(UserError, match=r"annotation id 4: no bbox \[x, y, w, h\]"):
        preprocess(cfg.model_copy(update={"name": "layouts-coco-short"}))
    data["annotations"][3]["bbox"] = [5, 5, 10, 10]
    path.write_text(json.dumps(data))
    with pytest.raises(UserError, match=r"annotation id 2: zero-area box.*data.bad_boxes=drop"):
        preprocess(cfg.model_copy(update={"name": "layouts-coco-zero"}))
    image = tmp_path / "coco" / "images" / "000000000002.jpg"
    image.write_bytes(image.read_bytes()[:-400])  # truncated: the header still reads
    with pytest.raises(UserError, match=r"^1 bad file\(s\): .*000000000002.jpg: "):
        preprocess(cfg.model_copy(update={"name": "layouts-coco-cut", "data": cfg.data.model_copy(
            update={"bad_boxes": "drop"})}))


def ultralytics(root: Path) -> Path:
    lines = {"a": "0 0.25 0.5 0.25 0.5\n1 0.75 0.5 0.5 1.0\n", "b": "", "c": None}  # b empty, c no file
    for split in ("train", "val"):
        for stem, text in lines.items():
            _image(root / "images" / split / f"{split}_{stem}.jpg", w=40, h=20)
            if text is not None:
                (root / "labels" / split).mkdir(parents=True, exist_ok=True)
                (root / "labels" / split / f"{split}_{stem}.txt").write_text(text)
        (root / "images" / split / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
        (root / "images" / split / f"._{split}_a.jpg").write_bytes(b"\x00\x05\x16\x07")
    (root / "data.yaml").write_text("path: .\ntrain: images/train\nval: images/val\nnames:\n  0: red light\n"
                                    "  1: Person\n")
    return root


def test_the_ultralytics_yolo_layout_and_its_data_yaml(tmp_path):
    root = ultralytics(tmp_path / "yolo")
    cfg = _cfg("layouts-yolo", format="yolo", annotations=str(root / "labels"), images=str(root / "images"),
               classes=str(root / "data.yaml"))
    manifest = preprocess(cfg)
    assert manifest["classes"] == ["red light", "Person"]
    assert {s: c["images"] for s, c in manifest["splits"].items()} == {"train": 2, "valid": 3, "test": 1}
    boxes = _boxes(cfg)
    assert boxes["train/train_a.jpg"] == ([[5, 5, 15, 15], [20, 0, 40, 20]], ["red light", "Person"])
    assert boxes["val/val_b.jpg"] == ([], []) and boxes["val/val_c.jpg"] == ([], [])
    scored = read_eval_data(root, ["Person", "red light"])  # evaluate --data: every split, the model's order
    assert len(scored.images) == 6 and scored.classes == ["Person", "red light"]
    assert {r.file: r.labels for r in scored.images}["train/train_a.jpg"] == [1, 0]
    (root / "bad.yaml").write_text("names: {0: a, 2: b}\n")
    with pytest.raises(UserError, match="bad.yaml: 'names' must be a list"):
        preprocess(cfg.model_copy(update={"name": "layouts-yolo-bad", "data": cfg.data.model_copy(
            update={"classes": str(root / "bad.yaml")})}))
