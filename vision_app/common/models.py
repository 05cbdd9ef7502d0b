"""Model builders: torchvision classifiers and our compact U-Net, behind explicit dicts.

``build_classifier(cfg.model, n_classes)`` and ``build_segmenter(cfg.model, n_classes)``.
Weights: ``none`` (random init, the default: nothing is downloaded at run time), ``imagenet``
(torchvision's pretrained weights: needs the network, or torch's hub cache already filled), or a
path to a local ``.safetensors`` / ``.pth`` state dict (tensors whose shapes do not fit, such as
another data set's classifier head, are skipped and logged).
"""
from __future__ import annotations

import logging
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision.models as tvm
from torch import nn

from shared.errors import UserError

log = logging.getLogger(__name__)

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
IMAGENET_WEIGHTS = {
    "resnet18": tvm.ResNet18_Weights.IMAGENET1K_V1, "resnet34": tvm.ResNet34_Weights.IMAGENET1K_V1,
    "resnet50": tvm.ResNet50_Weights.IMAGENET1K_V2, "vgg11": tvm.VGG11_BN_Weights.IMAGENET1K_V1,
}


def _imagenet(arch: str):
    if arch not in IMAGENET_WEIGHTS:
        raise UserError(f"model.weights=imagenet: there are no ImageNet weights for {arch!r}")
    weights = IMAGENET_WEIGHTS[arch]
    try:
        return weights.get_state_dict(progress=False)
    except Exception as exc:  # no network, no cache
        raise UserError(f"could not fetch torchvision's {weights} ({type(exc).__name__}: {exc}); use "
                        "model.weights=none or a local file (model.weights=path/to/weights.safetensors)") from None


def load_state_file(path: str) -> dict[str, torch.Tensor]:
    p = Path(path)
    if not p.exists():
        raise UserError(f"model.weights file not found: {p}")
    if p.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(p))
    state = torch.load(p, map_location="cpu", weights_only=True)  # no pickled code runs
    return state.get("model", state) if isinstance(state, dict) else state


def load_matching(model: nn.Module, state: dict[str, torch.Tensor], what: str) -> nn.Module:
    """Load the tensors of ``state`` that fit ``model`` by name and shape; log what was skipped."""
    own = model.state_dict()
    fits = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not fits:
        raise UserError(f"{what}: no tensor fits this model (is it weights for another architecture?)")
    skipped = sorted(set(own) - set(fits))
    model.load_state_dict(fits, strict=False)
    log.info("%s: loaded %d tensors; %d left at random init (%s…)", what, len(fits), len(skipped), skipped[:3])
    return model


def _initial_state(weights: str, arch: str) -> dict | None:
    if weights == "none":
        return None
    if weights == "imagenet":
        return _imagenet(arch)
    return load_state_file(weights)


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
    state = _initial_state(cfg.weights, cfg.arch)
    if state is not None:
        load_matching(model, state, f"model.weights={cfg.weights}")
    return model


# ---------------------------------------------------------------- U-Net
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
        state = _initial_state(weights, "resnet18")
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
    if cfg.weights != "none":
        load_matching(model := UNet(n_classes, cfg.depth, cfg.width), load_state_file(cfg.weights), cfg.weights)
        return model
    return UNet(n_classes, cfg.depth, cfg.width)


SEGMENTERS = {
    "unet": _unet,
    "unet_resnet18": lambda cfg, n: ResNetUNet(n, cfg.width, cfg.weights),
}


def build_segmenter(cfg, n_classes: int) -> nn.Module:
    return SEGMENTERS[cfg.arch](cfg, n_classes)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
