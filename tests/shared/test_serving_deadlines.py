"""``shared.serving.deadlines``: many fixed-length deadlines watched by one timer, with the
semantics of ``asyncio.timeout`` (expiry → the error at the ``with``; other cancellations pass)."""
import asyncio

import pytest

from shared.serving.deadlines import Deadlines


class Slow(Exception):
    pass


def test_a_block_past_its_deadline_raises_within_the_slack():
    deadlines = Deadlines(0.05)

    async def main():
        loop = asyncio.get_running_loop()
        start = loop.time()
        with pytest.raises(TimeoutError), deadlines.watch():
            await asyncio.sleep(10)
        return loop.time() - start

    took = asyncio.run(main())
    assert 0.05 <= took < 0.05 + deadlines.slack + 0.5  # the margin is the test machine's, not the slack


def test_blocks_that_end_in_time_are_left_alone_and_the_queue_empties():
    deadlines = Deadlines(0.05)

    async def request(i):
        with deadlines.watch():
            await asyncio.sleep(0)
        await asyncio.sleep(0.1)  # past the deadline, outside the block: never cancelled
        return i

    async def main():
        done = await asyncio.gather(*(request(i) for i in range(50)))
        await asyncio.sleep(0.05 + 2 * deadlines.slack)
        return done

    assert asyncio.run(main()) == list(range(50))
    assert len(deadlines) == 0


def test_only_the_late_ones_expire_and_each_gets_the_given_error():
    deadlines = Deadlines(0.05)

    async def request(seconds):
        try:
            with deadlines.watch(expired=Slow):
                await asyncio.sleep(seconds)
        except Slow:
            return "slow"
        return "ok"

    async def main():
        return await asyncio.gather(*(request(s) for s in (0, 1.0, 0.001, 1.0, 0)))

    assert asyncio.run(main()) == ["ok", "slow", "ok", "slow", "ok"]


def test_a_cleared_deadline_never_fires():
    deadlines = Deadlines(0.05)

    async def main():
        with deadlines.watch() as deadline:
            deadline.clear()
            await asyncio.sleep(0.2)
        return "done"

    assert asyncio.run(main()) == "done"


def test_a_cancellation_from_elsewhere_passes_through_and_after_expiry_the_task_is_not_cancelling():
    deadlines = Deadlines(5.0)

    async def main():
        async def wait():
            with deadlines.watch():
                await asyncio.sleep(10)

        task = asyncio.create_task(wait())
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

        short = Deadlines(0.02)
        with pytest.raises(TimeoutError), short.watch():
            await asyncio.sleep(10)
        await asyncio.sleep(0.01)  # a task still marked as cancelling would be cancelled here
        return getattr(asyncio.current_task(), "cancelling", lambda: 0)()  # Python 3.11+

    assert asyncio.run(main()) == 0


def test_one_instance_serves_one_event_loop_after_another():
    deadlines = Deadlines(0.03)

    async def main():
        with pytest.raises(TimeoutError), deadlines.watch():
            await asyncio.sleep(10)

    asyncio.run(main())
    asyncio.run(main())  # the first loop's timer is gone with it; the second arms its own


def test_the_queue_stays_as_short_as_the_deadlines_still_set():
    # a server sets ~10k deadlines a second of 30 s each: cleared ones must not pile up for 30 s
    deadlines = Deadlines(30.0)

    async def main():
        for _ in range(10_000):
            with deadlines.watch():
                pass
        short = len(deadlines)
        stuck = deadlines.watch()  # a slow client's deadline at the head, set all along
        for _ in range(10_000):
            with deadlines.watch():
                pass
        behind_a_stuck_one = len(deadlines)
        stuck.__exit__(None, None, None)
        return short, behind_a_stuck_one

    short, behind_a_stuck_one = asyncio.run(main())
    assert short <= 1
    assert behind_a_stuck_one <= 2 * 1024 + 1
