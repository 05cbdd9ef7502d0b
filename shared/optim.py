"""Optimizers and learning-rate schedules for the training loop (``train.optimizer``, ``train.schedule``).

The schedule is a multiplier on each parameter group's own LR, per optimizer step: a linear
warmup from near 0, then linear or cosine decay to 0 at the last step, or constant.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch.optim.lr_scheduler import LambdaLR


def default_param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Two groups of trainable parameters: matrices (decayed) and 1-D ones (not decayed).

    Biases and norm scales are not weights to shrink towards zero.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    return [g for g in groups if g["params"]]


def build_optimizer(
    groups: list[dict[str, Any]], name: str, lr: float, weight_decay: float = 0.0, momentum: float = 0.9,
    device: torch.device | None = None,
) -> torch.optim.Optimizer:
    """``adamw`` or ``sgd`` (with momentum) over parameter groups; a group's own keys win."""
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if name == "adamw":
        fused = device is not None and device.type == "cuda"  # one kernel for all params: faster on GPUs
        return torch.optim.AdamW(groups, lr=lr, weight_decay=weight_decay, fused=fused)
    raise ValueError(f"unknown optimizer {name!r}: use adamw or sgd")


def lr_factor(schedule: str, warmup_steps: int, total_steps: int) -> Callable[[int], float]:
    """The LR multiplier for optimizer step ``step`` (0-based)."""
    if schedule not in ("linear", "cosine", "constant"):
        raise ValueError(f"unknown schedule {schedule!r}: use linear, cosine or constant")

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / (warmup_steps + 1)  # never exactly 0: the first step already learns
        if schedule == "constant":
            return 1.0
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        if schedule == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * progress))
        return 1.0 - progress

    return factor


def build_scheduler(optimizer: torch.optim.Optimizer, schedule: str, warmup_steps: int, total_steps: int) -> LambdaLR:
    """A per-step ``LambdaLR`` following :func:`lr_factor`; call ``.step()`` after every optimizer step."""
    return LambdaLR(optimizer, lr_factor(schedule, warmup_steps, total_steps))
