"""Against a real uvicorn server on a free port: a poisoned request among 32 concurrent ones, a
timed-out request that must not hold up the next ones, slow clients (head, body, short body),
the connection limit; and how serve() turns the config into uvicorn's settings and workers."""
import asyncio
import functools
import os
import socket
import threading
import time

import httpx
import pytest
from pydantic import Field

from shared.errors import UserError
from shared.serving import Predictor, ServeConfig, StrictRequest, create_app, serve
from shared.serving.testing import running_server


class Row(StrictRequest):
    x: float


class Body(StrictRequest):
    instances: list[Row] = Field(min_length=1)


class SlowPredictor(Predictor):
    """Doubles x; refuses (like XGBoost on inf) any batch holding x == 666; sleeps ``delay_s``
    per instance; can be held at a gate to make requests queue and join."""

    request_model = Body

    def __init__(self, delay_s: float = 0.0):
        self.delay_s, self.gate, self.batches = delay_s, threading.Event(), []
        self.gate.set()

    def prepare(self, row: Row) -> float:
        return row.x

    def predict_batch(self, items):
        self.gate.wait(10)
        self.batches.append(list(items))
        time.sleep(self.delay_s * len(items))
        if 666 in items:
            raise ValueError("Input contains inf or a value too large for dtype('float32')")
        return [{"y": 2 * x} for x in items]

    def example(self):
        return {"instances": [{"x": 1}]}


def config(**kw) -> ServeConfig:
    return ServeConfig(load_in_background=False, **kw)


def test_32_concurrent_valid_requests_and_one_poisoned_one():
    predictor = SlowPredictor()
    cfg = config(max_wait_ms=50)
    with running_server(create_app(lambda: predictor, cfg), cfg) as url:

        async def scenario():
            async with httpx.AsyncClient(base_url=url, timeout=30) as client:
                predictor.gate.clear()
                first = asyncio.create_task(client.post("/predict", json={"instances": [{"x": 0}]}))
                await asyncio.sleep(0.2)  # the model is now held by the first request
                valid = [client.post("/predict", json={"instances": [{"x": i}]}) for i in range(32)]
                poisoned = client.post("/predict", json={"instances": [{"x": 1}, {"x": 666}]})
                tasks = [asyncio.create_task(r) for r in (*valid[:16], poisoned, *valid[16:])]
                await asyncio.sleep(0.3)
                predictor.gate.set()
                return await first, await asyncio.gather(*tasks)

        first, responses = asyncio.run(scenario())
        metrics = httpx.get(f"{url}/metrics").text
    assert first.status_code == 200
    bad = responses.pop(16)
    assert bad.status_code == 422 and "too large" in bad.json()["error"]
    assert [r.status_code for r in responses] == [200] * 32
    assert sorted(r.json()["predictions"][0]["y"] for r in responses) == [2 * i for i in range(32)]
    assert any(666 in b and len(b) > 2 for b in predictor.batches), "the poisoned request was never joined"
    assert 'status="500"' not in metrics


def test_a_timed_out_request_does_not_make_the_next_ones_time_out():
    predictor = SlowPredictor(delay_s=0.05)  # 100 instances: 5 s in all, 0.1 s per chunk of 2
    cfg = config(timeout_s=1.0, max_batch_size=2)
    with running_server(create_app(lambda: predictor, cfg), cfg) as url, httpx.Client(base_url=url) as c:
        heavy = c.post("/predict", json={"instances": [{"x": 1000 + i} for i in range(100)]}, timeout=30)
        assert heavy.status_code == 504 and "serve.timeout_s" in heavy.json()["error"]
        light = [c.post("/predict", json={"instances": [{"x": i}]}, timeout=30) for i in range(3)]
    assert [r.status_code for r in light] == [200, 200, 200]
    assert [r.json()["predictions"][0]["y"] for r in light] == [0, 2, 4]
    heavy_run = sum(1 for b in predictor.batches for x in b if x >= 1000)
    assert heavy_run < 100, "the timed-out request's unstarted chunks must be dropped"


