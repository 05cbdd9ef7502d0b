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
import logging
from collections import deque
from collections.abc import Callable

from typing_extensions import Self

log = logging.getLogger(__name__)

_MIN_COMPACT = 1024  # queue length past which cleared deadlines are filtered out


class Deadline:
    """One deadline (loop time ``when``): at expiry ``action()`` runs unless :meth:`clear` came
    first. From :meth:`Deadlines.watch` it is a context manager that cancels its task."""

    __slots__ = ("action", "expired", "fired", "task", "when")

    def __init__(self, action: Callable[[], object] | None, when: float, task: asyncio.Task | None = None,
                 expired: type[Exception] = TimeoutError):
        self.action, self.when, self.task, self.expired, self.fired = action, when, task, expired, False

    def clear(self) -> None:
        self.action = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.action = None
        if self.fired and exc_type is not None and issubclass(exc_type, asyncio.CancelledError):
            uncancel = getattr(self.task, "uncancel", None)
            if uncancel is not None:  # Python 3.11+: the task is no longer being cancelled
                uncancel()
            raise self.expired from None


class Deadlines:
    """Deadlines of ``seconds`` on one event loop, any number of them (see the module doc)."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.slack = min(0.05, seconds / 10)
        self._queue: deque[Deadline] = deque()
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._compact_at = _MIN_COMPACT

    def watch(self, expired: type[Exception] = TimeoutError) -> Deadline:
        """``with deadlines.watch():`` cancels the current task if the block is still running
        ``seconds`` from now, raising ``expired`` from the ``with``; the deadline is cleared when
        the block ends (or earlier, with :meth:`Deadline.clear`). A plain class, not a generator:
        this runs twice a request."""
        task = asyncio.current_task()
        return self.start(task.cancel, task, expired)

    def start(self, action: Callable[[], object], task: asyncio.Task | None = None,
              expired: type[Exception] = TimeoutError) -> Deadline:
        """A deadline ``seconds`` from now that runs ``action()`` unless cleared first (from a
        coroutine or a callback of the running loop)."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a new event loop (an app served again): start afresh
            self._loop, self._timer = loop, None
            self._queue.clear()
        self._trim()
        deadline = Deadline(action, loop.time() + self.seconds, task, expired)
        self._queue.append(deadline)
        if self._timer is None:
            self._timer = loop.call_at(deadline.when + self.slack, self._expire, loop)
        return deadline

    def _trim(self) -> None:
        """Keep the queue about as long as the deadlines still set: drop the cleared ones at its
        head (most are: they clear in the order they were set), and when one long-lived deadline
        at the head holds many cleared ones behind it, filter them out (at most once per as many
        new deadlines as are left, so the cost per deadline stays constant)."""
        queue = self._queue
        while queue and queue[0].action is None:
            queue.popleft()
        if len(queue) > self._compact_at:
            self._queue = queue = deque(d for d in queue if d.action is not None)
            self._compact_at = max(_MIN_COMPACT, 2 * len(queue))

    def _expire(self, loop: asyncio.AbstractEventLoop) -> None:
        """Run the actions whose deadline has passed, drop the cleared deadlines at the head of
        the queue, and arm the timer for the next one still pending."""
        self._timer = None
        now, queue = loop.time(), self._queue
        while queue and (queue[0].action is None or queue[0].when <= now):
            deadline = queue.popleft()
            if deadline.action is not None:
                action, deadline.action, deadline.fired = deadline.action, None, True
                try:
                    action()
                except Exception:  # one failing action must not leave the others unwatched
                    log.exception("a deadline's action failed")
        if queue:
            self._timer = loop.call_at(queue[0].when + self.slack, self._expire, loop)

    def __len__(self) -> int:
        """Deadlines queued (cleared ones included until the timer passes them)."""
        return len(self._queue)
