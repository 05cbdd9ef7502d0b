"""Boxes stay on their objects through augmentation and letterboxing; the YOLO-style assigner,
loss and NMS behave."""
import numpy as np
import torch
from torchvision import tv_tensors

from vision_app.common.transforms import IMAGENET_MEAN, IMAGENET_STD, DetectionEval, DetectionTrain
from vision_app.detect.predict import to_original
from vision_app.detect.yolo import CSPBackbone, YoloDetector, grid_points, postprocess

COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]


def _scene(w=90, h=60):
    """A grey image with three solid rectangles of distinct colours, and their boxes."""
    img = np.full((h, w, 3), 128, np.uint8)
    boxes = [[5, 8, 25, 30], [40, 5, 80, 20], [50, 30, 70, 55]]
    for (x1, y1, x2, y2), c in zip(boxes, COLOURS):
        img[y1:y2, x1:x2] = c
    return img, boxes


def _colour_box(x: torch.Tensor, colour) -> list[float] | None:
    """The tight box around the pixels of ``colour`` in a normalised CHW tensor."""
    mean, std = torch.tensor(IMAGENET_MEAN).view(3, 1, 1), torch.tensor(IMAGENET_STD).view(3, 1, 1)
    rgb = (x * std + mean) * 255
    hit = ((rgb - torch.tensor(colour).view(3, 1, 1)).abs() < 60).all(0)
    ys, xs = hit.nonzero(as_tuple=True)
    return None if len(xs) < 4 else [xs.min().item(), ys.min().item(), xs.max().item() + 1, ys.max().item() + 1]


def test_train_augmentation_keeps_boxes_on_their_objects():
    img, boxes = _scene()
    preset = DetectionTrain(64, hflip=0.5, letterbox=True, scale=(0.5, 1.5))
    checked = 0
    for seed in range(12):
        torch.manual_seed(seed)
        target = {"boxes": tv_tensors.BoundingBoxes(torch.tensor(boxes, dtype=torch.float32), format="XYXY",
                                                    canvas_size=img.shape[:2]), "labels": torch.arange(3)}
        x, t = preset(img, target)
        assert x.shape == (3, 64, 64)
        for box, label in zip(t["boxes"].tolist(), t["labels"].tolist()):
            seen = _colour_box(x, COLOURS[label])
            if seen is None:  # cropped away entirely except a sliver
                continue
            assert np.allclose(box, seen, atol=2.0), f"seed {seed}: box {box} drifted from its object at {seen}"
            checked += 1
    assert checked >= 20


def test_letterbox_and_back_returns_original_boxes():
    img, boxes = _scene()
    target = {"boxes": tv_tensors.BoundingBoxes(torch.tensor(boxes, dtype=torch.float32), format="XYXY",
                                                canvas_size=img.shape[:2]), "labels": torch.arange(3)}
    x, t = DetectionEval(64, letterbox=True)(img, target)
    for box, label in zip(t["boxes"].tolist(), t["labels"].tolist()):
        assert np.allclose(box, _colour_box(x, COLOURS[label]), atol=1.5)
    pred = {"boxes": t["boxes"].as_subclass(torch.Tensor), "labels": t["labels"], "scores": torch.ones(3)}
    back = to_original(pred, img.shape[1], img.shape[0], 64)
    assert torch.allclose(back["boxes"], torch.tensor(boxes, dtype=torch.float32), atol=0.01)


def test_every_box_gets_positive_cells_inside_it():
    model = YoloDetector(2, CSPBackbone(8), neck_width=16)
    points, strides = grid_points([(8, 8), (4, 4), (2, 2)], "cpu")
    boxes = torch.tensor([[2.0, 2, 6, 7], [10, 10, 60, 40], [0, 0, 64, 64], [29, 41, 39, 51]])
    pos, gt = model.assign(points, strides, boxes)
    assert set(gt.tolist()) == {0, 1, 2, 3}
    px, py = points[pos, 0], points[pos, 1]
    b = boxes[gt]
    inside = (px > b[:, 0]) & (px < b[:, 2]) & (py > b[:, 1]) & (py < b[:, 3])
    assert inside[gt != 0].all()  # the 4x5 box is smaller than a cell: it takes the nearest one


def test_loss_dict_and_eval_output():
    torch.manual_seed(0)
    model = YoloDetector(2, CSPBackbone(8), neck_width=16)
    x = torch.randn(2, 3, 64, 64)
    targets = [{"boxes": torch.tensor([[4.0, 4, 30, 30]]), "labels": torch.tensor([1])},
               {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long)}]
    losses = model(x, targets)
    assert set(losses) == {"loss_cls", "loss_box"} and all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    model.eval()
    out = model(x)
    assert len(out) == 2 and set(out[0]) == {"boxes", "labels", "scores"}


def test_postprocess_suppresses_duplicates_per_class():
    boxes = torch.tensor([[[0.0, 0, 10, 10], [1, 0, 11, 10], [0, 0, 10, 10], [50, 50, 60, 60]]])
    scores = torch.tensor([[[0.9, 0.0], [0.8, 0.0], [0.0, 0.7], [0.02, 0.0]]])
    out = postprocess(boxes, scores, score_thresh=0.05, nms_iou=0.5)[0]
    assert out["labels"].tolist() == [0, 1] and torch.allclose(out["scores"], torch.tensor([0.9, 0.7]))