def _connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    return sock


def _read_all(sock: socket.socket) -> bytes:
    """What the server sends until it closes the connection (10 s at most)."""
    chunks = []
    while True:
        try:
            data = sock.recv(65536)
        except (TimeoutError, ConnectionResetError):
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks)


HEAD = b"POST /predict HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"


@pytest.fixture(scope="module")
def slow_client_server():
    cfg = config(read_timeout_s=0.5, timeout_keep_alive=5, limit_concurrency=4)
    with running_server(create_app(SlowPredictor, cfg), cfg) as url:
        yield url


def test_a_body_sent_one_byte_at_a_time_gets_408(slow_client_server):
    body = b'{"instances": [{"x": 1}]}'
    with _connect(slow_client_server) as sock:
        sock.sendall(HEAD % len(body))
        answer = b""
        for byte in body:  # 10 bytes a second: the whole body would take 2.5 s
            try:
                sock.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                break
            time.sleep(0.1)
            if answer := answer or (sock.recv(65536, socket.MSG_DONTWAIT) if _readable(sock) else b""):
                break
        answer += _read_all(sock)
    assert answer.startswith(b"HTTP/1.1 408") and b"serve.read_timeout_s" in answer
    assert b"within 0.5s" in answer  # the configured limit, as the heads' and bodies' shared deadlines hold it


def _readable(sock: socket.socket) -> bool:
    import select

    return bool(select.select([sock], [], [], 0)[0])


def test_a_content_length_larger_than_the_body_gets_408(slow_client_server):
    with _connect(slow_client_server) as sock:
        sock.sendall(HEAD % 100 + b'{"instances": [')
        answer = _read_all(sock)
    assert answer.startswith(b"HTTP/1.1 408") and b'"error"' in answer


@pytest.mark.parametrize("sent", [b"", b"POST /predict HTTP/1.1\r\nHost: t\r\n"])
def test_a_slow_or_missing_request_head_is_closed_with_408(slow_client_server, sent):
    with _connect(slow_client_server) as sock:
        sock.sendall(sent)
        answer = _read_all(sock)
    assert answer.startswith(b"HTTP/1.1 408") and b"serve.read_timeout_s" in answer


def test_a_pipelined_request_whose_head_stalls_gets_408_after_the_first_is_answered(slow_client_server):
    with _connect(slow_client_server) as sock:
        sock.sendall(b"GET /livez HTTP/1.1\r\nHost: t\r\n\r\nGET /livez HTTP/1.1\r\nHo")
        answer = _read_all(sock)
    assert answer.startswith(b"HTTP/1.1 200") and b"HTTP/1.1 408" in answer


def test_a_keep_alive_connection_idle_past_the_read_timeout_is_still_served(slow_client_server):
    with httpx.Client(base_url=slow_client_server) as c:
        assert c.post("/predict", json={"instances": [{"x": 1}]}).status_code == 200
        time.sleep(0.8)  # longer than read_timeout_s, shorter than timeout_keep_alive
        assert c.post("/predict", json={"instances": [{"x": 2}]}).json()["predictions"] == [{"y": 4.0}]
        assert c.get("/readyz").status_code == 200


def test_connections_over_the_limit_get_503(slow_client_server):
    kept = [httpx.Client(base_url=slow_client_server) for _ in range(3)]  # limit_concurrency=4
    try:
        assert [c.get("/livez").status_code for c in kept] == [200] * 3  # each keeps its connection open
        r = httpx.get(f"{slow_client_server}/livez")  # the fourth connection
        assert r.status_code == 503
    finally:
        for c in kept:
            c.close()
    for _ in range(100):  # the server notices the closed connections
        if httpx.get(f"{slow_client_server}/livez").status_code == 200:
            break
        time.sleep(0.02)
    assert httpx.get(f"{slow_client_server}/livez").status_code == 200


