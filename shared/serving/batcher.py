"""The micro-batcher every served model's inference goes through.

Requests (each a list of prepared instances) wait in a bounded FIFO queue; one worker drains it,
joins the waiting requests into one batch of at most ``max_batch_size`` instances, runs the model
once in a worker thread, and hands each request its slice of the outputs. A request larger than
``max_batch_size`` runs in chunks, one model call each, so no call is unbounded. A batch that
``on_loop(items)`` says is cheap (a tree ensemble on a few rows: tens of microseconds) runs on the
event loop instead: handing it to the thread and back would cost more than the call.

It never waits when idle: the worker takes whatever is queued the moment it is free, so at
concurrency 1 a request goes straight through; a cheap one (``on_loop``) that finds the batcher
idle, and is still alone after one turn of the event loop, is run by its own task without the
worker. Only under load (more requests arrived while the batch was being gathered) does it wait up
to ``max_wait_ms`` for the batch to fill. With ``enabled=False`` every model call holds one
request's items only, through the same queue, which is the fair "batching off" baseline for
benchmarks.

Two promises:

- One bad request never fails its neighbours: when the model raises on a joined batch, each
  request's part is run again alone, and only a request that still fails gets the error.
- A request given up on (its ``submit`` cancelled, e.g. by a timeout) is dropped: its chunks
  not yet started never run, and the requests behind it are served in order.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


class QueueFull(Exception):
    """The batcher's queue is at capacity; the caller should retry later (HTTP 503)."""


@dataclass(eq=False)
class _Job:
    items: Sequence[Any]
    future: asyncio.Future
    outputs: list = field(default_factory=list)
    taken: int = 0  # items handed to the model so far
    done: int = 0  # items whose outputs are back

    @property
    def remaining(self) -> int:
        return len(self.items) - self.taken


# one model call's share of a job: (job, start, end)
_Segment = tuple[_Job, int, int]


