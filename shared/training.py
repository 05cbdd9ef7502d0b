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

``out_dir`` then holds ``history.jsonl`` and its plot ``curves.png`` (train loss, learning rate,
the monitored validation metric), ``model.safetensors`` (best weights by ``cfg.monitor``, else the
last; read them back with :func:`shared.checkpoint.load_weights`) and ``checkpoints/{last,best}.pt``.
Calling ``fit`` again on the same ``out_dir`` resumes from ``last.pt``. On return the model holds
the weights that are in ``model.safetensors``.

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
from tqdm.contrib.logging import logging_redirect_tqdm

from shared import distributed as dist
from shared import tracking
from shared.batching import default_batch_size, make_eval_loader, make_train_loader, move_to_device
from shared.checkpoint import (
    link_or_copy,
    load_checkpoint,
    load_weights,
    restore_rng_state,
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
    """What an app hands to :func:`fit`: two required methods, three optional ones.

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
    ``after_update(model, step) -> bool``: called after each optimizer update (``step`` counts
    them); True ends training there, as if it were the planned end: validated, saved, curves drawn
    (a time budget, snapshots at minute marks). With several processes the loop stops when any
    rank says so.
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
    stopped_by_task: bool = False  # the task's after_update asked to stop
    skipped_steps: int = 0
    train_seconds: float = 0.0
    samples: int = 0

    def improves(self, value: float, mode: str) -> bool:
        if math.isnan(value):
            return False
        if self.best_metric is None:
            return True
        return value > self.best_metric if mode == "max" else value < self.best_metric


def run_evaluation(model: torch.nn.Module, task: Any, loader: Any, device: torch.device,
                   precision: str) -> dict:
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
    loop = _Loop(model, task, cfg, out_dir, device, extra)
    loop.setup(train_data, valid_data, collate_fn, batch_sampler, resume)
    loop.train()
    return loop.finish()


@dataclasses.dataclass(frozen=True)
class _Plan:
    """The run's length, fixed before the first step: batches, updates and warmup."""

    n_batches: int  # micro-batches per epoch (this rank's)
    accum: int
    steps_per_epoch: int
    total: int
    warmup: int


def _plan(cfg: LoopConfig, n_batches: int, n_examples: int) -> _Plan:
    if n_batches == 0:
        raise UserError(f"no training batches: {n_examples} examples, batch_size={cfg.batch_size}, "
                        f"drop_last={cfg.drop_last}")
    steps_per_epoch = math.ceil(n_batches / cfg.grad_accum_steps)
    total = steps_per_epoch * cfg.epochs
    if cfg.max_steps is not None:
        total = min(cfg.max_steps, total)
    warmup = cfg.warmup_steps if cfg.warmup_steps is not None else math.ceil(cfg.warmup_ratio * total)
    return _Plan(n_batches, cfg.grad_accum_steps, steps_per_epoch, total, warmup)


class _Loop:
    """One call of :func:`fit`, in the order it happens: :meth:`setup` builds the loaders, the
    optimizer and the (DDP-)wrapped model and resumes; :meth:`train` runs epochs of micro-batches
    (:meth:`_micro_step`), each group ending in one update (:meth:`_update`: NaN guard, step,
    log, evaluation, checkpoint); :meth:`finish` leaves the best weights in the model."""

    def __init__(self, model, task, cfg: LoopConfig, out_dir: Path, device: torch.device, extra: dict):
        self.model, self.task, self.cfg, self.device, self.extra = model, task, cfg, device, extra
        self.precision = resolve_precision(cfg.precision, device)
        self.rank, self.world = dist.get_rank(), dist.get_world_size()
        self.main = self.rank == 0
        self.out_dir = out_dir
        self.history, self.weights = out_dir / "history.jsonl", out_dir / "model.safetensors"
        self.last_ckpt, self.best_ckpt = out_dir / "checkpoints/last.pt", out_dir / "checkpoints/best.pt"
        self.batch_size_of = getattr(task, "batch_size_of", default_batch_size)
        self.after_update = getattr(task, "after_update", None)
        self.state = LoopState()
        self.pending_rng: dict | None = None  # a mid-epoch checkpoint's RNG, restored after iter(loader)
        # loss sum, finite micro-batches and samples since the last train/loss record
        self.window = torch.zeros(3, dtype=torch.float64)
        self.window_seconds, self.consecutive_bad = 0.0, 0
        self.epoch_loss = [0.0, 0.0, 0.0]  # loss sum, finite micro-batches, seconds: the epoch's log line
        if self.main:
            out_dir.mkdir(parents=True, exist_ok=True)

    # --- setup: loaders, optimizer, resume, wrappers ---------------------------------------------

    def setup(self, train_data, valid_data, collate_fn, batch_sampler, resume: bool) -> None:
        cfg, device = self.cfg, self.device
        self.model.to(device)
        if cfg.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.train_loader = make_train_loader(
            train_data, cfg.batch_size, device, seed=cfg.seed, drop_last=cfg.drop_last, collate_fn=collate_fn,
            num_workers=cfg.num_workers, batch_sampler=batch_sampler,
        )
        self.valid_loader = None if valid_data is None else make_eval_loader(
            valid_data, cfg.eval_batch_size or cfg.batch_size, device, collate_fn=collate_fn,
            num_workers=cfg.num_workers, channels_last=cfg.channels_last,
        )
        self.plan = _plan(cfg, len(self.train_loader.batch_sampler), len(train_data))
        task = self.task
        groups = task.param_groups(self.model) if hasattr(task, "param_groups") else \
            default_param_groups(self.model, cfg.weight_decay)
        self.optimizer = build_optimizer(groups, cfg.optimizer, cfg.lr, cfg.weight_decay, cfg.momentum,
                                         device)
        self.scheduler = build_scheduler(self.optimizer, cfg.schedule, self.plan.warmup, self.plan.total)
        self.scaler = make_grad_scaler(device, self.precision)
        self._restore_or_start(resume)
        dist.barrier()
        # Keep `model` (the user's module) for saving: no "module."/"_orig_mod." prefixes to strip later.
        self.net = torch.compile(self.model) if cfg.compile else self.model
        self.train_net = self.net
        if self.world > 1:
            self.train_net = DistributedDataParallel(
                self.net, device_ids=[device.index] if device.type == "cuda" else None,
                find_unused_parameters=cfg.ddp_find_unused_parameters,
            )

    def _restore_or_start(self, resume: bool) -> None:
        if not (resume and self.last_ckpt.exists()):
            # different dropout masks per rank; the data shards differ anyway
            seed_everything(self.cfg.seed + self.rank)
            if self.main and self.history.exists():
                self.history.unlink()
            return
        ckpt = load_checkpoint(self.last_ckpt)
        loop = restore_training_state(ckpt, self.model, self.optimizer, self.scheduler, self.scaler,
                                      restore_rng=False, source=str(self.last_ckpt))
        self.state = LoopState(**loop)
        if self.main:
            # Mid-epoch, the uninterrupted run made this epoch's loader iterator (which draws from the
            # global RNG) before the checkpoint; so restore the RNG only after making it again.
            self.pending_rng = ckpt["rng"]
            if self.state.batch_in_epoch == 0:
                self._restore_pending_rng()
            logger.info("resuming from %s at step %d of %d", self.last_ckpt, self.state.step, self.plan.total)
            _truncate_history(self.history, self.state.step)
        else:  # only rank 0's RNG is saved; the others take a fresh, reproducible stream
            seed_everything(self.cfg.seed + self.rank + 1000 * self.state.step)

    def _restore_pending_rng(self) -> None:
        if self.pending_rng is not None:
            restore_rng_state(self.pending_rng)
            self.pending_rng = None

    # --- training: epochs, micro-batches, updates ------------------------------------------------

    def train(self) -> None:
        """Run epochs until the planned number of updates, or an early stop."""
        show = self.cfg.progress and self.main
        self.bar = tqdm(total=self.plan.total, initial=self.state.step, desc="train", disable=not show,
                        dynamic_ncols=True)
        # While the bar is drawn, log lines go through tqdm.write, so they never glue onto the bar.
        redirect = logging_redirect_tqdm(tqdm_class=tqdm) if show else contextlib.nullcontext()
        self.model.train()
        try:
            with redirect:
                while not self._done():
                    self._run_epoch()
        finally:
            self.bar.close()

    def _run_epoch(self) -> None:
        """One pass over the training batches (from where a resumed run stopped), or until done."""
        state, sampler = self.state, self.train_loader.batch_sampler
        sampler.set_epoch(state.epoch)
        sampler.skip = state.batch_in_epoch
        self.step_stats = torch.zeros(3, device=self.device)  # non-finite count, loss sum, finite count
        self.samples, self.tick = 0, time.perf_counter()
        batches = iter(self.train_loader)
        self._restore_pending_rng()
        for i, batch in enumerate(batches, start=state.batch_in_epoch):
            if not self._micro_step(i, batch):
                continue
            if self._update(i):
                return
            self.samples, self.tick = 0, time.perf_counter()
        if state.batch_in_epoch != 0:  # the sampler ran dry early; looping again would spin forever
            raise UserError(f"the training batch sampler yielded {state.batch_in_epoch} batches but its "
                            f"len() is {self.plan.n_batches}")

    def _micro_step(self, i: int, batch: Any) -> bool:
        """Forward and backward one micro-batch; True when it ends its accumulation group."""
        accum, n_batches = self.plan.accum, self.plan.n_batches
        group_start = i - i % accum
        group_size = min(accum, n_batches - group_start)  # the epoch's last group may be short
        last_micro = i + 1 == group_start + group_size
        batch = move_to_device(batch, self.device, self.cfg.channels_last)
        self.samples += self.batch_size_of(batch) * self.world
        # DDP all-reduces gradients only on the micro-batch that ends the group.
        no_sync = self.world > 1 and not last_micro
        with self.train_net.no_sync() if no_sync else contextlib.nullcontext():
            with autocast(self.device, self.precision):
                loss = self.task.loss(self.train_net, batch)
            # Backward even a NaN loss: under DDP every rank must join the all-reduce.
            self.scaler.scale(loss / group_size).backward()
        loss = loss.detach().float()
        finite = torch.isfinite(loss)
        self.step_stats += torch.stack([(~finite).float(), torch.where(finite, loss, 0.0), finite.float()])
        return last_micro

    def _update(self, i: int) -> bool:
        """The optimizer update that ends a group, then log/evaluate/save as due; True when done."""
        # One host sync per update (not per micro-batch): the NaN guard and the log need it, and
        # under DDP the reduced flag makes every rank skip (or take) the same updates.
        bad, loss_sum, n_finite = dist.all_reduce_sum(self.step_stats).tolist()
        self.step_stats.zero_()
        lr = self.optimizer.param_groups[0]["lr"]
        if bad:
            self._skip_update()
        else:
            self.consecutive_bad = 0
            _apply_update(self.model, self.optimizer, self.scaler, self.cfg.clip_grad_norm)
        with warnings.catch_warnings():  # a skipped first update is not the misuse torch warns about
            warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step")
            self.scheduler.step()
        end_of_epoch = self._count_step(i, loss_sum, n_finite)
        self.state.stopped_by_task = self._task_says_stop()
        self._log_train(lr)
        evaluated, improved = self._maybe_evaluate(end_of_epoch)
        if end_of_epoch:  # no validation line for this epoch: say it ran, once per epoch
            if not evaluated:
                self._log_epoch()
            self.epoch_loss = [0.0, 0.0, 0.0]
        state = self.state
        if evaluated or end_of_epoch or self._at_end() or _due(state.step, self.cfg.checkpoint_every_steps):
            self._save(improved)
        return self._done()

    def _at_end(self) -> bool:
        """The last update: the planned one, or the one after which the task asked to stop."""
        return self.state.step >= self.plan.total or self.state.stopped_by_task

    def _done(self) -> bool:
        return self._at_end() or self.state.stopped_early

    def _task_says_stop(self) -> bool:
        """The task's ``after_update`` verdict (any rank's True stops every rank)."""
        if self.after_update is None:
            return False
        stop = bool(self.after_update(self.model, self.state.step))
        if self.world > 1:
            stop = bool(dist.all_reduce_sum(torch.tensor([float(stop)], device=self.device)).item())
        if stop and self.main:
            logger.info("step %d/%d: the task asked to stop here", self.state.step, self.plan.total)
        return stop

    def _skip_update(self) -> None:
        """Drop a group's gradients after a NaN/inf loss; give up after too many in a row."""
        self.optimizer.zero_grad(set_to_none=True)
        self.state.skipped_steps += 1
        self.consecutive_bad += 1
        step = self.state.step + 1
        logger.warning("step %d: non-finite loss; update skipped (%d in a row)", step, self.consecutive_bad)
        if self.consecutive_bad >= self.cfg.max_nonfinite_steps:
            raise NonFiniteLossError(
                f"loss was NaN/inf for {self.consecutive_bad} steps in a row (step {step}); "
                "lower train.lr, set train.clip_grad_norm, try train.precision=fp32, or check the data")

    def _count_step(self, i: int, loss_sum: float, n_finite: float) -> bool:
        """Advance the counters past one update; True if it ended the epoch."""
        state = self.state
        state.step += 1
        state.batch_in_epoch = i + 1
        end_of_epoch = i + 1 == self.plan.n_batches
        if end_of_epoch:
            state.epoch, state.batch_in_epoch = state.epoch + 1, 0
        seconds = time.perf_counter() - self.tick
        state.train_seconds += seconds
        state.samples += self.samples
        self.window += torch.tensor([loss_sum, n_finite, self.samples], dtype=torch.float64)
        self.window_seconds += seconds
        self.epoch_loss = [a + b for a, b in zip(self.epoch_loss, (loss_sum, n_finite, seconds))]
        self.bar.update(1)
        return end_of_epoch

    # --- logging, evaluation, checkpoints ---------------------------------------------------------

    def _record(self, record: dict) -> None:
        if self.main:
            append_jsonl(self.history, record)
            tracking.log_step(record, record["step"])

    def _epoch_float(self) -> float:
        return round(self.state.step / self.plan.steps_per_epoch, 4)

    def _log_train(self, lr: float) -> None:
        """Every ``log_every_steps`` (and at the end): mean loss, LR and speed since the last record."""
        step = self.state.step
        if step % self.cfg.log_every_steps != 0 and not self._at_end():
            return
        loss_sum, n_finite, samples = self.window.tolist()
        train_loss = loss_sum / n_finite if n_finite else float("nan")
        speed = samples / max(self.window_seconds, 1e-9)
        self._record({"step": step, "epoch": self._epoch_float(), "train/loss": train_loss, "lr": lr,
                      "train/samples_per_second": speed})
        self.bar.set_postfix(loss=f"{train_loss:.4g}", lr=f"{lr:.3g}", samples_s=f"{speed:.1f}",
                             refresh=False)
        self.window.zero_()
        self.window_seconds = 0.0

    def _log_epoch(self) -> None:
        """One line per epoch when no validation line stands for it (no validation split, or
        ``eval_every_steps`` off the epoch's end): with ``train.progress=false`` a run is never silent."""
        loss_sum, n_finite, seconds = self.epoch_loss
        if self.main:
            epochs = math.ceil(self.plan.total / self.plan.steps_per_epoch)
            logger.info("epoch %d/%d step %d/%d train loss=%.4g (%.1f s)", self.state.epoch, epochs,
                        self.state.step, self.plan.total, loss_sum / n_finite if n_finite else float("nan"),
                        seconds)

    def _maybe_evaluate(self, end_of_epoch: bool) -> tuple[bool, bool]:
        """Validate when due (each epoch or every ``eval_every_steps``, and at the end);
        returns (evaluated, improved)."""
        state, cfg = self.state, self.cfg
        every = end_of_epoch if cfg.eval_every_steps is None else _due(state.step, cfg.eval_every_steps)
        if self.valid_loader is None or not (every or self._at_end()):
            return False, False
        metrics = run_evaluation(self.net, self.task, self.valid_loader, self.device, self.precision)
        state.last_metrics = metrics
        self._record({"step": state.step, "epoch": self._epoch_float(),
                      **{f"valid/{k}": v for k, v in metrics.items()}})
        if self.main:
            logger.info("step %d/%d valid %s", state.step, self.plan.total,
                        " ".join(f"{k}={v:.4g}" for k, v in metrics.items()))
        return True, _track_best(state, metrics, cfg)

    def _save(self, improved: bool) -> None:
        """``last.pt`` always; ``best.pt`` and ``model.safetensors`` on a new best (rank 0 writes)."""
        if self.main:
            counters, config = dataclasses.asdict(self.state), self.cfg.model_dump(mode="json")
            state = training_state(self.model, self.optimizer, self.scheduler, self.scaler, counters, config,
                                   self.extra)
            save_checkpoint(self.last_ckpt, state)
            if improved:
                link_or_copy(self.last_ckpt, self.best_ckpt)
                save_weights(self.model, self.weights)
        dist.barrier()  # no rank runs ahead (or exits) while rank 0 is still writing

    # --- the end ----------------------------------------------------------------------------------

    def finish(self) -> FitResult:
        """Leave the result's weights in the model and on disk, draw ``curves.png``, report."""
        state = self.state
        # nothing monitored (or never evaluated): the final weights are the result
        if state.best_step is None:
            if self.main:
                save_weights(self.model, self.weights)
            dist.barrier()
        elif state.best_step != state.step:
            load_weights(self.model, self.weights)
        if self.main:
            _draw_curves(self.history, self.out_dir / "curves.png", self.cfg.monitor)
        return FitResult(
            steps=state.step, epochs_completed=state.epoch, stopped_early=state.stopped_early,
            best_metric=state.best_metric, best_step=state.best_step, best_metrics=dict(state.best_metrics),
            last_metrics=dict(state.last_metrics), skipped_steps=state.skipped_steps,
            train_seconds=state.train_seconds,
            samples_per_second=state.samples / max(state.train_seconds, 1e-9),
            history_path=self.history, weights_path=self.weights,
            best_checkpoint=self.best_ckpt if state.best_step is not None else None,
            last_checkpoint=self.last_ckpt,
        )


def _draw_curves(history: Path, path: Path, monitor: str | None) -> None:
    """``curves.png`` from ``history.jsonl``: train loss, learning rate, the validation metric."""
    if not history.exists():
        return
    records = [json.loads(line) for line in history.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not records:
        return
    from shared import plots  # matplotlib and scikit-learn load only when a run ends, not on import

    try:
        plots.training_curves(records, path, monitor)
    except Exception:  # a plot is a by-product: never lose a finished run to it
        logger.warning("could not draw %s", path, exc_info=True)


def _apply_update(model: torch.nn.Module, optimizer, scaler: torch.amp.GradScaler,
                  clip: float | None) -> None:
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
        raise UserError(f"train.monitor={cfg.monitor!r} is not among the validation metrics "
                        f"{sorted(metrics)}")
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
