"""A compact single-stage, anchor-free detector in the YOLO family, written to be read.

The picture, top to bottom:

1. **Backbone** turns a ``[B, 3, S, S]`` image into feature maps at strides 8, 16 and 32: a small
   CSP (cross-stage partial) network by default, or a torchvision ResNet.
2. **Neck**: a feature pyramid: a top-down pass (coarse, semantic features upsampled into the
   finer maps) then a bottom-up pass (fine, well-localised features pooled back into the coarse
   ones), giving three maps of ``neck_width`` channels.
3. **Head**, decoupled: per level, one branch predicts class logits and another the four
   distances (left, top, right, bottom) from each grid cell's centre to the box edges.
4. **Assignment** (training only): a cell is a positive for a ground-truth box when its centre lies
   inside the box, near the box centre (``center_radius`` strides), and the box's size suits the
   level; a box that got no cell takes the nearest stride-8 cell. Ties go to the smaller box.
5. **Loss**: sigmoid focal loss on the classes for every cell, and a complete-IoU loss
   (``torchvision.ops.complete_box_iou_loss``) on the positives' boxes.
6. **Inference**: class scores × decoded boxes, a score threshold, then per-class NMS
   (``torchvision.ops.batched_nms``). :meth:`YoloDetector.raw` stops before the NMS; it is what
   ONNX export traces, and :func:`postprocess` is the NMS both paths share.

The input is a batch of normalised float images (``vision_app.common.transforms.DetectionEval``),
square, with a side divisible by 32: the data pipeline letterboxes every image to that size.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
import torchvision
from torch import nn
from torchvision.ops import batched_nms, complete_box_iou_loss, sigmoid_focal_loss

STRIDES = (8, 16, 32)


def conv(cin: int, cout: int, k: int = 3, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, bias=False), nn.BatchNorm2d(cout), nn.SiLU())


class CSPBlock(nn.Module):
    """Half the channels go through ``n`` residual 3x3 pairs, half skip them; a 1x1 conv fuses both."""

    def __init__(self, cin: int, cout: int, n: int = 1):
        super().__init__()
        mid = cout // 2
        self.main, self.skip = conv(cin, mid, 1), conv(cin, mid, 1)
        self.blocks = nn.ModuleList(nn.Sequential(conv(mid, mid), conv(mid, mid)) for _ in range(n))
        self.fuse = conv(2 * mid, cout, 1)

    def forward(self, x):
        y = self.main(x)
        for block in self.blocks:
            y = y + block(y)
        return self.fuse(torch.cat([y, self.skip(x)], dim=1))


class CSPBackbone(nn.Module):
    """Stem (stride 2), then four stages of a stride-2 conv and a CSP block; returns strides 8/16/32."""

    def __init__(self, width: int = 16, depth: int = 1):
        super().__init__()
        w = [width, width * 2, width * 4, width * 8, width * 16]
        self.stem = conv(3, w[0], 3, 2)
        self.stages = nn.ModuleList(
            nn.Sequential(conv(w[i], w[i + 1], 3, 2), CSPBlock(w[i + 1], w[i + 1], depth)) for i in range(4)
        )
        self.out_channels = (w[2], w[3], w[4])

    def forward(self, x):
        x = self.stem(x)
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return feats[1:]  # strides 8, 16, 32


RESNETS = {"resnet18": torchvision.models.resnet18, "resnet34": torchvision.models.resnet34,
           "resnet50": torchvision.models.resnet50}


class ResNetBackbone(nn.Module):
    """A torchvision ResNet's ``layer2..layer4`` (strides 8/16/32); ``weights`` as torchvision takes them."""

    def __init__(self, name: str = "resnet18", weights=None):
        super().__init__()
        net = RESNETS[name](weights=weights)
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, net.layer1)
        self.layers = nn.ModuleList([net.layer2, net.layer3, net.layer4])
        self.out_channels = tuple(layer[-1].conv1.in_channels for layer in self.layers)

    def forward(self, x):
        x = self.stem(x)
        feats = []
        for layer in self.layers:
            x = layer(x)
            feats.append(x)
        return feats


