"""Prometheus metrics for one served app, in its own registry (so several apps can live in one
process, as they do in tests), and the ASGI middleware that records every request.

The middleware is plain ASGI rather than Starlette's ``BaseHTTPMiddleware``, which costs a task
and a stream per request: it matters at a few hundred microseconds per request.

A client that hangs up before its request is answered is counted under status 499 (the
convention nginx made), not as a server error.
"""
from __future__ import annotations

import logging
import time

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.requests import ClientDisconnect

log = logging.getLogger(__name__)

_LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class Telemetry:
    routes = frozenset({"/predict", "/metadata", "/readyz", "/livez", "/metrics", "/", "/openapi.json", "/docs"})
    content_type = CONTENT_TYPE_LATEST

    def __init__(self):
        self.registry = CollectorRegistry()
        self.requests = Counter("mlref_requests", "HTTP requests", ["route", "status"], registry=self.registry)
        self.latency = Histogram("mlref_request_seconds", "request latency", ["route"],
                                 buckets=_LATENCY_BUCKETS, registry=self.registry)
        self.batch_size = Histogram("mlref_batch_size", "instances per model call",
                                    buckets=_BATCH_BUCKETS, registry=self.registry)
        self.queue_depth = Gauge("mlref_queue_depth", "requests waiting for the model", registry=self.registry)
        self._children: dict[tuple[str, int], tuple] = {}

    def observe(self, route: str, status: int, seconds: float) -> None:
        try:
            count, latency = self._children[route, status]
        except KeyError:  # prometheus_client's labels() costs more than the update: look each pair up once
            count, latency = self._children.setdefault((route, status), (self.requests.labels(route, str(status)),
                                                                         self.latency.labels(route)))
        count.inc()
        latency.observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)


CLIENT_CLOSED = 499


class ObserveRequests:
    """Count and time every HTTP request by route and status; an unhandled error becomes a JSON 500
    and the server keeps serving; a client that went away is a 499, not an error."""

    def __init__(self, app, telemetry: Telemetry):
        self.app, self.telemetry = app, telemetry

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        t0 = time.perf_counter()
        status = 500
        started = False

        async def send_wrapper(message):
            nonlocal status, started
            if message["type"] == "http.response.start":
                status, started = message["status"], True
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except ClientDisconnect:
            status = CLIENT_CLOSED if not started else status
        except Exception:
            log.exception("unhandled error on %s", scope.get("path"))
            if not started:
                body = b'{"error": "internal error; the server logged the details and keeps serving"}'
                await send({"type": "http.response.start", "status": 500,
                            "headers": [(b"content-type", b"application/json")]})
                await send({"type": "http.response.body", "body": body})
        path = scope.get("path", "")
        self.telemetry.observe(path if path in self.telemetry.routes else "other", status, time.perf_counter() - t0)
