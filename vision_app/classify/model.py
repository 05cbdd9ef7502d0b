"""Classifiers behind an explicit dict: torchvision ResNet-18/34/50 and VGG-11 (BN), and a compact
CNN for tiny images. ``build_classifier(cfg.model, n_classes)``; ``load_model(run, cfg)`` reads a
trained run back. Starting weights: :mod:`vision_app.common.models`.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torchvision.models as tvm
from torch import nn

from shared.checkpoint import load_weights
from shared.runs import read_json
from vision_app.common.models import initial_state, load_matching


def small_cnn(weights=None, num_classes: int = 10, width: int = 32) -> nn.Module:
    """A compact VGG-style CNN for tiny images (8–32 px): three conv stages of ``width``,
    2×, 4× channels (two 3×3 convs + BN each, max-pool between), global average pool, dropout,
    linear head. About 0.3 M parameters at width 32: far cheaper than a ResNet on digits."""
    def block(cin: int, cout: int) -> list[nn.Module]:
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

    c1, c2, c3 = width, width * 2, width * 4
    return nn.Sequential(
        *block(3, c1), *block(c1, c1), nn.MaxPool2d(2),
        *block(c1, c2), *block(c2, c2), nn.MaxPool2d(2),
        *block(c2, c3), *block(c3, c3),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(c3, num_classes),
    )


CLASSIFIERS = {"resnet18": tvm.resnet18, "resnet34": tvm.resnet34, "resnet50": tvm.resnet50, "vgg11": tvm.vgg11_bn,
               "smallcnn": small_cnn}


def build_classifier(cfg, n_classes: int) -> nn.Module:
    """A torchvision ResNet-18/34/50 or VGG-11 (BN), or :func:`small_cnn`, with an ``n_classes`` head.

    ``small_input`` swaps the ImageNet stem for one suited to tiny images: ResNet gets a 3×3
    stride-1 first conv and no max-pool (a 32 px input keeps 4×4 maps at the last stage instead of
    1×1); VGG pools globally and uses a single linear layer.
    """
    model = CLASSIFIERS[cfg.arch](weights=None, num_classes=n_classes)
    if cfg.arch.startswith("resnet"):
        if cfg.small_input:
            model.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
            model.maxpool = nn.Identity()
        if cfg.dropout > 0:
            model.fc = nn.Sequential(nn.Dropout(cfg.dropout), model.fc)
    elif cfg.arch == "vgg11" and cfg.small_input:
        model.avgpool = nn.AdaptiveAvgPool2d(1)
        model.classifier = nn.Sequential(nn.Flatten(), nn.Dropout(cfg.dropout), nn.Linear(512, n_classes))
    state = initial_state(cfg.weights, cfg.arch)
    if state is not None:
        load_matching(model, state, f"model.weights={cfg.weights}")
    return model


def load_model(run: Path, cfg) -> torch.nn.Module:
    """The run's trained classifier in eval mode (no starting weights are fetched)."""
    model = build_classifier(cfg.model.model_copy(update={"weights": "none"}), len(read_json(run / "labels.json")))
    return load_weights(model, run / "model.safetensors").eval()