def _build_app(cfg: ServeConfig):
    return create_app(SlowPredictor, cfg, title="built")


def test_serve_uses_the_config_unless_the_command_line_says_otherwise(monkeypatch):
    import uvicorn

    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append((app, kw)))
    cfg = config(host="0.0.0.0", port=9001, timeout_keep_alive=7, limit_concurrency=50)
    app = create_app(SlowPredictor, cfg)
    serve(app)
    serve(app, cfg, host=None, port=9100)
    serve(app, host="127.0.0.2", port=9200)  # the app's own config, host and port overridden
    (_, first), (_, second), (_, third) = calls
    assert (first["host"], first["port"], first["timeout_keep_alive"], first["limit_concurrency"]) == (
        "0.0.0.0", 9001, 7, 50)
    assert first["http"] == "shared.serving.server:HeaderTimeoutProtocol"
    assert (second["host"], second["port"]) == ("0.0.0.0", 9100)
    assert (third["host"], third["port"]) == ("127.0.0.2", 9200)


def test_workers_get_the_app_from_a_build_function(monkeypatch):
    import uvicorn

    from shared.serving.server import BUILD_ENV, worker_app

    cfg = config(workers=2)
    with pytest.raises(UserError, match="build function"):
        serve(create_app(SlowPredictor, cfg), cfg)
    seen = {}

    def fake_run(target, **kw):
        seen.update(kw, target=target, app=worker_app())  # what each worker process does

    monkeypatch.setattr(uvicorn, "run", fake_run)
    serve(functools.partial(_build_app, cfg), cfg)
    assert seen["target"] == "shared.serving.server:worker_app" and seen["factory"] is True
    assert seen["workers"] == 2 and seen["app"].title == "built"
    assert BUILD_ENV not in os.environ


@pytest.mark.slow
def test_two_workers_serve_one_port_from_two_processes(tmp_path):
    import subprocess
    import sys

    from shared.serving.testing import free_port

    port = free_port()
    code = ("from functools import partial; from shared.serving import ServeConfig, serve; "
            "from shared.serving.testing import echo_app; "
            f"cfg = ServeConfig(port={port}, workers=2, load_in_background=False); serve(partial(echo_app, cfg), cfg)")
    proc = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE)
    try:
        pids = set()
        deadline = time.monotonic() + 120
        while len(pids) < 2 and time.monotonic() < deadline:
            try:
                with httpx.Client(base_url=f"http://127.0.0.1:{port}") as c:  # a new connection each time
                    if c.get("/readyz").status_code == 200:
                        pids.add(c.get("/metadata").json()["pid"])
                        assert c.post("/predict", json={"instances": [1.5]}).json() == {"predictions": [3.0]}
            except httpx.TransportError:
                time.sleep(0.2)
        assert len(pids) == 2 and proc.pid not in pids, proc.stderr.read1().decode() if proc.poll() else pids
    finally:
        proc.terminate()
        proc.wait(30)


def test_heavy_decoding_in_prepare_does_not_block_the_event_loop():
    entered, release = threading.Event(), threading.Event()

    class HeavyDecode(SlowPredictor):
        prepare_in_thread = True

        def prepare(self, row: Row) -> float:
            if row.x == 42:  # stands in for decoding a huge image
                entered.set()
                release.wait(10)
            return row.x

    cfg = config()
    with running_server(create_app(HeavyDecode, cfg), cfg) as url:
        heavy = threading.Thread(target=lambda: httpx.post(f"{url}/predict", json={"instances": [{"x": 42}]},
                                                           timeout=30))
        heavy.start()
        try:
            assert entered.wait(10)
            assert httpx.get(f"{url}/livez", timeout=5).status_code == 200
            light = httpx.post(f"{url}/predict", json={"instances": [{"x": 1}]}, timeout=5)
            assert light.json() == {"predictions": [{"y": 2.0}]}
        finally:
            release.set()
            heavy.join(30)
