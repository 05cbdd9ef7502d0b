"""The micro-batcher's promises, on its own: a failing request never fails its neighbours, large
requests run in chunks, and a request given up on is dropped so the ones behind it are served."""
import asyncio
import threading
import time

import pytest

from shared.serving import MicroBatcher, QueueFull


def run(scenario):
    return asyncio.run(scenario())


class Recorder:
    """A model that records its calls, refuses 'bad', and can be held at a gate."""

    def __init__(self, delay_s: float = 0.0):
        self.calls: list[list] = []
        self.gate = threading.Event()
        self.gate.set()
        self.delay_s = delay_s

    def __call__(self, items):
        self.gate.wait(10)
        self.calls.append(list(items))
        time.sleep(self.delay_s * len(items))
        if "bad" in items:
            raise ValueError("cannot score 'bad'")
        if "bug" in items:
            raise KeyError("bug")
        return [f"out:{i}" for i in items]


async def _hold(batcher: MicroBatcher, model: Recorder) -> asyncio.Task:
    """Occupy the model with one request, so what is submitted next queues up and joins."""
    model.gate.clear()
    first = asyncio.create_task(batcher.submit(["first"]))
    while not batcher._executor._threads or batcher.depth:  # the worker took it
        await asyncio.sleep(0.005)
    await asyncio.sleep(0.02)
    return first


def test_one_bad_request_fails_alone_and_its_batch_neighbours_are_answered():
    model = Recorder()

    async def scenario():
        b = MicroBatcher(model, max_batch_size=64, max_wait_ms=50)
        await b.start()
        first = await _hold(b, model)
        good = [asyncio.create_task(b.submit([f"g{i}", f"h{i}"])) for i in range(5)]
        bad = asyncio.create_task(b.submit(["x", "bad"]))
        buggy = asyncio.create_task(b.submit(["bug"]))
        more = [asyncio.create_task(b.submit([f"m{i}"])) for i in range(3)]
        await asyncio.sleep(0.02)
        model.gate.set()
        results = await asyncio.gather(first, *good, bad, buggy, *more, return_exceptions=True)
        await b.stop()
        return results

    results = run(scenario)
    assert results[0] == ["out:first"]
    assert results[1:6] == [[f"out:g{i}", f"out:h{i}"] for i in range(5)]
    assert isinstance(results[6], ValueError) and isinstance(results[7], KeyError)
    assert results[8:] == [[f"out:m{i}"] for i in range(3)]
    joined = next(c for c in model.calls if "bad" in c)
    assert len(joined) > 2, "the bad request must have been joined with others, or this test proves nothing"


def test_a_request_larger_than_the_batch_runs_in_chunks_in_order():
    model = Recorder()

    async def scenario():
        b = MicroBatcher(model, max_batch_size=4)
        await b.start()
        out = await b.submit(list(range(10)))
        await b.stop()
        return out

    assert run(scenario) == [f"out:{i}" for i in range(10)]
    assert [len(c) for c in model.calls] == [4, 4, 2]


def test_a_timed_out_request_is_dropped_and_later_requests_are_served_in_order():
    model = Recorder(delay_s=0.02)  # per item: the whole heavy request would take 0.8 s

    async def scenario():
        b = MicroBatcher(model, max_batch_size=2, max_wait_ms=20)
        await b.start()
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(b.submit([f"heavy{i}" for i in range(40)]), 0.12)
        light = [asyncio.create_task(b.submit([name])) for name in ("a", "b", "c")]
        out = await asyncio.gather(*light)
        await b.stop()
        return out

    assert run(scenario) == [["out:a"], ["out:b"], ["out:c"]]
    heavy_calls = [c for c in model.calls if c[0].startswith("heavy")]
    assert sum(len(c) for c in heavy_calls) < 40, "the chunks of the timed-out request that had not started ran"
    after = [i for c in model.calls[len(heavy_calls):] for i in c]
    assert after == ["a", "b", "c"]


def test_cancelled_requests_free_their_queue_place():
    model = Recorder()

    async def scenario():
        b = MicroBatcher(model, max_batch_size=8, max_queue=2)
        await b.start()
        first = await _hold(b, model)
        waiting = [asyncio.create_task(b.submit([i])) for i in range(2)]
        await asyncio.sleep(0.01)
        with pytest.raises(QueueFull):
            await b.submit([99])
        waiting[0].cancel()
        await asyncio.sleep(0.01)
        assert b.depth == 1
        late = asyncio.create_task(b.submit([7]))  # fits now
        model.gate.set()
        out = await asyncio.gather(first, waiting[1], late)
        await b.stop()
        return out

    assert run(scenario) == [["out:first"], ["out:1"], ["out:7"]]
    assert all(0 not in c for c in model.calls)  # the cancelled request never ran


def test_a_model_returning_the_wrong_count_fails_that_request_only():
    def fn(items):
        return items[:-1] if "short" in items else items

    async def scenario():
        b = MicroBatcher(fn, max_batch_size=8, enabled=False)
        await b.start()
        out = await asyncio.gather(b.submit(["short", "x"]), b.submit(["ok"]), return_exceptions=True)
        await b.stop()
        return out

    short, ok = run(scenario)
    assert isinstance(short, RuntimeError) and "1 outputs for 2 inputs" in str(short)
    assert ok == ["ok"]


def test_a_cheap_batch_runs_on_the_event_loop_with_the_same_promises():
    model = Recorder()
    threads: list[int] = []

    def fn(items):
        threads.append(threading.get_ident())
        return model(items)

    async def scenario():
        b = MicroBatcher(fn, max_batch_size=64, max_wait_ms=50, on_loop=lambda items: "slow" not in items)
        await b.start()
        requests = [[f"g{i}"] for i in range(4)] + [["x", "bad"]]
        cheap = await asyncio.gather(*(b.submit(r) for r in requests), return_exceptions=True)
        slow = await b.submit(["slow"])
        await b.stop()
        return cheap, slow, threading.get_ident()

    cheap, slow, loop_thread = run(scenario)
    assert cheap[:4] == [[f"out:g{i}"] for i in range(4)] and isinstance(cheap[4], ValueError)
    assert slow == ["out:slow"]
    assert model.calls[0] == ["g0", "g1", "g2", "g3", "x", "bad"], "one joined call, or this test proves nothing"
    where = {tuple(call): thread == loop_thread for call, thread in zip(model.calls, threads)}
    assert where == {("g0", "g1", "g2", "g3", "x", "bad"): True, ("g0",): True, ("g1",): True, ("g2",): True,
                     ("g3",): True, ("x", "bad"): True, ("slow",): False}
