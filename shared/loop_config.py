"""The ``train:`` section of every torch recipe, kept apart from :mod:`shared.training` so that
loading a config does not import torch (the tabular CLI and servers start without it)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from shared.config import StrictModel


class LoopConfig(StrictModel):
    """The ``train:`` section every torch recipe shares (the same keys in every YAML)."""

    device: str = "auto"  # auto | cpu | cuda | cuda:<i> | mps
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    seed: int = 0
    epochs: int = Field(1, ge=1)
    max_steps: int | None = Field(None, ge=1)  # cap on optimizer steps; None: epochs decide
    batch_size: int = Field(32, ge=1)  # per process and micro-batch
    eval_batch_size: int | None = Field(None, ge=1)  # None: batch_size
    drop_last: bool = False  # drop a short last training batch (BatchNorm fails on a batch of 1)
    num_workers: int = Field(0, ge=0)
    optimizer: Literal["adamw", "sgd"] = "adamw"
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)  # not applied to biases and norm scales
    momentum: float = Field(0.9, ge=0)  # sgd only
    schedule: Literal["linear", "cosine", "constant"] = "linear"
    warmup_steps: int | None = Field(None, ge=0)  # set this or warmup_ratio, not both
    warmup_ratio: float = Field(0.0, ge=0, le=1)
    grad_accum_steps: int = Field(1, ge=1)
    clip_grad_norm: float | None = Field(None, gt=0)
    monitor: str | None = None  # a key of task.evaluate's dict, e.g. "accuracy"
    monitor_mode: Literal["max", "min"] = "max"
    early_stopping_patience: int | None = Field(None, ge=1)  # evaluations without improvement
    eval_every_steps: int | None = Field(None, ge=1)  # None: at the end of each epoch
    checkpoint_every_steps: int | None = Field(None, ge=1)  # also at every evaluation and epoch end
    log_every_steps: int = Field(50, ge=1)
    max_nonfinite_steps: int = Field(10, ge=1)  # consecutive skipped updates before giving up
    compile: bool = False
    channels_last: bool = False
    ddp_find_unused_parameters: bool = False
    progress: bool = True

    @model_validator(mode="after")
    def _consistent(self) -> LoopConfig:
        if self.warmup_steps is not None and self.warmup_ratio > 0:
            raise ValueError("set warmup_steps or warmup_ratio, not both")
        if self.early_stopping_patience is not None and self.monitor is None:
            raise ValueError("early_stopping_patience needs monitor (the validation metric to watch)")
        return self
