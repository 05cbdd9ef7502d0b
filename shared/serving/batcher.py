"""The micro-batcher every served model's inference goes through.

Requests (each a list of instances) wait in a bounded queue; one worker drains it, joins the
waiting requests into one batch of at most ``max_batch_size`` instances (a request is never
split, so one request larger than that runs alone), runs the model once in
a worker thread, and hands each request its slice of the outputs.

It never waits when idle: the worker takes whatever is queued the moment it is free, so at
concurrency 1 a request goes straight through. Only under load (more requests arrived while the
batch was being gathered) does it wait up to ``max_wait_ms`` for the batch to fill. With
``enabled=False`` every request runs on its own, through the same thread and queue, which is the
fair "batching off" baseline for benchmarks.
"""
from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence


class QueueFull(Exception):
    """The batcher's queue is at capacity; the caller should retry later (HTTP 503)."""


@dataclass
class _Job:
    items: Sequence[Any]
    future: asyncio.Future
    enqueued: float = field(default_factory=time.perf_counter)


class MicroBatcher:
    def __init__(
        self,
        fn: Callable[[list], list],
        max_batch_size: int = 64,
        max_wait_ms: float = 2.0,
        max_queue: int = 256,
        enabled: bool = True,
        on_batch: Callable[[int], None] | None = None,
        on_queue: Callable[[int], None] | None = None,
    ):
        self.fn = fn
        self.max_batch_size = max(1, max_batch_size)
        self.max_wait = max_wait_ms / 1000.0
        self.max_queue = max_queue
        self.enabled = enabled
        self._on_batch = on_batch or (lambda n: None)
        self._on_queue = on_queue or (lambda n: None)
        self._queue: asyncio.Queue[_Job] | None = None
        self._task: asyncio.Task | None = None
        # one inference thread: the model libraries parallelise inside a call
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="infer")

    @property
    def depth(self) -> int:
        return self._queue.qsize() if self._queue else 0

    async def start(self) -> None:
        self._queue = asyncio.Queue(maxsize=self.max_queue)
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
        """Queue ``items`` (one request) and wait for their outputs, in order."""
        if self._queue is None:
            raise RuntimeError("batcher not started")
        job = _Job(items, asyncio.get_running_loop().create_future())
        try:
            self._queue.put_nowait(job)
        except asyncio.QueueFull:
            raise QueueFull(f"inference queue is full ({self.max_queue} requests waiting)") from None
        self._on_queue(self._queue.qsize())
        return await job.future

    async def _worker(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            jobs = [await self._queue.get()]
            if self.enabled:
                jobs = await self._gather_more(jobs)
            jobs = [j for j in jobs if not j.future.cancelled()]
            self._on_queue(self._queue.qsize())
            if not jobs:
                continue
            batch = [item for j in jobs for item in j.items]
            self._on_batch(len(batch))
            try:
                outputs = await loop.run_in_executor(self._executor, self.fn, batch)
                if len(outputs) != len(batch):
                    raise RuntimeError(f"model returned {len(outputs)} outputs for {len(batch)} inputs")
            except Exception as exc:  # hand the error to every waiting request; keep serving
                for j in jobs:
                    if not j.future.done():
                        j.future.set_exception(exc)
                continue
            start = 0
            for j in jobs:
                end = start + len(j.items)
                if not j.future.done():
                    j.future.set_result(outputs[start:end])
                start = end

    async def _gather_more(self, jobs: list[_Job]) -> list[_Job]:
        """Add queued jobs up to ``max_batch_size`` instances. When under load (more than one
        request already gathered) yield to the event loop so requests being parsed can join,
        for as long as they keep arriving and at most ``max_wait_ms``; a lone request never waits."""
        assert self._queue is not None
        size = len(jobs[0].items)
        deadline = time.perf_counter() + self.max_wait
        while size < self.max_batch_size:
            if not self._queue.empty():
                nxt = self._queue._queue[0]  # peek: never split a request across batches
                if size + len(nxt.items) > self.max_batch_size:
                    break
                jobs.append(self._queue.get_nowait())
                size += len(nxt.items)
                continue
            if len(jobs) < 2 or time.perf_counter() >= deadline:
                break
            await asyncio.sleep(0)
            if self._queue.empty():
                break
        return jobs
