"""Detector builders: ``MODELS = {"yolo": build_yolo, "fasterrcnn": build_fasterrcnn}``.

Both detectors share one interface, so training, evaluation, serving and the benchmarks never
branch on the architecture: ``model(images, targets)`` returns a dict of losses in train mode,
``model(images)`` a list of ``{"boxes" (xyxy), "labels" (0..C-1), "scores"}`` in eval mode, for a
``[B, 3, S, S]`` batch of normalised, letterboxed images.

Initialisation is random unless the recipe names weights: ``model.weights`` is a local file (a
``.safetensors`` from an earlier run, or a ``.pt``/``.pth`` state dict such as torchvision's COCO
checkpoint; tensors whose shape does not fit, e.g. another class count's head, are skipped and
logged) or, for Faster R-CNN, a torchvision weights enum name (``COCO_V1``, found in the torch
hub cache or downloaded); ``model.backbone_weights`` names a torchvision ImageNet enum
(``IMAGENET1K_V1`` …) for the backbone alone.
"""
from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn
from torchvision.models import detection as tvd
from torchvision.models import mobilenetv3, resnet
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import _resnet_fpn_extractor
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.ops.misc import FrozenBatchNorm2d

from shared.checkpoint import load_weights
from shared.errors import UserError
from shared.runs import read_json
from vision_app.common.models import load_matching, load_state_file
from vision_app.detect.config import DetectModel
from vision_app.detect.yolo import RESNETS, CSPBackbone, ResNetBackbone, YoloDetector

log = logging.getLogger(__name__)



def _fasterrcnn_small_resnet(arch: str):
    """A Faster R-CNN builder on a ResNet-18/34 FPN (strides 8, 16, 32 and a pooled 64), with
    torchvision's builder signature. torchvision publishes no detection weights for these, only
    ImageNet backbones (``backbone_weights``)."""
    def build(weights=None, num_classes=None, weights_backbone=None, **kwargs) -> tvd.FasterRCNN:
        trained = weights_backbone is not None
        norm = FrozenBatchNorm2d if trained else nn.BatchNorm2d  # random init: BN must learn
        body = getattr(resnet, arch)(weights=weights_backbone, norm_layer=norm)
        levels = _resnet_fpn_extractor(body, 3 if trained else 5, returned_layers=[2, 3, 4])
        anchors = AnchorGenerator(((32,), (64,), (128,), (256,)), ((0.5, 1.0, 2.0),) * 4)
        return tvd.FasterRCNN(levels, num_classes=num_classes, rpn_anchor_generator=anchors, **kwargs)
    return build


# builder and the enum classes its `weights` / `weights_backbone` names are looked up in
# (resnet18/34: strides 8-64 and plain BatchNorm, which learn the shapes set from random init in
# ~11 CPU epochs; torchvision's MobileNetV3 FPN sees only strides 16 and 32 and is made for
# fine-tuning its COCO weights: 0.05 mAP@0.5 after 6 epochs from scratch)
FASTER_RCNN = {
    "resnet18": (_fasterrcnn_small_resnet("resnet18"), None, resnet.ResNet18_Weights),
    "resnet34": (_fasterrcnn_small_resnet("resnet34"), None, resnet.ResNet34_Weights),
    "mobilenet_v3": (tvd.fasterrcnn_mobilenet_v3_large_fpn, tvd.FasterRCNN_MobileNet_V3_Large_FPN_Weights,
                     mobilenetv3.MobileNet_V3_Large_Weights),
    "resnet50": (tvd.fasterrcnn_resnet50_fpn, tvd.FasterRCNN_ResNet50_FPN_Weights, resnet.ResNet50_Weights),
}
RESNET_WEIGHTS = {"resnet18": resnet.ResNet18_Weights, "resnet34": resnet.ResNet34_Weights,
                  "resnet50": resnet.ResNet50_Weights}
# Small images hold few objects: far fewer proposals than torchvision's defaults (2000/1000 and
# 512 sampled RoIs) lose nothing here and cut CPU training time several-fold.
RCNN_SPEED = {"rpn_pre_nms_top_n_train": 600, "rpn_post_nms_top_n_train": 300, "rpn_pre_nms_top_n_test": 300,
              "rpn_post_nms_top_n_test": 150, "box_batch_size_per_image": 32}
# From scratch, the RoI head's two 1024-wide layers (fc6 alone is 12.8M weights) are most of the
# compute; 256 wide is plenty for a few classes. Pretrained COCO weights keep torchvision's head.
RCNN_HEAD_WIDTH = 256


def _enum(enum_cls, name: str | None, what: str):
    if name is None:
        return None
    if enum_cls is None:
        raise UserError(f"{what}: torchvision has no {name!r} weights for this model; give a local file")
    try:
        return enum_cls[name]
    except KeyError:
        raise UserError(f"{what}: {name!r} is not one of {[w.name for w in enum_cls]}") from None


def _is_file(name: str | None) -> bool:
    return name is not None and (Path(name).suffix in (".safetensors", ".pt", ".pth") or Path(name).exists())


class FasterRCNNDetector(nn.Module):
    """torchvision's Faster R-CNN behind the shared interface: class ids 0..C-1 outside (torchvision
    reserves 0 for background) and no resizing or normalising of its own (the preset did both)."""

    def __init__(self, net: tvd.FasterRCNN):
        super().__init__()
        self.net = net

    def forward(self, images, targets: list[dict] | None = None):
        images = list(images)
        if self.training:
            shifted = [{"boxes": t["boxes"], "labels": t["labels"] + 1} for t in targets]
            return self.net(images, shifted)
        return [{**o, "labels": o["labels"] - 1} for o in self.net(images)]


