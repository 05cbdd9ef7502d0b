"""Detection annotation formats: each round-trips into the internal form; bad data fails clearly."""
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from shared.errors import UserError
from vision_app.detect.data import assign_splits, drop_duplicates
from vision_app.detect.formats import (
    DetectionSet,
    ImageRecord,
    read_coco,
    read_voc,
    write_coco,
    write_voc,
)
from vision_app.detect.yolo_txt import read_yolo, write_yolo

CLASSES = ["cat", "dog"]


@pytest.fixture
def tiny_set(tmp_path) -> DetectionSet:
    images = tmp_path / "images"
    images.mkdir()
    recs = [ImageRecord("a.png", 40, 30, [[2.0, 3.0, 20.0, 25.0], [21.0, 1.0, 40.0, 30.0]], [0, 1]),
            ImageRecord("b.png", 24, 36, [[0.0, 0.0, 12.5, 10.25]], [1]),
            ImageRecord("c.png", 16, 16, [], [])]
    for i, r in enumerate(recs):
        Image.fromarray(np.full((r.height, r.width, 3), 40 * i, np.uint8)).save(images / r.file)
    return DetectionSet(CLASSES, recs, str(images))


def _same(a: DetectionSet, b: DetectionSet, tol: float = 0.0):
    assert a.classes == b.classes
    ra, rb = sorted(a.images, key=lambda r: r.file), sorted(b.images, key=lambda r: r.file)
    assert [(r.file, r.width, r.height, r.labels) for r in ra] == [(r.file, r.width, r.height, r.labels) for r in rb]
    for x, y in zip(ra, rb):
        np.testing.assert_allclose(np.array(x.boxes).reshape(-1, 4), np.array(y.boxes).reshape(-1, 4), atol=tol)


def test_coco_round_trip(tiny_set, tmp_path):
    write_coco(tiny_set, tmp_path / "coco.json")
    _same(read_coco(tmp_path / "coco.json", tiny_set.images_dir), tiny_set)


def test_voc_round_trip(tiny_set, tmp_path):
    write_voc(tiny_set, tmp_path / "xml")
    _same(read_voc(tmp_path / "xml", tiny_set.images_dir, CLASSES), tiny_set)


def test_yolo_round_trip(tiny_set, tmp_path):
    write_yolo(tiny_set, tmp_path / "labels")
    _same(read_yolo(tmp_path / "labels", tiny_set.images_dir, CLASSES), tiny_set, tol=1e-3)


def test_coco_skips_crowd_and_orders_categories_by_id(tiny_set, tmp_path):
    write_coco(tiny_set, tmp_path / "coco.json")
    data = json.loads((tmp_path / "coco.json").read_text())
    data["categories"] = [{"id": 7, "name": "dog"}, {"id": 3, "name": "cat"}]
    for ann in data["annotations"]:
        ann["category_id"] = {1: 3, 2: 7}[ann["category_id"]]
    data["annotations"].append({**data["annotations"][0], "id": 99, "iscrowd": 1})
    (tmp_path / "coco.json").write_text(json.dumps(data))
    _same(read_coco(tmp_path / "coco.json", tiny_set.images_dir), tiny_set)


@pytest.mark.parametrize("bbox, message", [
    ([30, 5, 20, 10], "outside the 40x30 image"),   # x2 = 50 > 40
    ([-5, 5, 10, 10], "outside"),
    ([5, 5, 0, 10], "zero-area"),
    ([5, 5, -3, 10], "inverted"),
])
def test_coco_bad_boxes_name_the_annotation(tiny_set, tmp_path, bbox, message):
    write_coco(tiny_set, tmp_path / "coco.json")
    data = json.loads((tmp_path / "coco.json").read_text())
    data["annotations"][0]["bbox"] = bbox
    (tmp_path / "coco.json").write_text(json.dumps(data))
    with pytest.raises(UserError, match=message) as err:
        read_coco(tmp_path / "coco.json", tiny_set.images_dir)
    assert "annotation id 1" in str(err.value)


def test_box_just_outside_is_clipped(tiny_set, tmp_path):
    tiny_set.images[0].boxes[1] = [21.0, 1.0, 40.6, 30.4]
    write_coco(tiny_set, tmp_path / "coco.json")
    assert read_coco(tmp_path / "coco.json", tiny_set.images_dir).images[0].boxes[1] == [21.0, 1.0, 40.0, 30.0]


