"""Segmenters behind an explicit dict: a compact U-Net, and a U-Net decoder on a ResNet-18 encoder
(for when ImageNet weights are at hand). ``build_segmenter(cfg.model, n_classes)``;
``load_model(run, cfg)`` reads a trained run back. Starting weights: :mod:`vision_app.common.models`.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision.models as tvm
from torch import nn

from shared.checkpoint import load_weights
from shared.runs import read_json
from vision_app.common.models import initial_state, load_matching, load_state_file


def _double_conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
    )


class Up(nn.Module):
    """Upsample ×2 (bilinear), concatenate the skip, two 3×3 convs."""

    def __init__(self, cin: int, cskip: int, cout: int):
        super().__init__()
        self.conv = _double_conv(cin + cskip, cout)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.conv(torch.cat([x, skip], dim=1))


class UNet(nn.Module):
    """Ronneberger et al.'s U-Net, compact: ``depth`` down-sampling steps, ``width`` channels at
    full resolution, doubling per step (capped at 16 × width). Any input size works (the decoder
    resizes to each skip), and the output has the input's height and width."""

    def __init__(self, n_classes: int, depth: int = 4, width: int = 32, in_channels: int = 3):
        super().__init__()
        chans = [min(width * 2 ** i, width * 16) for i in range(depth + 1)]
        self.stem = _double_conv(in_channels, chans[0])
        self.down = nn.ModuleList(nn.Sequential(nn.MaxPool2d(2), _double_conv(chans[i], chans[i + 1]))
                                  for i in range(depth))
        self.up = nn.ModuleList(Up(chans[i + 1], chans[i], chans[i]) for i in reversed(range(depth)))
        self.head = nn.Conv2d(chans[0], n_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = [self.stem(x)]
        for down in self.down:
            skips.append(down(skips[-1]))
        y = skips.pop()
        for up in self.up:
            y = up(y, skips.pop())
        return self.head(y)


class ResNetUNet(nn.Module):
    """A U-Net decoder on a torchvision ResNet-18 encoder (strides 2…32), for when ImageNet
    weights are at hand; a full-resolution skip from two plain convs keeps edges sharp."""

    def __init__(self, n_classes: int, width: int = 32, weights: str = "none"):
        super().__init__()
        enc = tvm.resnet18(weights=None)
        state = initial_state(weights, "resnet18")
        if state is not None:
            load_matching(enc, state, f"model.weights={weights}")
        self.full = _double_conv(3, width)
        self.layer0 = nn.Sequential(enc.conv1, enc.bn1, enc.relu)  # /2, 64
        self.layer1 = nn.Sequential(enc.maxpool, enc.layer1)  # /4, 64
        self.layer2, self.layer3, self.layer4 = enc.layer2, enc.layer3, enc.layer4  # /8 128, /16 256, /32 512
        self.up = nn.ModuleList([Up(512, 256, 256), Up(256, 128, 128), Up(128, 64, 64), Up(64, 64, 64),
                                 Up(64, width, width)])
        self.head = nn.Conv2d(width, n_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s0 = self.full(x)
        s1 = self.layer0(x)
        s2 = self.layer1(s1)
        s3 = self.layer2(s2)
        s4 = self.layer3(s3)
        y = self.layer4(s4)
        for up, skip in zip(self.up, (s4, s3, s2, s1, s0)):
            y = up(y, skip)
        return self.head(y)


def _unet(cfg, n_classes: int) -> nn.Module:
    model = UNet(n_classes, cfg.depth, cfg.width)
    if cfg.weights != "none":
        load_matching(model, load_state_file(cfg.weights), cfg.weights)
    return model


SEGMENTERS = {
    "unet": _unet,
    "unet_resnet18": lambda cfg, n: ResNetUNet(n, cfg.width, cfg.weights),
}


def build_segmenter(cfg, n_classes: int) -> nn.Module:
    """The segmenter ``cfg.arch`` names, with ``n_classes`` output channels (background included)."""
    return SEGMENTERS[cfg.arch](cfg, n_classes)


def load_model(run: Path, cfg) -> torch.nn.Module:
    """The run's trained segmenter in eval mode (no starting weights are fetched)."""
    model = build_segmenter(cfg.model.model_copy(update={"weights": "none"}), len(read_json(run / "labels.json")))
    return load_weights(model, run / "model.safetensors").eval()