def build_fasterrcnn(cfg: DetectModel, num_classes: int) -> nn.Module:
    if cfg.backbone not in FASTER_RCNN:
        raise UserError(f"model.backbone {cfg.backbone!r}: fasterrcnn takes {sorted(FASTER_RCNN)}")
    builder, weights_enum, backbone_enum = FASTER_RCNN[cfg.backbone]
    hub_weights = None if _is_file(cfg.weights) else _enum(weights_enum, cfg.weights, "model.weights")
    net = builder(
        weights=hub_weights, num_classes=None if hub_weights else num_classes + 1,
        weights_backbone=_enum(backbone_enum, cfg.backbone_weights, "model.backbone_weights"),
        min_size=cfg.input_size, max_size=cfg.input_size, image_mean=[0.0] * 3, image_std=[1.0] * 3,
        box_score_thresh=cfg.score_thresh, box_nms_thresh=cfg.nms_iou, box_detections_per_img=cfg.max_detections,
        **RCNN_SPEED,
    )
    if cfg.anchor_sizes is not None:
        sizes, default = tuple(cfg.anchor_sizes), net.rpn.anchor_generator.sizes
        # MobileNetV3's FPN puts every size on each of its 3 levels; the ResNet FPNs one per level
        per_level = (sizes,) * len(default) if cfg.backbone == "mobilenet_v3" else tuple((s,) for s in sizes)
        if len(per_level) != len(default) or len(per_level[0]) != len(default[0]):
            need = len(default[0]) if cfg.backbone == "mobilenet_v3" else len(default)
            raise UserError(f"model.anchor_sizes needs {need} sizes for "
                            f"fasterrcnn/{cfg.backbone}, got {len(sizes)}")
        net.rpn.anchor_generator = AnchorGenerator(per_level, ((0.5, 1.0, 2.0),) * len(per_level))
    if hub_weights is not None:  # a COCO head has 91 classes: give it ours
        net.roi_heads.box_predictor = FastRCNNPredictor(net.roi_heads.box_head.fc7.out_features, num_classes + 1)
    else:
        in_features = net.roi_heads.box_head.fc6.in_features
        net.roi_heads.box_head = TwoMLPHead(in_features, RCNN_HEAD_WIDTH)
        net.roi_heads.box_predictor = FastRCNNPredictor(RCNN_HEAD_WIDTH, num_classes + 1)
    model = FasterRCNNDetector(net)
    if _is_file(cfg.weights):
        load_matching(model, load_state_file(cfg.weights), f"model.weights={cfg.weights}", prefix="net.")
    return model


def build_yolo(cfg: DetectModel, num_classes: int) -> nn.Module:
    if cfg.backbone == "csp":
        if cfg.backbone_weights:
            raise UserError("model.backbone_weights: the csp backbone has no published weights; use "
                            "model.weights (a file) or a resnet backbone")
        backbone = CSPBackbone(cfg.width, cfg.depth)
    elif cfg.backbone in RESNETS:
        backbone = ResNetBackbone(cfg.backbone, _enum(RESNET_WEIGHTS[cfg.backbone], cfg.backbone_weights,
                                                      "model.backbone_weights"))
    else:
        raise UserError(f"model.backbone {cfg.backbone!r}: yolo takes csp, {', '.join(RESNETS)}")
    model = YoloDetector(num_classes, backbone, cfg.neck_width, cfg.depth, score_thresh=cfg.score_thresh,
                         nms_iou=cfg.nms_iou, max_detections=cfg.max_detections)
    if cfg.weights:
        if not _is_file(cfg.weights):
            raise UserError(f"model.weights for yolo must be a local file, got {cfg.weights!r}")
        load_matching(model, load_state_file(cfg.weights), f"model.weights={cfg.weights}")
    return model


MODELS = {"yolo": build_yolo, "fasterrcnn": build_fasterrcnn}


def build_detector(cfg: DetectModel, num_classes: int) -> nn.Module:
    """The detector the recipe names, with ``num_classes`` object classes."""
    return MODELS[cfg.arch](cfg, num_classes)


def load_model(run: Path, cfg) -> torch.nn.Module:
    """The run's detector with its trained weights, in eval mode (no pretrained download)."""
    arch = cfg.model.model_copy(update={"weights": None, "backbone_weights": None})
    model = build_detector(arch, len(read_json(run / "labels.json")))
    return load_weights(model, run / "model.safetensors").eval()


def runner_outputs(model: nn.Module, inputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
    """What the torch backend returns for a batch, as tensors: the YOLO-style detector's raw boxes
    and scores (before NMS, as its ONNX graph), or Faster R-CNN's detections packed into one
    ``[N, 7]`` tensor of ``(image index, x1, y1, x2, y2, score, label)`` rows."""
    if isinstance(model, YoloDetector):
        return model.raw(inputs["image"])
    rows = [torch.cat([torch.full_like(o["scores"][:, None], i), o["boxes"], o["scores"][:, None],
                       o["labels"][:, None].float()], 1) for i, o in enumerate(model(inputs["image"]))]
    return (torch.cat(rows) if rows else torch.zeros(0, 7),)
