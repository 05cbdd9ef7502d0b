"""The one training loop for every torch model in the repo.

An app supplies a *task* (the loss of a batch; metrics on the validation set) and map-style
datasets; :func:`fit` owns the rest: data loaders, device placement, mixed precision, gradient
accumulation and clipping, LR warmup and decay, evaluation, early stopping, checkpoint/resume,
a non-finite-loss guard, the progress bar, ``history.jsonl`` and DDP::

    class SentimentTask:
        def loss(self, model, batch):            # batch is already on the device
            return model(**batch).loss

        def evaluate(self, model, loader):       # eval mode, no_grad, autocast; this rank's shard
            preds, labels = [], []
            for batch in loader:
                preds.append(model(**batch).logits.argmax(-1))
                labels.append(batch["labels"])
            preds, labels = gather_cat(torch.cat(preds)), gather_cat(torch.cat(labels))
            return {"accuracy": (preds == labels).float().mean().item()}

    result = fit(model, SentimentTask(), train_ds, valid_ds, cfg.train, run_dir, collate_fn=pad)

``out_dir`` then holds ``history.jsonl``, ``model.safetensors`` (best weights by ``cfg.monitor``,
else the last; read them back with :func:`shared.checkpoint.load_weights`) and
``checkpoints/{last,best}.pt``. Calling ``fit`` again on the same ``out_dir`` resumes from
``last.pt``. On return the model holds the weights that are in ``model.safetensors``.

Several processes, same code: ``torchrun --nproc_per_node=4 -m nlp_app train --config …``.
``fit`` joins the process group (NCCL on GPUs, Gloo on CPU), shards both data sets, wraps the
model in DDP and leaves logging and files to rank 0.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import Dataset, Sampler
from tqdm.auto import tqdm

from shared import distributed as dist
from shared.batching import default_batch_size, make_eval_loader, make_train_loader, move_to_device
from shared.checkpoint import (
    link_or_copy,
    load_checkpoint,
    load_weights,
    restore_training_state,
    save_checkpoint,
    save_weights,
    training_state,
)
from shared.device import autocast, make_grad_scaler, resolve_device, resolve_precision, seed_everything
from shared.errors import UserError
from shared.loop_config import LoopConfig
from shared.optim import build_optimizer, build_scheduler, default_param_groups
from shared.runs import append_jsonl, write_text

logger = logging.getLogger(__name__)


class Task(Protocol):
    """What an app hands to :func:`fit`: two required methods, two optional ones.

    ``loss(model, batch) -> Tensor``: the scalar training loss. ``batch`` is the collated batch
    already on the device. Call the model as ``model(...)``: it may be wrapped by DDP or
    ``torch.compile`` (``shared.checkpoint.unwrap_model`` reaches the module's attributes).

    ``evaluate(model, loader) -> dict[str, float]``: validation metrics. The model is in eval mode
    under ``no_grad`` and autocast (on a GPU outputs may be bf16/fp16: ``.float()`` them before
    NumPy). ``loader`` yields device batches of this rank's contiguous shard (``loader.indices``);
    combine results with ``shared.distributed.gather_cat`` / ``gather_list`` once, after the loop;
    they come back in dataset order.

    Optional: ``batch_size_of(batch) -> int`` (for samples/s; default
    :func:`shared.batching.default_batch_size`) and ``param_groups(model) -> list[dict]``
    (optimizer groups, e.g. a smaller ``lr`` for a backbone; default: decay on matrices only).
    """

    def loss(self, model: torch.nn.Module, batch: Any) -> torch.Tensor: ...

    def evaluate(self, model: torch.nn.Module, loader: Any) -> dict[str, float]: ...


class NonFiniteLossError(UserError):
    """The loss was NaN/inf for ``max_nonfinite_steps`` updates in a row."""


@dataclasses.dataclass
class FitResult:
    """What :func:`fit` did. Metric dicts hold ``task.evaluate``'s keys, unprefixed."""

    steps: int
    epochs_completed: int
    stopped_early: bool
    best_metric: float | None
    best_step: int | None
    best_metrics: dict[str, float]
    last_metrics: dict[str, float]
    skipped_steps: int
    train_seconds: float  # time in training steps, without evaluation and saving
    samples_per_second: float
    history_path: Path
    weights_path: Path
    best_checkpoint: Path | None
    last_checkpoint: Path


@dataclasses.dataclass
class LoopState:
    """The counters a checkpoint carries, so that a resumed run continues where it stopped."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    best_metric: float | None = None
    best_step: int | None = None
    best_metrics: dict = dataclasses.field(default_factory=dict)
    last_metrics: dict = dataclasses.field(default_factory=dict)
    bad_evals: int = 0
    stopped_early: bool = False
    skipped_steps: int = 0
    train_seconds: float = 0.0
    samples: int = 0

    def improves(self, value: float, mode: str) -> bool:
        if math.isnan(value):
            return False
        if self.best_metric is None:
            return True
        return value > self.best_metric if mode == "max" else value < self.best_metric


def run_evaluation(model: torch.nn.Module, task: Any, loader: Any, device: torch.device, precision: str) -> dict:
    """``task.evaluate`` in eval mode under ``no_grad`` and autocast; rank 0's answer on every rank."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), autocast(device, precision):
            metrics = {k: float(v) for k, v in dict(task.evaluate(model, loader)).items()}
    finally:
        model.train(was_training)
    # The same dict everywhere, so early-stopping and best-checkpoint decisions agree across ranks.
    return dist.broadcast_object(metrics)


def evaluate_model(
    model: torch.nn.Module, task: Any, data: Dataset, cfg: LoopConfig, collate_fn: Callable | None = None,
) -> dict[str, float]:
    """Score ``model`` on ``data`` exactly as :func:`fit` validates: same device, precision,
    batching and sharding (for an app's ``evaluate`` stage). Moves the model to the device."""
    device, owns_group = dist.setup_distributed(resolve_device(cfg.device))
    try:
        precision = resolve_precision(cfg.precision, device)
        model.to(device)
        loader = make_eval_loader(data, cfg.eval_batch_size or cfg.batch_size, device, collate_fn=collate_fn,
                                  num_workers=cfg.num_workers, channels_last=cfg.channels_last)
        return run_evaluation(model, task, loader, device, precision)
    finally:
        if owns_group:
            dist.teardown_distributed()


def fit(
    model: torch.nn.Module,
    task: Task,
    train_data: Dataset,
    valid_data: Dataset | None,
    cfg: LoopConfig,
    out_dir: str | Path,
    *,
    collate_fn: Callable | None = None,
    train_batch_sampler: Sampler[list[int]] | None = None,
    resume: bool = True,
    extra_state: dict | None = None,
) -> FitResult:
    """Train ``model`` on ``train_data`` (map-style datasets; ``fit`` builds the loaders).

    ``collate_fn`` turns a list of examples into a batch (dynamic padding lives there).
    ``train_batch_sampler`` replaces the default shuffled batches (it must have ``__len__``, and
    ``set_epoch`` if it shuffles; under DDP it must give each rank its own shard, the same number of
    batches each: see :class:`shared.batching.LengthGroupedBatchSampler`). ``resume``: continue from
    ``out_dir/checkpoints/last.pt`` if it exists; otherwise start over. ``extra_state``: plain
    data (str/int/float/list/dict/tensors) stored in every checkpoint, e.g. the app's full config.
    """
    device, owns_group = dist.setup_distributed(resolve_device(cfg.device))
    try:
        return _fit(model, task, train_data, valid_data, cfg, Path(out_dir), device, collate_fn,
                    train_batch_sampler, resume, extra_state or {})
    finally:
        if owns_group:
            dist.teardown_distributed()


def _fit(model, task, train_data, valid_data, cfg, out_dir, device, collate_fn, batch_sampler, resume, extra):
    precision = resolve_precision(cfg.precision, device)
    rank, world = dist.get_rank(), dist.get_world_size()
    main = rank == 0
    history, weights = out_dir / "history.jsonl", out_dir / "model.safetensors"
    last_ckpt, best_ckpt = out_dir / "checkpoints" / "last.pt", out_dir / "checkpoints" / "best.pt"
    if main:
        out_dir.mkdir(parents=True, exist_ok=True)

    model.to(device)
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    train_loader = make_train_loader(
        train_data, cfg.batch_size, device, seed=cfg.seed, drop_last=cfg.drop_last, collate_fn=collate_fn,
        num_workers=cfg.num_workers, batch_sampler=batch_sampler,
    )
    valid_loader = None if valid_data is None else make_eval_loader(
        valid_data, cfg.eval_batch_size or cfg.batch_size, device, collate_fn=collate_fn,
        num_workers=cfg.num_workers, channels_last=cfg.channels_last,
    )
    n_batches = len(train_loader.batch_sampler)
    if n_batches == 0:
        raise UserError(f"no training batches: {len(train_data)} examples, batch_size={cfg.batch_size}, "
                        f"drop_last={cfg.drop_last}")
    accum = cfg.grad_accum_steps
    steps_per_epoch = math.ceil(n_batches / accum)
    total = steps_per_epoch * cfg.epochs if cfg.max_steps is None else min(cfg.max_steps, steps_per_epoch * cfg.epochs)
    warmup = cfg.warmup_steps if cfg.warmup_steps is not None else math.ceil(cfg.warmup_ratio * total)

    groups = task.param_groups(model) if hasattr(task, "param_groups") else default_param_groups(model, cfg.weight_decay)
    optimizer = build_optimizer(groups, cfg.optimizer, cfg.lr, cfg.weight_decay, cfg.momentum, device)
    scheduler = build_scheduler(optimizer, cfg.schedule, warmup, total)
    scaler = make_grad_scaler(device, precision)
    if resume and last_ckpt.exists():
        loop = restore_training_state(load_checkpoint(last_ckpt), model, optimizer, scheduler, scaler,
                                      restore_rng=main, source=str(last_ckpt))
        state = LoopState(**loop)
        if not main:  # only rank 0's RNG is saved; the others take a fresh, reproducible stream
            seed_everything(cfg.seed + rank + 1000 * state.step)
        if main:
            logger.info("resuming from %s at step %d of %d", last_ckpt, state.step, total)
            _truncate_history(history, state.step)
    else:
        state = LoopState()
        seed_everything(cfg.seed + rank)  # different dropout masks per rank; the data shards differ anyway
        if main and history.exists():
            history.unlink()
    dist.barrier()

    # Keep `model` (the user's module) for saving: no "module."/"_orig_mod." prefixes to strip later.
    net = torch.compile(model) if cfg.compile else model
    train_net = net
    if world > 1:
        train_net = DistributedDataParallel(
            net, device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=cfg.ddp_find_unused_parameters,
        )
    batch_size_of = getattr(task, "batch_size_of", default_batch_size)

    def log(record: dict) -> None:
        if main:
            append_jsonl(history, record)

    def save(improved: bool) -> None:
        if main:
            save_checkpoint(last_ckpt, training_state(model, optimizer, scheduler, scaler, dataclasses.asdict(state),
                                                      cfg.model_dump(mode="json"), extra))
            if improved:
                link_or_copy(last_ckpt, best_ckpt)
                save_weights(model, weights)
        dist.barrier()  # no rank runs ahead (or exits) while rank 0 is still writing

    bar = tqdm(total=total, initial=state.step, desc="train", disable=not (cfg.progress and main), dynamic_ncols=True)
    window = torch.zeros(3, dtype=torch.float64)  # loss sum, finite micro-batches, samples since last log
    window_seconds, consecutive_bad = 0.0, 0
    model.train()
    try:
        while state.step < total and not state.stopped_early:
            train_loader.batch_sampler.set_epoch(state.epoch)
            train_loader.batch_sampler.skip = state.batch_in_epoch
            step_stats = torch.zeros(3, device=device)  # non-finite count, loss sum, finite count
            samples, tick = 0, time.perf_counter()
            for i, batch in enumerate(train_loader, start=state.batch_in_epoch):
                group_start = i - i % accum
                group_size = min(accum, n_batches - group_start)  # the epoch's last group may be short
                last_micro = i + 1 == group_start + group_size
                batch = move_to_device(batch, device, cfg.channels_last)
                samples += batch_size_of(batch) * world
                # DDP all-reduces gradients only on the micro-batch that ends the group.
                sync = train_net.no_sync() if world > 1 and not last_micro else contextlib.nullcontext()
                with sync:
                    with autocast(device, precision):
                        loss = task.loss(train_net, batch)
                    # Backward even a NaN loss: under DDP every rank must join the all-reduce.
                    scaler.scale(loss / group_size).backward()
                loss = loss.detach().float()
                finite = torch.isfinite(loss)
                step_stats += torch.stack([(~finite).float(), torch.where(finite, loss, 0.0), finite.float()])
                if not last_micro:
                    continue

                # One host sync per update (not per micro-batch): the NaN guard and the log need it, and
                # under DDP the reduced flag makes every rank skip (or take) the same updates.
                bad, loss_sum, n_finite = dist.all_reduce_sum(step_stats).tolist()
                step_stats.zero_()
                lr = optimizer.param_groups[0]["lr"]
                if bad:
                    optimizer.zero_grad(set_to_none=True)
                    state.skipped_steps += 1
                    consecutive_bad += 1
                    logger.warning("step %d: non-finite loss; update skipped (%d in a row)", state.step + 1,
                                   consecutive_bad)
                    if consecutive_bad >= cfg.max_nonfinite_steps:
                        raise NonFiniteLossError(
                            f"loss was NaN/inf for {consecutive_bad} steps in a row (step {state.step + 1}); "
                            "lower train.lr, set train.clip_grad_norm, try train.precision=fp32, or check the data")
                else:
                    consecutive_bad = 0
                    _apply_update(model, optimizer, scaler, cfg.clip_grad_norm)
                with warnings.catch_warnings():  # a skipped first update is not the misuse torch warns about
                    warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step")
                    scheduler.step()
                state.step += 1
                state.batch_in_epoch = i + 1
                end_of_epoch = i + 1 == n_batches
                if end_of_epoch:
                    state.epoch, state.batch_in_epoch = state.epoch + 1, 0
                seconds = time.perf_counter() - tick
                state.train_seconds += seconds
                state.samples += samples
                window += torch.tensor([loss_sum, n_finite, samples], dtype=torch.float64)
                window_seconds += seconds
                bar.update(1)

                epoch_float = round(state.step / steps_per_epoch, 4)
                if state.step % cfg.log_every_steps == 0 or state.step == total:
                    train_loss = (window[0] / window[1]).item() if window[1] else float("nan")
                    speed = window[2].item() / max(window_seconds, 1e-9)
                    log({"step": state.step, "epoch": epoch_float, "train/loss": train_loss, "lr": lr,
                         "train/samples_per_second": speed})
                    bar.set_postfix(loss=f"{train_loss:.4g}", lr=f"{lr:.3g}", samples_s=f"{speed:.1f}", refresh=False)
                    window.zero_()
                    window_seconds = 0.0

                do_eval = valid_loader is not None and (
                    state.step == total
                    or (end_of_epoch if cfg.eval_every_steps is None else _due(state.step, cfg.eval_every_steps))
                )
                improved = False
                if do_eval:
                    metrics = run_evaluation(net, task, valid_loader, device, precision)
                    state.last_metrics = metrics
                    log({"step": state.step, "epoch": epoch_float, **{f"valid/{k}": v for k, v in metrics.items()}})
                    if main:
                        logger.info("step %d/%d valid %s", state.step, total,
                                    " ".join(f"{k}={v:.4g}" for k, v in metrics.items()))
                    improved = _track_best(state, metrics, cfg)
                if do_eval or end_of_epoch or state.step == total or _due(state.step, cfg.checkpoint_every_steps):
                    save(improved)
                if state.step >= total or state.stopped_early:
                    break
                samples, tick = 0, time.perf_counter()
            else:
                if state.batch_in_epoch != 0:  # the sampler ran dry early; looping again would spin forever
                    raise UserError(f"the training batch sampler yielded {state.batch_in_epoch} batches but its "
                                    f"len() is {n_batches}")
    finally:
        bar.close()

    if state.best_step is None:  # nothing monitored (or never evaluated): the final weights are the result
        if main:
            save_weights(model, weights)
        dist.barrier()
    elif state.best_step != state.step:
        load_weights(model, weights)
    return FitResult(
        steps=state.step, epochs_completed=state.epoch, stopped_early=state.stopped_early,
        best_metric=state.best_metric, best_step=state.best_step, best_metrics=dict(state.best_metrics),
        last_metrics=dict(state.last_metrics), skipped_steps=state.skipped_steps,
        train_seconds=state.train_seconds, samples_per_second=state.samples / max(state.train_seconds, 1e-9),
        history_path=history, weights_path=weights,
        best_checkpoint=best_ckpt if state.best_step is not None else None, last_checkpoint=last_ckpt,
    )


def _apply_update(model: torch.nn.Module, optimizer, scaler: torch.amp.GradScaler, clip: float | None) -> None:
    """Clip (on unscaled gradients), step, and clear the gradients for the next group."""
    if clip is not None:
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    scaler.step(optimizer)  # with fp16, skips the update by itself when gradients overflowed
    scaler.update()
    optimizer.zero_grad(set_to_none=True)


def _due(step: int, every: int | None) -> bool:
    return every is not None and step % every == 0


def _track_best(state: LoopState, metrics: dict[str, float], cfg: LoopConfig) -> bool:
    """Update best/early-stopping counters from one evaluation; True if this is a new best."""
    if cfg.monitor is None:
        return False
    if cfg.monitor not in metrics:
        raise UserError(f"train.monitor={cfg.monitor!r} is not among the validation metrics {sorted(metrics)}")
    value = metrics[cfg.monitor]
    if state.improves(value, cfg.monitor_mode):
        state.best_metric, state.best_step, state.best_metrics = value, state.step, dict(metrics)
        state.bad_evals = 0
        return True
    state.bad_evals += 1
    if cfg.early_stopping_patience is not None and state.bad_evals >= cfg.early_stopping_patience:
        logger.info("early stop at step %d: %s has not improved on %.4g (step %s) for %d evaluations",
                    state.step, cfg.monitor, state.best_metric, state.best_step, state.bad_evals)
        state.stopped_early = True
    return False


def _truncate_history(path: Path, step: int) -> None:
    """Drop records logged after the checkpoint being resumed, so the history has each step once."""
    if not path.exists():
        return
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    kept = [line for line in lines if json.loads(line).get("step", 0) <= step]
    write_text(path, "".join(line + "\n" for line in kept))
