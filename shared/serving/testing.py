"""A real uvicorn server in a thread, for tests that need real sockets (slow clients, concurrency):

    with running_server(create_app(load, cfg), cfg) as base_url:
        httpx.get(f"{base_url}/readyz")

The server runs with the same settings :func:`shared.serving.serve` uses (head deadline, keep-alive,
concurrency limit), on a free port of 127.0.0.1, and is stopped on exit.
"""
from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import FastAPI
from pydantic import Field

from shared.serving.app import create_app
from shared.serving.config import ServeConfig
from shared.serving.predictor import Predictor, StrictRequest
from shared.serving.server import uvicorn_settings


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_server(app: FastAPI, cfg: ServeConfig, timeout_s: float = 30.0) -> Iterator[str]:
    """Serve ``app`` in a background thread; yields its base URL once started (lifespan done)."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, **{**uvicorn_settings(cfg), "host": "127.0.0.1", "port": port}))
    thread = threading.Thread(target=server.run, name="test-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout_s)


class _Instances(StrictRequest):
    instances: list[float] = Field(min_length=1)


class EchoPredictor(Predictor):
    """A model-free predictor (each number doubled) whose metadata names its process: for tests of
    the serving machinery itself, e.g. that ``serve.workers`` really starts several processes."""

    request_model = _Instances

    def predict_batch(self, items: list) -> list:
        return [2 * x for x in items]

    def metadata(self) -> dict:
        return {"pid": os.getpid()}

    def example(self) -> dict:
        return {"instances": [1.0]}


def echo_app(cfg: ServeConfig) -> FastAPI:
    """An app serving :class:`EchoPredictor` (module-level, so ``partial(echo_app, cfg)`` pickles)."""
    return create_app(EchoPredictor, cfg, title="echo")


def intercept_serve(monkeypatch) -> dict:
    """Make ``shared.serving.serve`` hand back the app instead of running uvicorn, for tests of the
    CLI's ``serve`` stage: returns a dict that gets ``app`` (built), ``cfg``, ``host`` and ``port``."""
    import shared.serving

    caught: dict = {}

    def fake_serve(app, cfg: ServeConfig | None = None, host: str | None = None, port: int | None = None):
        app = app if isinstance(app, FastAPI) else app()
        cfg = cfg or app.state.serve_config
        caught.update(app=app, cfg=cfg, host=cfg.host if host is None else host, port=cfg.port if port is None else port)

    monkeypatch.setattr(shared.serving, "serve", fake_serve)
    return caught


def same_answer(a, b, rel: float = 1e-6, abs_: float = 1e-9, where: str = "body") -> str | None:
    """``None`` when two JSON answers are equal, floats to ``rel``/``abs_`` (a batch of another size
    sums in another order, so the last digits of a float may differ); else where they first differ."""
    if isinstance(a, float) or isinstance(b, float):
        if isinstance(a, (int, float)) and isinstance(b, (int, float)) and abs(a - b) <= max(abs_, rel * max(abs(a), abs(b))):
            return None
        return f"{where}: {a!r} != {b!r}"
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return f"{where}: keys {sorted(a)} != {sorted(b)}"
        return next((d for k in a if (d := same_answer(a[k], b[k], rel, abs_, f"{where}.{k}"))), None)
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{where}: {len(a)} items != {len(b)}"
        return next((d for i, (x, y) in enumerate(zip(a, b)) if (d := same_answer(x, y, rel, abs_, f"{where}[{i}]"))), None)
    return None if a == b else f"{where}: {a!r} != {b!r}"


def poisoned_batch(url: str, good: dict, bad: dict, n: int = 32, rel: float = 1e-6, abs_: float = 1e-9):
    """POST ``n`` copies of ``good`` and one ``bad`` body to ``/predict`` at once (the bad one in the
    middle, so it shares a batch), assert that every good one is a 200 with the same answer (floats to
    ``rel``/``abs_``: batches differ in size), that the server is still ready and counted no 500, and
    return the bad one's response for the caller's checks."""
    import asyncio

    import httpx

    async def scenario():
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            calls = [client.post("/predict", json=good) for _ in range(n)]
            calls.insert(n // 2, client.post("/predict", json=bad))
            return await asyncio.gather(*calls)

    responses = asyncio.run(scenario())
    poisoned = responses.pop(n // 2)
    assert [r.status_code for r in responses] == [200] * n, [r.text[:200] for r in responses if r.status_code != 200]
    first = responses[0].json()
    differences = [d for r in responses if (d := same_answer(first, r.json(), rel, abs_))]
    assert not differences, differences[:3]
    assert httpx.get(f"{url}/readyz").status_code == 200
    assert 'status="500"' not in httpx.get(f"{url}/metrics").text
    return poisoned


def fuzz_openapi(url: str, max_examples: int = 25, excluded_checks: tuple = ()) -> None:
    """schemathesis against the server's own ``/openapi.json``, requests valid and invalid by the
    schema (``max_examples`` each, derandomised): no 5xx, every response as documented."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from schemathesis import GenerationMode

    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

        @settings(max_examples=max_examples, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(case=schema.as_strategy(generation_mode=mode))
        def check(case):
            response = case.call(base_url=url)
            assert response.status_code < 500, (case.method, case.path, response.text[:300])
            case.validate_response(response, excluded_checks=list(excluded_checks))

        check()


def names_instance(response, i: int) -> bool:
    """Whether an error response names instance ``i`` (in its message, or in its per-field list)."""
    body = response.json()
    fields = [f["field"] for f in body.get("fields") or []]
    return f"instances[{i}]" in body["error"] or any(f.startswith(f"instances.{i}") for f in fields)
