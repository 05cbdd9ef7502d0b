"""Detection sets as labelling tools export them, made here and read by ``preprocess`` through the
CLI with ``data.annotations`` the export's folder: Roboflow's COCO, YOLO and Pascal VOC exports
(``train/``, ``valid/``, ``test/``), COCO 2017 (``annotations/instances_<split>2017.json``), CVAT's
COCO 1.0 and Pascal VOC 1.1, Label Studio's COCO; the export's split folders are the split, a missing
split is carved out of train; then one tiny train and ``evaluate --data`` on a Roboflow folder."""
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from shared.config import load_config, validate
from shared.errors import UserError
from shared.runs import latest_run
from vision_app.detect.config import DetectConfig
from vision_app.detect.data import load_processed, preprocess, read_eval_data

RNG = np.random.default_rng(5)
W, H = 48, 32
BOX = [4.0, 6.0, 20.0, 26.0]  # xyxy, drawn into every image
BOX2 = [26.0, 2.0, 44.0, 14.0]


def _image(path: Path) -> str:
    """A ``W``×``H`` noisy image (each one different) with ``BOX`` and ``BOX2`` drawn; PNG or JPEG by suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.fromarray(RNG.integers(0, 90, (H, W, 3), dtype=np.uint8))
    draw = ImageDraw.Draw(im)
    draw.rectangle([BOX[0], BOX[1], BOX[2] - 1, BOX[3] - 1], fill=(230, 40, 40))
    draw.rectangle([BOX2[0], BOX2[1], BOX2[2] - 1, BOX2[3] - 1], fill=(40, 40, 230))
    im.save(path)
    return path.name


def _xywh(box: list[float]) -> list[float]:
    return [box[0], box[1], box[2] - box[0], box[3] - box[1]]


def _coco(path: Path, files: list[str], cats=((1, "car"), (2, "person")), **extra) -> Path:
    """A COCO JSON: each image a ``car`` at ``BOX`` and a ``person`` at ``BOX2``."""
    images = [{"id": i + 1, "file_name": f, "width": W, "height": H} for i, f in enumerate(files)]
    anns = [{"id": 2 * i + k + 1, "image_id": i + 1, "category_id": cats[k][0], "bbox": _xywh(box), "area": 1.0,
             "iscrowd": 0, "segmentation": [], **extra} for i in range(len(files)) for k, box in enumerate((BOX, BOX2))]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"images": images, "annotations": anns,
                                "categories": [{"id": c, "name": n, "supercategory": "none"} for c, n in cats]}))
    return path


def _preprocess(cli, make, tmp: Path, name: str, fmt: str, annotations: Path, **data) -> tuple[dict, dict]:
    """``preprocess --config`` through the CLI; ``(images per split, {file: (boxes, class names)})``."""
    recipe = make.recipe(tmp / f"{name}.yaml", {"name": name, "task": "detect", "data": {
        "format": fmt, "annotations": str(annotations), "valid_fraction": 0.0, "test_fraction": 0.2, **data}})
    assert cli("preprocess", "--config", recipe) == 0
    classes, sets = load_processed(load_config(DetectConfig, recipe))
    boxes = {r.file: ([[round(v, 2) for v in b] for b in r.boxes], [classes[i] for i in r.labels])
             for ds in sets.values() for r in ds.images}
    return {s: len(ds.images) for s, ds in sets.items()}, boxes


BOTH = ([BOX, BOX2], ["car", "person"])


def roboflow_coco(root: Path, counts=(("train", 4), ("valid", 2), ("test", 2))) -> Path:
    """Roboflow's COCO export: its root category 0 (the data set's name, no annotation) included."""
    for split, n in counts:
        files = [_image(root / split / f"{split}_{i}_jpg.rf.{i:04x}.jpg") for i in range(n)]
        path = _coco(root / split / "_annotations.coco.json", files, cats=((1, "car"), (2, "person")))
        data = json.loads(path.read_text())
        data["categories"] = [{"id": 0, "name": "vehicles-x1", "supercategory": "none"}] + [
            {**c, "supercategory": "vehicles-x1"} for c in data["categories"]]
        path.write_text(json.dumps(data))
    (root / "README.roboflow.txt").write_text("exported from roboflow.com\n")
    return root


def test_roboflow_coco_export_split_folders_are_the_split(tmp_path, cli, make):
    root = roboflow_coco(tmp_path / "rf")
    counts, boxes = _preprocess(cli, make, tmp_path, "exports-rf-coco", "coco", root)
    assert counts == {"train": 4, "valid": 2, "test": 2}
    assert boxes["train/train_0_jpg.rf.0000.jpg"] == BOTH and boxes["test/test_1_jpg.rf.0001.jpg"] == BOTH
    assert load_processed(load_config(DetectConfig, tmp_path / "exports-rf-coco.yaml"))[0] == ["car", "person"]
    for f in (root / "test").iterdir():
        f.unlink()
    (root / "test").rmdir()
    counts, _ = _preprocess(cli, make, tmp_path, "exports-rf-coco-notest", "coco", root)
    assert counts == {"train": 3, "valid": 2, "test": 1}  # round(0.2 * 6) carved out of train


def test_coco_2017_annotations_folder(tmp_path, cli, make):
    root = tmp_path / "coco"
    for split, n in (("train2017", 5), ("val2017", 2)):
        files = [_image(root / split / f"{i:012d}.jpg") for i in range(10 * len(split), 10 * len(split) + n)]
        _coco(root / "annotations" / f"instances_{split}.json", files)
    (root / "annotations" / "captions_train2017.json").write_text('{"annotations": []}')
    counts, boxes = _preprocess(cli, make, tmp_path, "exports-coco2017", "coco", root)
    assert counts == {"train": 4, "valid": 2, "test": 1}  # no test split: carved out of train
    assert boxes["val2017/000000000070.jpg"] == BOTH
    # the val JSON alone: its images found in val2017/ beside annotations/
    counts, boxes = _preprocess(cli, make, tmp_path, "exports-coco2017-val", "coco",
                                root / "annotations" / "instances_val2017.json", test_fraction=0.5)
    assert counts == {"train": 1, "valid": 0, "test": 1} and sorted(boxes) == ["000000000070.jpg", "000000000071.jpg"]


def test_roboflow_yolo_export(tmp_path, cli, make):
    root = tmp_path / "rf-yolo"
    for split, n in (("train", 4), ("valid", 1), ("test", 1)):
        for i in range(n):
            _image(root / split / "images" / f"{split}{i}.jpg")
            (root / split / "labels").mkdir(parents=True, exist_ok=True)
            lines = [f"{k} {(b[0] + b[2]) / 2 / W:.6f} {(b[1] + b[3]) / 2 / H:.6f} {(b[2] - b[0]) / W:.6f} "
                     f"{(b[3] - b[1]) / H:.6f}" for k, b in enumerate((BOX, BOX2))]
            (root / split / "labels" / f"{split}{i}.txt").write_text("\n".join(lines) + "\n")
    (root / "data.yaml").write_text("train: ../train/images\nval: ../valid/images\ntest: ../test/images\n\n"
                                    "nc: 2\nnames: ['car', 'person']\n")
    counts, boxes = _preprocess(cli, make, tmp_path, "exports-rf-yolo", "yolo", root)
    assert counts == {"train": 4, "valid": 1, "test": 1}
    assert boxes["valid/images/valid0.jpg"] == BOTH


def test_label_studio_yolo_export_with_its_classes_txt_at_the_root(tmp_path, cli, make):
    """Label Studio's YOLO export: ``classes.txt`` and ``notes.json`` beside ``images/`` and
    ``labels/``; an image whose label file is empty, and one without a label file, are background."""
    root = tmp_path / "project-1-at-2026-12-02"
    line = " ".join(f"{v:.6f}" for v in ((BOX[0] + BOX[2]) / 2 / W, (BOX[1] + BOX[3]) / 2 / H, (BOX[2] - BOX[0]) / W,
                                         (BOX[3] - BOX[1]) / H))
    for i in range(6):
        _image(root / "images" / f"a{i}.jpg")
        (root / "labels").mkdir(parents=True, exist_ok=True)
        if i != 5:  # a5: no label file
            (root / "labels" / f"a{i}.txt").write_text("" if i == 4 else f"1 {line}\n")
    (root / "classes.txt").write_text("person\ncar\n")
    (root / "notes.json").write_text(json.dumps({"categories": [{"id": 0, "name": "person"}, {"id": 1, "name": "car"}]}))
    counts, boxes = _preprocess(cli, make, tmp_path, "exports-label-studio-yolo", "yolo", root)
    assert sum(counts.values()) == 6
    assert boxes["a0.jpg"] == ([BOX], ["car"]) and boxes["a4.jpg"] == boxes["a5.jpg"] == ([], [])


VOC_XML = ("<annotation><folder></folder><filename>{name}</filename><path>{name}</path><source><database>roboflow.com"
           "</database></source><size><width>48</width><height>32</height><depth>3</depth></size><segmented>0"
           "</segmented>{objects}</annotation>")
VOC_OBJECT = ("<object><name>{cls}</name><pose>Unspecified</pose><truncated>0</truncated><difficult>0</difficult>"
              "<occluded>0</occluded><bndbox><xmin>{b[0]:g}</xmin><ymin>{b[1]:g}</ymin><xmax>{b[2]:g}</xmax>"
              "<ymax>{b[3]:g}</ymax></bndbox><attributes><attribute><name>occluded</name><value>false</value>"
              "</attribute></attributes></object>")
VOC_OBJECTS = VOC_OBJECT.format(cls="car", b=BOX) + VOC_OBJECT.format(cls="person", b=BOX2)


def test_roboflow_pascal_voc_export_images_and_xml_side_by_side(tmp_path, cli, make):
    root = tmp_path / "rf-voc"
    for split, n in (("train", 4), ("valid", 2), ("test", 1)):
        for i in range(n):
            name = _image(root / split / f"{split}{i}_jpg.rf.{i}.jpg")
            (root / split / f"{split}{i}_jpg.rf.{i}.xml").write_text(VOC_XML.format(name=name, objects=VOC_OBJECTS))
    counts, boxes = _preprocess(cli, make, tmp_path, "exports-rf-voc", "voc", root)
    assert counts == {"train": 4, "valid": 2, "test": 1}
    assert boxes["test/test0_jpg.rf.0.jpg"] == BOTH


def test_cvat_coco_export_with_folders_in_file_names_and_a_box_from_a_polygon(tmp_path, cli, make):
    root = tmp_path / "cvat-coco"
    _image(root / "images" / "frame_000000.jpg")
    _image(root / "images" / "default" / "frame_000001.PNG")
    _image(root / "images" / "frame_000002.PNG")
    for i in range(3, 6):
        _image(root / "images" / f"frame_{i:06d}.jpg")
    files = ["images/frame_000000.jpg", "default/frame_000001.PNG", "default/frame_000002.PNG"] + [
        f"frame_{i:06d}.jpg" for i in range(3, 6)]  # frame 2 is in images/ itself
    path = _coco(root / "annotations" / "instances_default.json", files, attributes={"occluded": False})
    data = json.loads(path.read_text())
    polygon = [BOX[0], BOX[1], BOX[2], BOX[1], BOX[2], BOX[3], BOX[0], BOX[3]]
    data["annotations"][0].update(bbox=[], segmentation=[polygon])  # a box-less polygon: its box is taken
    del data["annotations"][2]["bbox"]
    data["annotations"][2]["segmentation"] = [polygon[:4] + [BOX[2], BOX[3]], polygon[4:] + polygon[:2]]
    path.write_text(json.dumps(data))
    counts, boxes = _preprocess(cli, make, tmp_path, "exports-cvat-coco", "coco", root)
    assert sum(counts.values()) == 6 and counts["test"] == 1
    assert boxes["frame_000000.jpg"] == BOTH and boxes["default/frame_000001.PNG"] == BOTH
    assert boxes["frame_000002.PNG"] == BOTH
    counts, boxes = _preprocess(cli, make, tmp_path, "exports-cvat-coco-json", "coco", path)  # the JSON alone
    assert sum(counts.values()) == 6 and boxes["default/frame_000001.PNG"] == BOTH
    data["annotations"][0]["segmentation"] = {"size": [H, W], "counts": [0, 10]}  # RLE: no box to take
    path.write_text(json.dumps(data))
    with pytest.raises(UserError, match=r"instances_default.json annotation id 1: no 'bbox' \(give every"):
        read_eval_data(root, ["car", "person"])


def test_cvat_pascal_voc_1_1_with_only_a_default_list_reads_every_image(tmp_path, cli, make):
    root = tmp_path / "cvat-voc"
    for i in range(6):
        _image(root / "JPEGImages" / f"frame_{i:06d}.jpg")
        (root / "Annotations").mkdir(parents=True, exist_ok=True)
        (root / "Annotations" / f"frame_{i:06d}.xml").write_text(
            VOC_XML.format(name=f"frame_{i:06d}" if i % 2 else f"frame_{i:06d}.jpg", objects=VOC_OBJECTS))
    (root / "ImageSets" / "Main").mkdir(parents=True)
    (root / "ImageSets" / "Main" / "default.txt").write_text("".join(f"frame_{i:06d}\n" for i in range(6)))
    (root / "labelmap.txt").write_text("# label:color_rgb:parts:actions\ncar:250,50,83::\nperson:51,221,255::\n")
    counts, boxes = _preprocess(cli, make, tmp_path, "exports-cvat-voc", "voc", root)
    assert counts == {"train": 5, "valid": 0, "test": 1}
    assert all(b == BOTH for b in boxes.values()) and len(boxes) == 6
    scored = read_eval_data(root, ["person", "car"])  # no test list: every image
    assert len(scored.images) == 6 and scored.images[0].labels == [1, 0]


def test_label_studio_coco_export(tmp_path, cli, make):
    root = tmp_path / "label-studio"
    names = [_image(root / "images" / f"{stem}-photo{i}.jpg") for i, stem in enumerate(("abc123", "de45f6", "0a1b2c",
                                                                                         "9f8e7d", "c0ffee"))]
    files = [f"images/{n}" if i % 2 else f"/data/upload/1/{n}" for i, n in enumerate(names)]
    path = _coco(root / "result.json", files, cats=((0, "car"), (1, "person")), ignore=0)
    path.write_text(path.read_text().replace("/", "\\/"))  # Label Studio escapes its slashes
    counts, boxes = _preprocess(cli, make, tmp_path, "exports-label-studio", "coco", root)
    assert sum(counts.values()) == 5 and counts["test"] == 1
    assert boxes["abc123-photo0.jpg"] == BOTH and boxes["de45f6-photo1.jpg"] == BOTH


def test_an_export_folder_with_data_images_is_refused(tmp_path):
    root = roboflow_coco(tmp_path / "rf", counts=(("train", 1),))
    cfg = validate(DetectConfig, {"data": {"format": "coco", "annotations": str(root), "images": str(root)}})
    with pytest.raises(UserError, match=r"for the export folder .*rf leave data.images out"):
        preprocess(cfg)


def test_train_on_a_roboflow_export_and_evaluate_data_on_its_folder(tmp_path, cli, make):
    root = roboflow_coco(tmp_path / "rf", counts=(("train", 6), ("valid", 2), ("test", 3)))
    recipe = make.recipe(tmp_path / "rf-train.yaml", {
        "name": "t-detect-roboflow", "task": "detect", "data": {"format": "coco", "annotations": str(root)},
        "model": {"arch": "yolo", "backbone": "csp", "input_size": 64, "width": 8, "neck_width": 16},
        "train": {"max_steps": 2, "epochs": 1, "batch_size": 4, "progress": False, "device": "cpu"},
        "eval": {"draw_images": 1}, "serve": {"load_in_background": False}})
    assert cli("train", "--config", recipe) == 0
    run = latest_run("vision_app", "t-detect-roboflow")
    assert json.loads((run / "metrics.json").read_text())["test/images"] == 3
    assert cli("evaluate", "--run", run, "--data", root) == 0
    metrics = json.loads((run / "evaluations" / "rf" / "metrics.json").read_text())
    assert metrics["data/images"] == 3  # the export's own test split
    assert 0.0 <= metrics["data/map_50"] <= 1.0
