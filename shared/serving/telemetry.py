"""Prometheus metrics for one served app, in its own registry (so several apps can live in one
process, as they do in tests). :class:`~shared.serving.limits.RequestGuard` records every request.

A client that hangs up before its request is answered is counted under status 499 (the
convention nginx made), not as a server error.
"""
from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

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