class PyramidNeck(nn.Module):
    """Top-down then bottom-up fusion (FPN + PAN) of three maps into ``width`` channels each."""

    def __init__(self, in_channels: tuple[int, int, int], width: int, depth: int = 1):
        super().__init__()
        self.lateral = nn.ModuleList(conv(c, width, 1) for c in in_channels)
        self.top_down = nn.ModuleList(CSPBlock(2 * width, width, depth) for _ in range(2))
        self.down = nn.ModuleList(conv(width, width, 3, 2) for _ in range(2))
        self.bottom_up = nn.ModuleList(CSPBlock(2 * width, width, depth) for _ in range(2))

    def forward(self, feats):
        c3, c4, c5 = (lat(f) for lat, f in zip(self.lateral, feats))
        p5 = c5
        p4 = self.top_down[0](torch.cat([F.interpolate(p5, scale_factor=2.0, mode="nearest"), c4], 1))
        p3 = self.top_down[1](torch.cat([F.interpolate(p4, scale_factor=2.0, mode="nearest"), c3], 1))
        n4 = self.bottom_up[0](torch.cat([self.down[0](p3), p4], 1))
        n5 = self.bottom_up[1](torch.cat([self.down[1](n4), p5], 1))
        return [p3, n4, n5]


class DecoupledHead(nn.Module):
    """One level's head: separate conv towers for classification and box regression."""

    def __init__(self, width: int, num_classes: int, prior: float = 0.01):
        super().__init__()
        self.stem = conv(width, width, 1)
        self.cls_tower = nn.Sequential(conv(width, width), conv(width, width))
        self.reg_tower = nn.Sequential(conv(width, width), conv(width, width))
        self.cls_out = nn.Conv2d(width, num_classes, 1)
        self.reg_out = nn.Conv2d(width, 4, 1)
        # start every cell at "probably background", so the focal loss is not swamped at step 0
        nn.init.constant_(self.cls_out.bias, -math.log((1 - prior) / prior))
        nn.init.zeros_(self.reg_out.bias)

    def forward(self, x):
        x = self.stem(x)
        return self.cls_out(self.cls_tower(x)), self.reg_out(self.reg_tower(x))


def grid_points(sizes: list[tuple[int, int]], device) -> tuple[torch.Tensor, torch.Tensor]:
    """Cell centres ``[N, 2]`` (x, y in input pixels) and their strides ``[N]`` over all levels."""
    points, strides = [], []
    for (h, w), s in zip(sizes, STRIDES):
        ys, xs = torch.meshgrid(torch.arange(h, device=device), torch.arange(w, device=device), indexing="ij")
        points.append(torch.stack([xs, ys], -1).reshape(-1, 2).float().add(0.5).mul(s))
        strides.append(torch.full((h * w,), float(s), device=device))
    return torch.cat(points), torch.cat(strides)


def decode(points: torch.Tensor, strides: torch.Tensor, reg: torch.Tensor) -> torch.Tensor:
    """Distances (in strides, log-space) from cell centres → ``xyxy`` boxes."""
    ltrb = reg.clamp(max=8.0).exp() * strides[:, None]
    return torch.cat([points - ltrb[..., :2], points + ltrb[..., 2:]], dim=-1)


