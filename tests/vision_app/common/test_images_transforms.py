"""The shared vision foundations: the shapes generator, safe image/mask decoding, joint transforms."""
import io
import json

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import tv_tensors

from vision_app.common.annotations import yolo_lines
from vision_app.common.images import (
    BadImage,
    ImageLimits,
    data_files,
    decode_image,
    encode_png,
    read_image,
    read_mask,
)
from vision_app.common.shapes import CLASSES, generate_shapes
from vision_app.common.transforms import (
    IGNORE_INDEX,
    ClassificationEval,
    DetectionTrain,
    SegmentationEval,
    SegmentationTrain,
)


def _png(arr, mode=None) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr, mode).save(buf, format="PNG")
    return buf.getvalue()


def test_shapes_are_reproducible_and_consistent(tmp_path):
    a = generate_shapes(tmp_path / "a", 6, image_size=32, seed=3)
    b = generate_shapes(tmp_path / "b", 6, image_size=32, seed=3)
    for sub in ("images/00004.png", "masks/00004.png", "annotations.json", "split.json"):
        assert (a / sub).read_bytes() == (b / sub).read_bytes(), sub
    assert json.loads((a / "classes.json").read_text()) == CLASSES
    split = json.loads((a / "split.json").read_text())
    assert sorted(name for names in split.values() for name in names) == [f"{i:05d}.png" for i in range(6)] and all(split.values())
    coco = json.loads((a / "annotations.json").read_text())
    assert {c["id"] for c in coco["categories"]} == {1, 2, 3}
    for ann in coco["annotations"]:  # each box is tight around its instance's pixels of its class
        img = coco["images"][ann["image_id"] - 1]
        inst = np.asarray(Image.open(a / "instances" / img["file_name"]))
        mask = read_mask(a / "masks" / img["file_name"], num_classes=len(CLASSES))
        k = [x["id"] for x in coco["annotations"] if x["image_id"] == ann["image_id"]].index(ann["id"]) + 1
        ys, xs = np.nonzero(inst == k)
        x, y, w, h = ann["bbox"]
        assert (x, y, x + w - 1, y + h - 1) == (xs.min(), ys.min(), xs.max(), ys.max())
        assert np.all(mask[inst == k] == ann["category_id"]) and ann["area"] == len(xs)


def test_decode_good_image_and_limits():
    raw = _png(np.full((10, 12, 3), 7, np.uint8))
    img = decode_image(raw, "x.png")
    assert img.size == (12, 10) and img.mode == "RGB"
    with pytest.raises(BadImage) as e:
        decode_image(raw, "x.png", ImageLimits(max_pixels=100))
    assert e.value.status == 413 and "pixels" in str(e.value)
    with pytest.raises(BadImage) as e:
        decode_image(raw, "x.png", ImageLimits(max_bytes=10))
    assert e.value.status == 413 and "bytes" in str(e.value)


@pytest.mark.parametrize("data,status,words", [
    (b"hello, not an image", 415, "not an image"),
    (b"", 422, "empty"),
])
def test_decode_rejects_non_images(data, status, words):
    with pytest.raises(BadImage) as e:
        decode_image(data, "upload.bin")
    assert e.value.status == status and words in str(e.value) and "upload.bin" in str(e.value)


def test_truncated_image_fails_with_clear_error(tmp_path):
    raw = _png(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    path = tmp_path / "cut.png"
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(BadImage) as e:
        read_image(path)
    assert e.value.status == 422 and "truncated" in str(e.value) and "cut.png" in str(e.value)


def test_mask_errors(tmp_path):
    (tmp_path / "m.png").write_bytes(encode_png(np.array([[0, 1], [2, 5]], np.uint8), palette=[0] * 768))
    assert read_mask(tmp_path / "m.png").tolist() == [[0, 1], [2, 5]]
    with pytest.raises(BadImage, match="outside the class list"):
        read_mask(tmp_path / "m.png", num_classes=3)
    with pytest.raises(BadImage, match="mask is 2x2 but its image is 4x4"):
        read_mask(tmp_path / "m.png", expected_size=(4, 4))
    (tmp_path / "rgb.png").write_bytes(_png(np.zeros((2, 2, 3), np.uint8)))
    with pytest.raises(BadImage, match="mode RGB"):
        read_mask(tmp_path / "rgb.png")


def _coded_pair():
    """An image whose grey level encodes the class of each pixel: 60 * class id."""
    mask = np.zeros((40, 40), np.int64)
    mask[4:20, 6:30] = 1   # off-centre so that any flip or shift of one but not the other shows
    mask[25:37, 2:12] = 2
    image = np.repeat((mask * 60).astype(np.uint8)[..., None], 3, axis=2)
    return image, mask


@pytest.mark.parametrize("seed", range(5))
def test_train_transform_keeps_image_and_mask_aligned(seed):
    torch.manual_seed(seed)
    image, mask = _coded_pair()
    preset = SegmentationTrain(32, scale=(0.3, 1.0), rotation=40, hflip=0.5, vflip=0.5, jitter=0.0,
                               mean=(0, 0, 0), std=(1, 1, 1))
    x, m = preset(image, mask)
    assert x.shape == (3, 32, 32) and m.shape == (32, 32) and m.dtype == torch.int64
    decoded = (x[0] * 255 / 60).round().long()
    valid = m != IGNORE_INDEX
    agree = (decoded[valid] == m[valid]).float().mean().item()
    assert agree > 0.9, f"image and mask drifted apart: only {agree:.2f} of pixels agree"


def test_eval_presets_shapes_and_box_passthrough():
    image, mask = _coded_pair()
    assert ClassificationEval(16)(image).shape == (3, 16, 16)
    _, m = SegmentationEval(20)(image, mask)
    assert m.shape == (20, 20) and set(m.unique().tolist()) <= {0, 1, 2}
    boxes = tv_tensors.BoundingBoxes(torch.tensor([[6.0, 4, 30, 20]]), format="XYXY", canvas_size=(40, 40))
    _, t = DetectionTrain(20, hflip=1.0)(image, {"boxes": boxes, "labels": torch.tensor([1])})
    assert torch.allclose(t["boxes"], torch.tensor([[5.0, 2, 17, 10]])) and t["labels"].tolist() == [1]


def test_data_files_leave_junk_out_and_yolo_lines_name_the_line(tmp_path):
    for name in ("b.xml", "a.xml", "._a.xml", ".hidden.xml", "a.txt"):
        (tmp_path / name).write_text("x")
    assert [f.name for f in data_files(tmp_path, "*.xml")] == ["a.xml", "b.xml"]
    assert data_files(tmp_path / "absent", "*.xml") == []
    (tmp_path / "a.txt").write_text("\ufeff0 0.5 0.5 0.2 0.2\n\n  \n1 0.1 0.1 0.1 0.1\n", encoding="utf-8")
    assert yolo_lines(tmp_path / "a.txt") == [(f"{tmp_path / 'a.txt'} line 1", "0 0.5 0.5 0.2 0.2"),
                                              (f"{tmp_path / 'a.txt'} line 4", "1 0.1 0.1 0.1 0.1")]
    assert yolo_lines(tmp_path / "none.txt") == []
