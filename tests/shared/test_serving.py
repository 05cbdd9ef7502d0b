"""The serving layer on a small real predictor: a linear scorer over numeric features."""
import asyncio
import threading

import numpy as np
import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field

from shared.serving import HTTPError, MicroBatcher, Predictor, QueueFull, ServeConfig, create_app


class Row(BaseModel):
    x: float
    y: float


class Body(BaseModel):
    instances: list[Row] = Field(min_length=1, max_length=100)


class LinearPredictor(Predictor):
    request_model = Body

    def __init__(self, gate: threading.Event | None = None):
        self.w = np.array([2.0, -1.0])
        self.gate = gate
        self.batches: list[int] = []

    def predict_batch(self, items):
        if self.gate is not None:
            self.gate.wait(5)
        if any(r.x == 13 for r in items):
            raise HTTPError(422, "x=13 is unlucky")
        self.batches.append(len(items))
        X = np.array([[r.x, r.y] for r in items])
        return [{"score": float(s)} for s in X @ self.w]

    def example(self):
        return {"instances": [{"x": 1, "y": 2}]}

    def metadata(self):
        return {"model": "linear"}


def client(predictor=None, **cfg):
    cfg = ServeConfig(load_in_background=False, **cfg)
    return TestClient(create_app(lambda: predictor or LinearPredictor(), cfg))


def test_health_predict_metadata_metrics():
    with client() as c:
        assert c.get("/livez").status_code == 200
        assert c.get("/readyz").json() == {"status": "ready"}
        r = c.post("/predict", json={"instances": [{"x": 1, "y": 1}, {"x": 0, "y": 3}]})
        assert r.status_code == 200
        assert r.json() == {"predictions": [{"score": 1.0}, {"score": -3.0}]}
        assert c.get("/metadata").json() == {"model": "linear"}
        text = c.get("/metrics").text
        assert 'mlref_requests_total{route="/predict",status="200"} 1.0' in text
        assert "mlref_batch_size_bucket" in text
        assert "Predict" in c.get("/").text


def test_bad_requests_get_clear_errors_and_server_keeps_serving():
    with client(max_body_bytes=2048) as c:
        r = c.post("/predict", json={"instances": [{"x": "abc", "y": 1}]})
        assert r.status_code == 422 and r.json()["fields"][0]["field"] == "instances.0.x"
        r = c.post("/predict", json={"instances": [{"x": 1}]})
        assert r.status_code == 422 and r.json()["fields"][0]["field"] == "instances.0.y"
        assert c.post("/predict", json={"instances": []}).status_code == 422
        r = c.post("/predict", content=b"{not json", headers={"content-type": "application/json"})
        assert r.status_code == 422 and "not valid JSON" in r.json()["error"]
        r = c.post("/predict", json={"instances": [{"x": 1.0, "y": 2.0}] * 300})
        assert r.status_code == 413 and "limit" in r.json()["error"]
        r = c.post("/predict", json={"instances": [{"x": 13, "y": 0}]})
        assert r.status_code == 422 and "unlucky" in r.json()["error"]
        r = c.post("/predict", files={"f": ("a.txt", b"hi")})
        assert r.status_code == 415
        assert c.post("/predict", json={"instances": [{"x": 1, "y": 0}]}).json()["predictions"][0]["score"] == 2.0


def test_bearer_auth_keeps_probes_and_public_routes_open(monkeypatch):
    monkeypatch.setenv("TEST_TOKEN", "s3cret")
    ok = {"Authorization": "Bearer s3cret"}
    with client(auth_token_env="TEST_TOKEN") as c:
        body = {"instances": [{"x": 1, "y": 1}]}
        assert c.post("/predict", json=body).status_code == 401
        r = c.post("/predict", json=body, headers={"Authorization": "Bearer wrong"})
        assert r.status_code == 401 and "bearer token" in r.json()["error"] and r.headers["www-authenticate"] == "Bearer"
        assert c.post("/predict", json=body, headers=ok).status_code == 200
        assert c.get("/livez").status_code == 200 and c.get("/readyz").status_code == 200  # probes stay open
        assert c.get("/metadata").status_code == 401 and c.get("/metadata", headers=ok).status_code == 200
        assert c.get("/metrics").status_code == 401 and c.get("/metrics", headers=ok).status_code == 200
        assert c.get("/openapi.json").status_code == 200  # public by default: the API's description
        assert c.get("/nowhere").status_code == 401  # unknown paths say nothing without the token
    with client(auth_token_env="TEST_TOKEN", public_routes=["/metrics"]) as c:
        assert c.get("/metrics").status_code == 200
        assert c.get("/openapi.json").status_code == 401 and c.get("/").status_code == 401
        assert c.get("/openapi.json", headers=ok).status_code == 200


