"""Checkpoints (to resume training) and model weights (to use a trained model).

Two formats, two jobs:

* ``checkpoints/last.pt`` / ``checkpoints/best.pt``: everything needed to resume: the unwrapped
  model's ``state_dict``, optimizer, scheduler, loss scaler, counters, RNG states, the loop
  config and the app's ``extra_state``. Plain data and tensors only, so they load with
  ``torch.load(weights_only=True)``: no pickled code runs when a checkpoint is read.
* ``model.safetensors``: just the weights, in the safe format apps and the server load with
  :func:`load_weights`.

Every file is written to a temporary name and renamed into place (:func:`shared.runs.atomic_path`),
so a crash mid-save never destroys the previous good file.
"""
from __future__ import annotations

import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.torch
import torch

from shared.errors import UserError
from shared.runs import atomic_path


def unwrap_model(model: torch.nn.Module) -> torch.nn.Module:
    """The user's module inside any DDP (``.module``) and ``torch.compile`` (``._orig_mod``) wrappers."""
    while True:
        if isinstance(model, torch.nn.parallel.DistributedDataParallel):
            model = model.module
        elif hasattr(model, "_orig_mod") and isinstance(model._orig_mod, torch.nn.Module):
            model = model._orig_mod
        else:
            return model


def rng_state() -> dict:
    """The Python, NumPy and torch (CPU + CUDA) RNG states, as checkpoint-safe plain data."""
    np_state = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": (np_state[0], np_state[1].tolist(), *np_state[2:]),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict) -> None:
    """Undo :func:`rng_state`; CUDA states are restored only onto the same number of GPUs."""
    random.setstate(state["python"])
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), *rest))
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda")
    if cuda is not None and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Atomically ``torch.save`` a checkpoint dict to ``path``."""
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return path


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` onto the CPU, without running pickled code."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, OSError, EOFError, ValueError) as exc:  # truncated or foreign: name it, say what to do
        raise UserError(f"cannot read checkpoint {path}: {exc}; delete it to start over") from None


def link_or_copy(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Make ``dst`` hold the same bytes as ``src``: a hard link when possible (no second copy on
    disk; safe because files here are only ever replaced by rename, never written in place)."""
    dst = Path(dst)
    with atomic_path(dst) as tmp:
        tmp.unlink()
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)
    return dst


def save_weights(model: torch.nn.Module, path: str | os.PathLike) -> Path:
    """Atomically write the (unwrapped) model's weights to a ``.safetensors`` file.

    ``safetensors.torch.save_model`` keeps one copy of tied weights (e.g. BERT's embeddings and
    MLM decoder), which plain ``save_file`` refuses.
    """
    path = Path(path)
    with atomic_path(path) as tmp:
        safetensors.torch.save_model(unwrap_model(model), str(tmp))
    return path


def load_weights(model: torch.nn.Module, path: str | os.PathLike, strict: bool = True) -> torch.nn.Module:
    """Load a ``.safetensors`` file written by :func:`save_weights` into ``model`` (in place; returned).

    Tensors land on the device the model's parameters are on. A file that does not fit the model
    is a :class:`UserError` naming the missing and unexpected keys.
    """
    path = Path(path)
    if not path.exists():
        raise UserError(f"model weights not found: {path}")
    target = unwrap_model(model)
    first = next(iter(target.parameters()), None)
    device = "cpu" if first is None else str(first.device)
    try:
        missing, unexpected = safetensors.torch.load_model(target, str(path), strict=False, device=device)
    except RuntimeError as exc:  # shape mismatches
        raise UserError(f"{path} does not fit this model: {exc}".replace("\n", " ")) from None
    except safetensors.SafetensorError as exc:  # a truncated or foreign file: name it, say what to do
        raise UserError(f"cannot read model weights {path} ({exc}); the file is damaged: "
                        "train again or restore it") from None
    if strict and (missing or unexpected):
        raise UserError(
            f"{path} does not fit this model: missing keys {sorted(missing)[:10]}, "
            f"unexpected keys {sorted(unexpected)[:10]}"
        )
    return model


def training_state(
    model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any, scaler: torch.amp.GradScaler,
    loop: dict, config: dict, extra: dict,
) -> dict[str, Any]:
    """Everything a resumed run needs, as one checkpoint dict (the model unwrapped)."""
    return {
        "model": unwrap_model(model).state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict(),
        "loop": loop,
        "rng": rng_state(),
        "config": config,
        "extra": extra,
    }


def restore_training_state(
    ckpt: dict[str, Any], model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any,
    scaler: torch.amp.GradScaler, *, restore_rng: bool = True, source: str = "checkpoint",
) -> dict:
    """Load a :func:`training_state` dict into live objects; return its ``loop`` counters."""
    try:
        unwrap_model(model).load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
    except (RuntimeError, ValueError, KeyError) as exc:
        raise UserError(f"{source} does not match this model/optimizer ({str(exc).splitlines()[0]}); "
                        "use a new output directory or resume=False") from None
    scheduler.load_state_dict(ckpt["scheduler"])
    if ckpt["scaler"] and scaler.is_enabled():  # a disabled scaler's state is empty
        scaler.load_state_dict(ckpt["scaler"])
    if restore_rng:
        restore_rng_state(ckpt["rng"])
    return ckpt["loop"]