def test_unknown_ids_and_missing_images(tiny_set, tmp_path):
    write_coco(tiny_set, tmp_path / "coco.json")
    data = json.loads((tmp_path / "coco.json").read_text())
    data["annotations"][0]["category_id"] = 42
    (tmp_path / "bad_cat.json").write_text(json.dumps(data))
    with pytest.raises(UserError, match="unknown category_id 42"):
        read_coco(tmp_path / "bad_cat.json", tiny_set.images_dir)
    data = json.loads((tmp_path / "coco.json").read_text())
    data["images"][0]["file_name"] = "gone.png"
    (tmp_path / "missing.json").write_text(json.dumps(data))
    with pytest.raises(UserError, match="gone.png is listed but missing"):
        read_coco(tmp_path / "missing.json", tiny_set.images_dir)
    data["images"][0].update(file_name="a.png", width=41)
    (tmp_path / "size.json").write_text(json.dumps(data))
    with pytest.raises(UserError, match="annotation says 41x30 but image"):
        read_coco(tmp_path / "size.json", tiny_set.images_dir)

    write_yolo(tiny_set, tmp_path / "labels")
    (tmp_path / "labels" / "a.txt").write_text("5 0.5 0.5 0.2 0.2\n")
    with pytest.raises(UserError, match="unknown class index 5"):
        read_yolo(tmp_path / "labels", tiny_set.images_dir, CLASSES)
    (tmp_path / "labels" / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    (tmp_path / "labels" / "zzz.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    with pytest.raises(UserError, match="zzz.* is listed but missing"):
        read_yolo(tmp_path / "labels", tiny_set.images_dir, CLASSES)

    write_voc(tiny_set, tmp_path / "xml")
    with pytest.raises(UserError, match="unknown class 'dog'"):
        read_voc(tmp_path / "xml", tiny_set.images_dir, ["cat"])


def test_splits_named_carved_and_deduplicated(tiny_set):
    files = [f"{i}.png" for i in range(20)]
    split = assign_splits(files, {"train": files[:16], "test": files[16:]}, 0.1, 0.2, seed=0)
    assert split["test"] == sorted(files[16:]) and len(split["valid"]) == 2
    assert sorted(split["train"] + split["valid"]) == sorted(files[:16])
    auto = assign_splits(files, {}, 0.1, 0.2, seed=0)
    assert sorted(f for names in auto.values() for f in names) == sorted(files) and len(auto["test"]) == 4
    with pytest.raises(UserError, match="more than one split"):
        assign_splits(files, {"train": files[:10], "test": files[9:]}, 0.1, 0.2, seed=0)
    with pytest.raises(UserError, match="match no annotated image"):
        assign_splits(files, {"train": ["nope.png"]}, 0.1, 0.2, seed=0)
    copy = Image.open(f"{tiny_set.images_dir}/a.png")
    copy.save(f"{tiny_set.images_dir}/a_copy.png")
    tiny_set.images.append(ImageRecord("a_copy.png", 40, 30, [], []))
    kept, dropped = drop_duplicates(tiny_set)
    assert dropped == ["a_copy.png"] and len(kept.images) == 3


def voc_root(root: Path, n: int = 12) -> Path:
    """A Pascal VOC tree as the VOC devkit lays it out: ``Annotations/*.xml``, ``JPEGImages/*.jpg``
    and ``ImageSets/Main/{train,val,trainval,test}.txt`` listing names without an extension."""
    rng = np.random.default_rng(7)
    (root / "JPEGImages").mkdir(parents=True)
    recs = []
    for i in range(n):
        name = f"2008_{i:06d}.jpg"
        Image.fromarray(rng.integers(0, 255, (30, 40, 3), dtype=np.uint8)).save(root / "JPEGImages" / name)
        recs.append(ImageRecord(name, 40, 30, [[2.0, 3.0, 20.0, 25.0]], [i % 2]))
    write_voc(DetectionSet(CLASSES, recs, str(root / "JPEGImages")), root / "Annotations")
    main = root / "ImageSets" / "Main"
    main.mkdir(parents=True)
    stems = [r.file.removesuffix(".jpg") for r in recs]
    for name, part in (("train", stems[:6]), ("val", stems[6:9]), ("trainval", stems[:9]), ("test", stems[9:])):
        (main / f"{name}.txt").write_text("".join(f"{s}\n" for s in part))
    return root


def _voc_cfg(root: Path, **data):
    from shared.config import validate
    from vision_app.detect.config import DetectConfig

    return validate(DetectConfig, {"name": "detect-voc-test", "data": {
        "format": "voc", "annotations": str(root / "Annotations"), "images": str(root / "JPEGImages"), **data}})


def test_voc_imagesets_main_names_without_extension_are_the_split(tmp_path):
    from vision_app.detect.data import preprocess

    root = voc_root(tmp_path / "VOC2012")
    found = preprocess(_voc_cfg(root))  # ImageSets/Main beside Annotations: used as it is
    assert {s: c["images"] for s, c in found["splits"].items()} == {"train": 6, "valid": 3, "test": 3}
    main = root / "ImageSets" / "Main"
    given = preprocess(_voc_cfg(root, split={"trainval": str(main / "trainval.txt"), "test": str(main / "test.txt")},
                                valid_fraction=0.25))
    assert {s: c["images"] for s, c in given["splits"].items()} == {"train": 6, "valid": 3, "test": 3}
    (main / "test.txt").write_text("2008_000011\n2008_999999\n")
    with pytest.raises(UserError, match=r"1 name\(s\) that match no annotated image.*2008_999999"):
        preprocess(_voc_cfg(root, valid_fraction=0.3))


def test_evaluate_data_reads_a_voc_devkit_folder_and_its_test_list(tmp_path):
    from vision_app.detect.data import read_eval_data

    root = voc_root(tmp_path / "VOC2012")
    ds = read_eval_data(root, ["dog", "cat"])  # the model's class order
    assert sorted(r.file for r in ds.images) == ["2008_000009.jpg", "2008_000010.jpg", "2008_000011.jpg"]
    assert [r.labels for r in sorted(ds.images, key=lambda r: r.file)] == [[0], [1], [0]]  # cat=1, dog=0
    (root / "ImageSets" / "Main" / "test.txt").unlink()
    assert len(read_eval_data(root, CLASSES).images) == 12


def _break_boxes(root: Path) -> None:
    """Three bad boxes in three files: outside the image, zero-area, inverted."""
    for i, box in ((0, (30, 5, 55, 20)), (4, (5, 5, 5, 20)), (7, (20, 25, 3, 2))):
        xml = root / "Annotations" / f"2008_{i:06d}.xml"
        text = xml.read_text()
        for tag, v in zip(("xmin", "ymin", "xmax", "ymax"), box):
            text = text.replace(f"<{tag}>", f"<{tag}>{v}<!--", 1).replace(f"</{tag}>", f"--></{tag}>", 1)
        xml.write_text(text)


def test_every_bad_box_is_listed_at_once_and_bad_boxes_drops_or_clips(tmp_path):
    from vision_app.detect.data import preprocess

    root = voc_root(tmp_path / "VOC")
    _break_boxes(root)
    with pytest.raises(UserError) as err:
        read_voc(root / "Annotations", root / "JPEGImages")
    message = str(err.value)
    assert message.startswith("3 bad box(es)") and "data.bad_boxes=drop" in message and "data.bad_boxes=clip" in message
    for i, kind in ((0, "outside the 40x30 image"), (4, "zero-area"), (7, "inverted")):
        assert f"2008_{i:06d}.xml object 0" in message and kind in message
    dropped = read_voc(root / "Annotations", root / "JPEGImages", bad_boxes="drop")
    assert sum(len(r.boxes) for r in dropped.images) == 12 - 3 and len(dropped.images) == 12
    clipped = {r.file: r.boxes for r in read_voc(root / "Annotations", root / "JPEGImages", bad_boxes="clip").images}
    assert clipped["2008_000000.jpg"] == [[30.0, 5.0, 40.0, 20.0]]  # clipped into the image
    assert clipped["2008_000004.jpg"] == []  # zero-area: nothing to clip
    assert clipped["2008_000007.jpg"] == [[3.0, 2.0, 20.0, 25.0]]  # corners swapped
    assert preprocess(_voc_cfg(root, bad_boxes="drop"))["splits"]["train"]["images"] == 6


def test_bad_yolo_and_coco_boxes_are_listed_at_once(tiny_set, tmp_path):
    write_yolo(tiny_set, tmp_path / "labels")
    (tmp_path / "labels" / "a.txt").write_text("0 0.5 0.5 0 0.2\n1 1.4 0.5 0.5 0.5\n")
    (tmp_path / "labels" / "b.txt").write_text("1 0.5 0.5 0.2 -0.2\n")
    with pytest.raises(UserError, match=r"^3 bad box\(es\).*a.txt line 1.*a.txt line 2.*b.txt line 1"):
        read_yolo(tmp_path / "labels", tiny_set.images_dir, CLASSES)
    write_coco(tiny_set, tmp_path / "coco.json")
    data = json.loads((tmp_path / "coco.json").read_text())
    for ann in data["annotations"]:
        ann["bbox"] = [1, 1, 0, 5]
    (tmp_path / "coco.json").write_text(json.dumps(data))
    with pytest.raises(UserError, match=r"^3 bad box\(es\).*annotation id 1.*annotation id 2.*annotation id 3"):
        read_coco(tmp_path / "coco.json", tiny_set.images_dir)
    assert all(not r.boxes for r in read_coco(tmp_path / "coco.json", tiny_set.images_dir, "drop").images)


RACCOON = Path("/work/shared/data/raccoon")


@pytest.mark.slow
@pytest.mark.skipif(not RACCOON.is_dir(), reason="the raccoon development set is not on this machine")
def test_raccoon_voc_reads_and_splits():
    from shared.config import validate
    from vision_app.detect.config import DetectConfig
    from vision_app.detect.data import preprocess

    ds = read_voc(RACCOON / "annotations", RACCOON / "images")
    assert ds.classes == ["raccoon"] and len(ds.images) == 200 and sum(len(r.boxes) for r in ds.images) == 217
    cfg = validate(DetectConfig, {"name": "detect-raccoon-test", "data": {
        "format": "voc", "annotations": str(RACCOON / "annotations"), "images": str(RACCOON / "images"),
        "split": {"train": str(RACCOON / "data/train_labels.csv"), "test": str(RACCOON / "data/test_labels.csv")}}})
    manifest = preprocess(cfg)
    assert manifest["splits"]["test"]["images"] == 40  # byte-identical copies are dropped from train only
    assert sum(s["images"] for s in manifest["splits"].values()) == 200 - manifest["n_duplicates_dropped"]