class YoloDetector(nn.Module):
    """Backbone → pyramid neck → decoupled heads. ``forward(images, targets)`` returns a loss dict
    in train mode and a list of ``{"boxes", "labels", "scores"}`` dicts in eval mode."""

    def __init__(self, num_classes: int, backbone: nn.Module, neck_width: int = 64, depth: int = 1,
                 center_radius: float = 2.5, box_weight: float = 2.0, score_thresh: float = 0.05,
                 nms_iou: float = 0.6, max_detections: int = 100):
        super().__init__()
        self.num_classes = num_classes
        self.backbone = backbone
        self.neck = PyramidNeck(backbone.out_channels, neck_width, depth)
        self.heads = nn.ModuleList(DecoupledHead(neck_width, num_classes) for _ in STRIDES)
        self.center_radius, self.box_weight = center_radius, box_weight
        self.score_thresh, self.nms_iou, self.max_detections = score_thresh, nms_iou, max_detections

    def _predict(self, images: torch.Tensor):
        feats = self.neck(self.backbone(images))
        logits, regs, sizes = [], [], []
        for head, f in zip(self.heads, feats):
            cls, reg = head(f)
            sizes.append(tuple(f.shape[-2:]))
            logits.append(cls.flatten(2).transpose(1, 2))  # [B, HW, C]
            regs.append(reg.flatten(2).transpose(1, 2))  # [B, HW, 4]
        points, strides = grid_points(sizes, images.device)
        return torch.cat(logits, 1), torch.cat(regs, 1), points, strides

    def raw(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Decoded boxes ``[B, N, 4]`` and class scores ``[B, N, C]``, before NMS (the ONNX graph)."""
        logits, regs, points, strides = self._predict(images)
        return decode(points, strides, regs), logits.sigmoid()

    def forward(self, images, targets: list[dict] | None = None):
        if isinstance(images, (list, tuple)):
            images = torch.stack(list(images))
        if self.training:
            if targets is None:
                raise ValueError("targets are required in train mode")
            return self.loss(*self._predict(images), targets)
        boxes, scores = self.raw(images)
        return postprocess(boxes, scores, self.score_thresh, self.nms_iou, self.max_detections)

    def loss(self, logits, regs, points, strides, targets) -> dict[str, torch.Tensor]:
        cls_target = torch.zeros_like(logits)
        pred_boxes, true_boxes = [], []
        for i, t in enumerate(targets):
            pos, gt_idx = self.assign(points, strides, t["boxes"])
            cls_target[i, pos, t["labels"][gt_idx]] = 1.0
            pred_boxes.append(decode(points[pos], strides[pos], regs[i, pos]))
            true_boxes.append(t["boxes"][gt_idx])
        num_pos = max(sum(len(b) for b in pred_boxes), 1)
        loss_cls = sigmoid_focal_loss(logits, cls_target, reduction="sum") / num_pos
        pred, true = torch.cat(pred_boxes), torch.cat(true_boxes)
        loss_box = complete_box_iou_loss(pred, true, reduction="sum") / num_pos if len(pred) else regs.sum() * 0
        return {"loss_cls": loss_cls, "loss_box": self.box_weight * loss_box}

    @torch.no_grad()
    def assign(self, points, strides, boxes) -> tuple[torch.Tensor, torch.Tensor]:
        """Indices of the positive cells and, for each, the index of its ground-truth box."""
        if len(boxes) == 0:
            empty = torch.zeros(0, dtype=torch.long, device=points.device)
            return empty, empty
        px, py = points[:, 0:1], points[:, 1:2]  # [N, 1]
        x1, y1, x2, y2 = boxes.unbind(-1)  # [M]
        ltrb = torch.stack([px - x1, py - y1, x2 - px, y2 - py], -1)  # [N, M, 4]
        inside = ltrb.min(-1).values > 0
        radius = self.center_radius * strides[:, None]
        near_center = ((px - (x1 + x2) / 2).abs() < radius) & ((py - (y1 + y2) / 2).abs() < radius)
        # the level suits the box when its largest centre-to-edge distance is in (4s, 8s]; ends open
        reach = ltrb.max(-1).values
        lo = torch.where(strides == STRIDES[0], 0.0, strides * 4)[:, None]
        hi = torch.where(strides == STRIDES[-1], float("inf"), strides * 8)[:, None]
        ok = inside & near_center & (reach > lo) & (reach <= hi)
        area = ((x2 - x1) * (y2 - y1))[None].expand_as(ok)
        cost = torch.where(ok, area, torch.full_like(area, float("inf")))
        # a box too small to contain any cell centre still gets the nearest stride-8 cell
        orphans = ~ok.any(0)
        if orphans.any():
            fine = (strides == STRIDES[0]).nonzero().squeeze(1)
            centres = torch.stack([(x1 + x2) / 2, (y1 + y2) / 2], -1)[orphans]
            nearest = fine[torch.cdist(centres, points[fine]).argmin(1)]
            cost[nearest, orphans.nonzero().squeeze(1)] = 0.0
        best, gt_idx = cost.min(1)
        pos = torch.isfinite(best).nonzero().squeeze(1)
        return pos, gt_idx[pos]


def postprocess(boxes: torch.Tensor, scores: torch.Tensor, score_thresh: float = 0.05, nms_iou: float = 0.6,
                max_detections: int = 100, pre_nms: int = 1000) -> list[dict[str, torch.Tensor]]:
    """Per image: keep (cell, class) pairs over ``score_thresh``, the top ``pre_nms``, per-class NMS."""
    out = []
    num_classes = scores.shape[-1]
    for b, s in zip(boxes, scores):
        flat = s.flatten()
        keep = (flat > score_thresh).nonzero().squeeze(1)
        if len(keep) > pre_nms:
            keep = keep[flat[keep].topk(pre_nms).indices]
        cell, label = keep // num_classes, keep % num_classes
        kept_boxes, kept_scores = b[cell], flat[keep]
        final = batched_nms(kept_boxes, kept_scores, label, nms_iou)[:max_detections]
        out.append({"boxes": kept_boxes[final], "labels": label[final], "scores": kept_scores[final]})
    return out
