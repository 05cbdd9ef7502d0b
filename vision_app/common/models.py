"""Starting weights for every vision model: torchvision's ImageNet weights, or a local
``.safetensors`` / ``.pth`` state dict whose fitting tensors are loaded (tensors whose name or
shape does not fit, such as another data set's classifier head, are skipped and logged).

``none`` (random init) is every recipe's default: nothing is downloaded at run time. ``imagenet``
needs the network, or torch's hub cache already filled.
"""
from __future__ import annotations

import logging
from pathlib import Path

import torch
import torchvision.models as tvm
from torch import nn

from shared.errors import UserError

log = logging.getLogger(__name__)

IMAGENET_WEIGHTS = {
    "resnet18": tvm.ResNet18_Weights.IMAGENET1K_V1, "resnet34": tvm.ResNet34_Weights.IMAGENET1K_V1,
    "resnet50": tvm.ResNet50_Weights.IMAGENET1K_V2, "vgg11": tvm.VGG11_BN_Weights.IMAGENET1K_V1,
}


def imagenet_state(arch: str) -> dict[str, torch.Tensor]:
    """torchvision's ImageNet state dict for ``arch`` (a :class:`UserError` when it cannot be had)."""
    if arch not in IMAGENET_WEIGHTS:
        raise UserError(f"model.weights=imagenet: there are no ImageNet weights for {arch!r}")
    weights = IMAGENET_WEIGHTS[arch]
    try:
        return weights.get_state_dict(progress=False)
    except Exception as exc:  # noqa: BLE001 - no network, no cache, a broken download: one line for each
        raise UserError(f"could not fetch torchvision's {weights} ({type(exc).__name__}: {exc}); use "
                        "model.weights=none or a local file (model.weights=path/to/weights.safetensors)") from None


def load_state_file(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from a ``.safetensors`` file or a ``.pt``/``.pth`` (tensors only: no pickled code runs)."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise UserError(f"model.weights: file not found: {p}")
    if p.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(p))
    state = torch.load(p, map_location="cpu", weights_only=True)
    return state.get("model", state) if isinstance(state, dict) else state


def load_matching(model: nn.Module, state: dict[str, torch.Tensor], what: str, prefix: str = "") -> nn.Module:
    """Load the tensors of ``state`` that fit ``model`` by name and shape; log what was skipped.
    A name the model lacks is tried again with ``prefix`` in front (a wrapped model's inner net)."""
    own = model.state_dict()
    state = {(k if k in own else prefix + k): v for k, v in state.items()}
    fits = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not fits:
        raise UserError(f"{what}: no tensor fits this model (is it weights for another architecture?)")
    skipped = sorted(set(own) - set(fits))
    model.load_state_dict(fits, strict=False)
    log.info("%s: loaded %d tensors; %d left as they were (%s…)", what, len(fits), len(skipped), skipped[:3])
    return model


def initial_state(weights: str, arch: str) -> dict | None:
    """The state ``model.weights`` names: ``none`` → ``None``, ``imagenet``, or a local file."""
    if weights == "none":
        return None
    if weights == "imagenet":
        return imagenet_state(arch)
    return load_state_file(weights)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