class MicroBatcher:
    """Joins concurrent requests into model calls; see the module doc."""

    def __init__(
        self,
        fn: Callable[[list], list],
        max_batch_size: int = 64,
        max_wait_ms: float = 2.0,
        max_queue: int = 256,
        enabled: bool = True,
        on_batch: Callable[[int], None] | None = None,
        on_loop: Callable[[list], bool] | None = None,
    ):
        self.fn = fn
        self.max_batch_size = max(1, max_batch_size)
        self.max_wait = max_wait_ms / 1000.0
        self.max_queue = max_queue
        self.enabled = enabled
        self._on_batch = on_batch or (lambda n: None)
        self._on_loop = on_loop or (lambda items: False)
        self._jobs: deque[_Job] = deque()
        self._pending = 0  # items not yet handed to the model, over all queued jobs
        self._wakeup: asyncio.Event | None = None
        self._busy = False  # the worker is gathering or running a batch
        self._task: asyncio.Task | None = None
        # one inference thread: the model libraries parallelise inside a call
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="infer")

    @property
    def depth(self) -> int:
        """Requests waiting (their first or a later chunk not yet started)."""
        return len(self._jobs)

    async def start(self) -> None:
        self._wakeup = asyncio.Event()
        self._task = asyncio.create_task(self._worker(), name="micro-batcher")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def submit(self, items: Sequence[Any]) -> list:
        """Queue ``items`` (one request) and wait for their outputs, in order. Cancelling the
        wait (a timeout) drops whatever of the request has not reached the model yet."""
        if self._wakeup is None:
            raise RuntimeError("batcher not started")
        if not items:
            return []
        if len(self._jobs) >= self.max_queue:
            raise QueueFull(f"inference queue is full ({self.max_queue} requests waiting)")
        job = _Job(items, asyncio.get_running_loop().create_future(), [None] * len(items))
        self._jobs.append(job)
        self._pending += len(items)
        try:
            if self._alone(job) and self._on_loop(job.items):
                await asyncio.sleep(0)  # requests that came in with this one join it through the worker
                if self._alone(job):
                    return self._run_here(job)
            self._wakeup.set()
            return await job.future
        except asyncio.CancelledError:
            self._discard(job)
            raise

    def _alone(self, job: _Job) -> bool:
        """Nothing queued but ``job``, nothing running, and it fits in one call."""
        return not self._busy and len(self._jobs) == 1 and self._jobs[0] is job and job.remaining <= self.max_batch_size

    def _run_here(self, job: _Job) -> list:
        """A lone cheap request, run by its own task: no worker wake-up, no hand-back (each is a turn
        of the event loop, together more than the call). Its error, if any, is its own."""
        self._jobs.popleft()
        self._pending -= job.remaining
        job.taken = len(job.items)
        self._on_batch(len(job.items))
        try:
            return self._call(list(job.items))
        finally:
            job.items = ()

    def _discard(self, job: _Job) -> None:
        """Forget a job given up on or failed: its chunks not yet started never run."""
        try:
            self._jobs.remove(job)
        except ValueError:  # already fully handed out
            return
        self._pending -= job.remaining

    async def _worker(self) -> None:
        assert self._wakeup is not None
        loop = asyncio.get_running_loop()
        while True:
            while not self._jobs:
                self._busy = False
                self._wakeup.clear()
                await self._wakeup.wait()
            self._busy = True
            if self.enabled:
                await self._let_more_arrive()
            segments = self._take()
            if not segments:
                continue
            batch = [item for job, start, end in segments for item in job.items[start:end]]
            self._on_batch(len(batch))
            try:
                if self._on_loop(batch):
                    results = self._run(segments, batch)
                    await asyncio.sleep(0)  # let the loop read and answer before the next call
                else:
                    results = await loop.run_in_executor(self._executor, self._run, segments, batch)
            except Exception:  # a bug here must not stop the worker: fail this batch, keep serving
                log.exception("micro-batcher failed to run a batch")
                results = [(job, start, end, None, RuntimeError("inference failed")) for job, start, end in segments]
            self._deliver(results)
            del segments, batch, results  # the items (decoded images...) are freed as soon as answered

    async def _let_more_arrive(self) -> None:
        """Under load (two or more requests queued, room left in the batch) yield to the event loop
        so requests being parsed can join, for as long as they keep arriving and at most
        ``max_wait_ms``; a lone request never waits."""
        deadline = time.perf_counter() + self.max_wait
        while len(self._jobs) >= 2 and self._pending < self.max_batch_size and time.perf_counter() < deadline:
            seen = len(self._jobs)
            await asyncio.sleep(0)
            if len(self._jobs) == seen:
                break

    def _take(self) -> list[_Segment]:
        """The next model call's segments, in queue order, at most ``max_batch_size`` items; a job
        is taken whole when it fits, else its next chunk. Batching off: one job's chunk only."""
        segments: list[_Segment] = []
        budget = self.max_batch_size
        while self._jobs and budget > 0:
            job = self._jobs[0]
            if job.future.done():  # cancelled while queued
                self._discard(job)
                continue
            n = min(budget, job.remaining)
            segments.append((job, job.taken, job.taken + n))
            job.taken += n
            self._pending -= n
            budget -= n
            if job.remaining == 0:
                self._jobs.popleft()
            if not self.enabled:
                break
        return segments

    def _run(self, segments: list[_Segment], batch: list) -> list[tuple]:
        """In the inference thread (or on the loop): one call for the joined ``batch``; if it raises
        and several requests share it, each request's part again alone. ``(job, start, end, outputs, error)``."""
        try:
            outputs = self._call(batch)
        except Exception as exc:  # noqa: BLE001 - handed to the request(s) it belongs to
            if len(segments) == 1:
                job, start, end = segments[0]
                return [(job, start, end, None, exc)]
            return [self._run_alone(segment) for segment in segments]
        results, offset = [], 0
        for job, start, end in segments:
            results.append((job, start, end, outputs[offset:offset + end - start], None))
            offset += end - start
        return results

    def _run_alone(self, segment: _Segment) -> tuple:
        job, start, end = segment
        if job.future.done():  # gave up meanwhile: do not spend the model on it
            return job, start, end, None, None
        try:
            return job, start, end, self._call(list(job.items[start:end])), None
        except Exception as exc:  # noqa: BLE001 - handed to this request
            return job, start, end, None, exc

    def _call(self, batch: list) -> list:
        outputs = self.fn(batch)
        if len(outputs) != len(batch):
            raise RuntimeError(f"model returned {len(outputs)} outputs for {len(batch)} inputs")
        return outputs

    def _deliver(self, results: list[tuple]) -> None:
        for job, start, end, outputs, error in results:
            if job.future.done():
                continue
            if error is not None:
                self._discard(job)
                job.items = ()
                job.future.set_exception(error)
                continue
            if outputs is None:
                continue
            job.outputs[start:end] = outputs
            job.done += end - start
            if job.done == len(job.items):
                job.items = ()
                job.future.set_result(job.outputs)
