"""Deadlines for many requests, watched by one timer: :class:`Deadlines`.

Every request has two deadlines of a fixed length: its body must arrive within
``serve.read_timeout_s`` and its answer within ``serve.timeout_s``. ``asyncio.timeout`` arms and
cancels an event-loop timer for each, which costs about 5 µs a time on this machine (of ~150 µs a
one-row request costs the server in all). Because every deadline of one kind has the same length,
they expire in the order they were set; so they wait in a FIFO queue, one timer is armed for the
oldest, and setting or clearing one is an append or a flag. A deadline fires at most ``slack``
(50 ms, or a tenth of its length if that is less) late.

    deadlines = Deadlines(10.0)
    with deadlines.watch():            # TimeoutError (or ``expired=``) if the block runs past 10 s
        await work()

Expiry cancels the task and turns the cancellation into the error at the ``with``, as
``asyncio.timeout`` does; a cancellation from anywhere else passes through unchanged.
"""
from __future__ import annotations

import asyncio
from collections import deque

from typing_extensions import Self


class Deadline:
    """One task's deadline (loop time ``when``), a context manager (see :meth:`Deadlines.watch`);
    :meth:`clear` it once it no longer applies."""

    __slots__ = ("expired", "fired", "task", "when")

    def __init__(self, task: asyncio.Task | None, when: float, expired: type[Exception]):
        self.task, self.when, self.expired, self.fired = task, when, expired, False

    def clear(self) -> None:
        self.task = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        task, self.task = self.task, None
        if self.fired and exc_type is not None and issubclass(exc_type, asyncio.CancelledError):
            uncancel = getattr(task or asyncio.current_task(), "uncancel", None)
            if uncancel is not None:  # Python 3.11+: the task is no longer being cancelled
                uncancel()
            raise self.expired from None


class Deadlines:
    """Deadlines of ``seconds`` for any number of tasks of one event loop (see the module doc)."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.slack = min(0.05, seconds / 10)
        self._queue: deque[Deadline] = deque()
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def watch(self, expired: type[Exception] = TimeoutError) -> Deadline:
        """``with deadlines.watch():`` cancels the current task if the block is still running
        ``seconds`` from now, raising ``expired`` from the ``with``; the deadline is cleared when
        the block ends (or earlier, with :meth:`Deadline.clear`). A plain class, not a generator:
        this runs twice a request."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a new event loop (an app served again): start afresh
            self._loop, self._timer = loop, None
            self._queue.clear()
        deadline = Deadline(asyncio.current_task(), loop.time() + self.seconds, expired)
        self._queue.append(deadline)
        if self._timer is None:
            self._timer = loop.call_at(deadline.when + self.slack, self._expire, loop)
        return deadline

    def _expire(self, loop: asyncio.AbstractEventLoop) -> None:
        """Cancel the tasks whose deadline has passed, drop the cleared ones at the head of the
        queue, and arm the timer for the next one still pending."""
        self._timer = None
        now, queue = loop.time(), self._queue
        while queue and (queue[0].task is None or queue[0].when <= now):
            deadline = queue.popleft()
            if deadline.task is not None:
                deadline.fired = True
                deadline.task.cancel()
        if queue:
            self._timer = loop.call_at(queue[0].when + self.slack, self._expire, loop)

    def __len__(self) -> int:
        """Deadlines queued (cleared ones included until the timer passes them)."""
        return len(self._queue)
