"""What the classification and segmentation ``train`` stages share: fitting a model on the
manifest's splits with :func:`shared.training.fit` (which resumes from ``run/checkpoints`` when the
run was begun before), scoring the test split on rank 0, and the task's lines of the model card.

The run itself is begun and ended by the CLI (:func:`shared.runs.start_run` / ``finish_run``): a
stage writes its files into ``run`` and returns its metrics, nothing more.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import torch

from shared import distributed as dist
from shared.config import to_dict
from shared.inference import Runner, build_runner
from shared.runs import write_json
from shared.training import fit
from vision_app.common.data import ImageDataset
from vision_app.common.models import count_parameters


def fit_on_splits(cfg, run: Path, manifest: dict, model: torch.nn.Module, task, train_preset, eval_preset) -> dict:
    """Fit ``model`` on the train split (best by ``train.monitor`` on valid, when there is one);
    ``labels.json`` goes into the run beside the weights. Returns the ``train/`` and ``valid/`` metrics."""
    if dist.is_main_process():
        write_json(run / "labels.json", manifest["classes"])
    splits, limits = manifest["splits"], cfg.data.limits()
    valid = ImageDataset(splits["valid"], eval_preset, limits) if splits["valid"] else None
    t0 = time.perf_counter()
    result = fit(model, task, ImageDataset(splits["train"], train_preset, limits), valid, cfg.train, run,
                 extra_state={"config": to_dict(cfg)})
    return {"train/wall_seconds": time.perf_counter() - t0, "train/samples_per_second": result.samples_per_second,
            "train/steps": float(result.steps), **{f"valid/{k}": v for k, v in result.best_metrics.items()}}


def reference_runner(cfg, run: Path, model: torch.nn.Module) -> Runner:
    """The trained model in memory, eager fp32 on the training device: what ``train`` scores the test
    split with (the served backends are scored by ``evaluate serve.backend=…``)."""
    return build_runner(run, "torch", lambda: model, None, device=cfg.train.device)


def on_rank0(score: Callable[[], dict]) -> dict:
    """``score()`` on rank 0 only (it writes plots into the run); every rank waits for it."""
    out = score() if dist.is_main_process() else {}
    dist.barrier()
    return out


def card_notes(cfg, model: torch.nn.Module, what: str) -> str:
    """The task's section of the model card (``finish_run`` writes the card)."""
    return (f"\n## {what}\n- model `{cfg.model.arch}`, {count_parameters(model):,} parameters, starting weights "
            f"`{cfg.model.weights}`\n- input {cfg.augment.size}×{cfg.augment.size}; classes in `labels.json` "
            "(index order); weights `model.safetensors`\n")