def test_readyz_failure_does_not_expose_paths_or_exception_text(caplog):
    def broken_load():
        raise RuntimeError("/home/alice/runs/secret/model.safetensors is truncated")

    with TestClient(create_app(broken_load, ServeConfig(load_in_background=False))) as c:
        r = c.get("/readyz")
        assert r.status_code == 503 and "failed to load" in r.json()["error"]
        assert "/home/alice" not in r.text and "RuntimeError" not in r.text and "truncated" not in r.text
        assert c.get("/livez").status_code == 200
        assert c.post("/predict", json={"instances": [{"x": 1, "y": 1}]}).status_code == 503
    assert "truncated" in caplog.text  # the operator finds it in the log


def test_readyz_is_503_until_loaded():
    release = threading.Event()

    def slow_load():
        release.wait(5)
        return LinearPredictor()

    app = create_app(slow_load, ServeConfig(load_in_background=True))
    with TestClient(app) as c:
        r = c.get("/readyz")
        assert r.status_code == 503 and r.headers["retry-after"] == "1"
        assert c.post("/predict", json={"instances": [{"x": 1, "y": 1}]}).status_code == 503
        release.set()
        for _ in range(200):
            if c.get("/readyz").status_code == 200:
                break
            threading.Event().wait(0.01)
        assert c.get("/readyz").status_code == 200


def test_timeout_is_504():
    gate = threading.Event()
    predictor = LinearPredictor(gate=gate)
    cfg = ServeConfig(load_in_background=False, timeout_s=0.2)
    gate.set()  # let warm-up through
    with TestClient(create_app(lambda: predictor, cfg)) as c:
        gate.clear()
        r = c.post("/predict", json={"instances": [{"x": 1, "y": 1}]})
        assert r.status_code == 504
        gate.set()
        assert c.post("/predict", json={"instances": [{"x": 1, "y": 1}]}).status_code == 200


def test_batcher_joins_concurrent_requests_and_bounds_its_queue():
    gate = threading.Event()
    seen = []

    def fn(items):
        gate.wait(5)
        seen.append(len(items))
        return [i * 10 for i in items]

    async def scenario():
        b = MicroBatcher(fn, max_batch_size=8, max_wait_ms=50, max_queue=3)
        await b.start()
        first = asyncio.create_task(b.submit([0]))  # occupies the model
        await asyncio.sleep(0.05)
        waiting = [asyncio.create_task(b.submit([i, i + 1])) for i in (1, 3, 5)]
        await asyncio.sleep(0.01)
        with pytest.raises(QueueFull):
            await b.submit([99])
        gate.set()
        results = await asyncio.gather(first, *waiting)
        await b.stop()
        return results

    results = asyncio.run(scenario())
    assert results == [[0], [10, 20], [30, 40], [50, 60]]
    assert seen == [1, 6]  # the three waiting requests ran as one batch of 6


def test_batching_off_runs_each_request_alone():
    seen = []

    def fn(items):
        seen.append(len(items))
        return items

    async def scenario():
        b = MicroBatcher(fn, max_batch_size=8, enabled=False)
        await b.start()
        out = await asyncio.gather(*(b.submit([i, i]) for i in range(4)))
        await b.stop()
        return out

    assert asyncio.run(scenario()) == [[i, i] for i in range(4)]
    assert seen == [2, 2, 2, 2]
