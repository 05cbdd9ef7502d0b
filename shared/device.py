"""Device and precision policy, and seeding: the one place that decides where and how math runs.

``device: auto`` picks CUDA, then Apple MPS, then the CPU, so every recipe runs on a laptop by
construction; an explicit ``cuda`` that is not there is a :class:`UserError`, never a silent
fallback. ``precision: auto`` picks bf16 on GPUs that have it, fp16 (with a loss scaler) on
older GPUs and fp32 elsewhere; :func:`autocast` and :func:`make_grad_scaler` are no-ops when the
precision is fp32, so the training loop has a single code path::

    device = resolve_device(cfg.device)
    precision = resolve_precision(cfg.precision, device)
    scaler = make_grad_scaler(device, precision)
    with autocast(device, precision):
        loss = model(x).loss
"""
from __future__ import annotations

import contextlib
import random

import numpy as np
import torch

from shared.errors import UserError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def resolve_device(name: str = "auto") -> torch.device:
    """Turn a config value (``auto``, ``cpu``, ``cuda``, ``cuda:1``, ``mps``) into a device.

    ``auto`` takes the best accelerator present. Asking for one that is absent raises
    :class:`UserError` rather than quietly training on the CPU for a week.
    """
    name = (name or "auto").strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"unknown device {name!r}: use auto, cpu, cuda, cuda:<index> or mps") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"device {name!r} requested but CUDA is not available here; use device=auto or cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UserError(
                f"device {name!r} requested but only {torch.cuda.device_count()} CUDA device(s) are visible"
            )
    elif device.type == "mps":
        if not _mps_available():
            raise UserError(f"device {name!r} requested but MPS is not available here; use device=auto or cpu")
    elif device.type != "cpu":
        raise UserError(f"unsupported device {name!r}: use auto, cpu, cuda, cuda:<index> or mps")
    return device


def _cuda_has_bf16(device: torch.device) -> bool:
    # Ampere (compute capability 8.x) and newer do bf16 natively; older cards only emulate it, slowly.
    major, _ = torch.cuda.get_device_capability(device)
    return major >= 8


def resolve_precision(precision: str, device: torch.device) -> str:
    """Pick ``fp32``, ``bf16`` or ``fp16`` for ``device`` from a config value (``auto`` or explicit).

    ``auto``: bf16 on CUDA GPUs that support it, fp16 on older CUDA GPUs, fp32 on CPU and MPS.
    An explicit choice the device cannot honour is a :class:`UserError`.
    """
    precision = (precision or "auto").strip().lower()
    if precision not in PRECISIONS:
        raise UserError(f"unknown precision {precision!r}: use one of {', '.join(PRECISIONS)}")
    device = torch.device(device)
    if precision == "auto":
        if device.type == "cuda":
            return "bf16" if _cuda_has_bf16(device) else "fp16"
        return "fp32"
    if precision == "fp16" and device.type != "cuda":
        raise UserError(f"precision fp16 needs a CUDA device (got {device.type}); use bf16 or fp32")
    if precision == "bf16" and device.type == "cuda" and not _cuda_has_bf16(device):
        raise UserError("this GPU has no native bf16; use precision=fp16 or auto")
    return precision


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """A ``torch.autocast`` context for bf16/fp16, or a do-nothing context for fp32."""
    if precision == "fp32":
        return contextlib.nullcontext()
    if precision not in _DTYPES:
        raise ValueError(f"precision must be resolved first (fp32, bf16 or fp16), got {precision!r}")
    return torch.autocast(device_type=torch.device(device).type, dtype=_DTYPES[precision])


def make_grad_scaler(device: torch.device, precision: str) -> torch.amp.GradScaler:
    """A loss scaler that is live only for fp16; otherwise a disabled one whose calls pass through."""
    device_type = torch.device(device).type
    enabled = precision == "fp16" and device_type == "cuda"
    return torch.amp.GradScaler(device_type if enabled else "cpu", enabled=enabled)


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy and torch (every CUDA device too)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device


def set_threads(n: int | None) -> None:
    """Cap torch's intra-op CPU threads (``None`` leaves torch's default).

    Useful on shared machines and under ``torchrun`` on CPU, where each process would otherwise
    grab every core.
    """
    if n is None:
        return
    if n < 1:
        raise UserError(f"threads must be at least 1, got {n}")
    torch.set_num_threads(n)
