"""The ``serve:`` section of every recipe: one place for the server's limits and settings.

Apps subclass :class:`ServeConfig` to add their own keys (a backend, threads) and to change
defaults (an image model takes fewer instances per request than a tabular one); the limits here
are enforced by :func:`shared.serving.create_app`, so no app checks them again.
"""
from __future__ import annotations

from pydantic import Field

from shared.config import StrictModel

PROBES = ("/livez", "/readyz")
# the lifespan state key under which the server's protocol finds the request heads' Deadlines (shared.serving.server)
HEAD_DEADLINES_STATE = "mlref.head_deadlines"


class ServeConfig(StrictModel):
    """The ``serve:`` section every app's recipe has."""

    # where and how many processes
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    workers: int = Field(1, ge=1, description="server processes on one port, each loading its own model")
    load_in_background: bool = True

    # the micro-batcher
    batching: bool = True
    max_batch_size: int = Field(64, ge=1, description="instances per model call; larger requests run in chunks")
    max_wait_ms: float = Field(2.0, ge=0)
    max_queue: int = Field(256, ge=1, description="requests waiting before 503")
    timeout_s: float = Field(10.0, gt=0, description="per request; what has not started by then is dropped (504)")

    # limits on one request (each answered 413, naming the key)
    max_body_bytes: int = Field(2_000_000, ge=1024)
    max_instances: int = Field(1024, ge=1, description="instances in one request")
    max_item_cost: float | None = Field(None, gt=0, description="one instance's Predictor.cost (characters, "
                                                                "pixels ...); unset = no limit")
    max_request_cost: float | None = Field(None, gt=0, description="the sum of Predictor.cost over a request")
    release_memory_cost: float | None = Field(
        None, gt=0, description="after a request whose cost is at least this, give freed heap back to the OS")
    decode_threads: int = Field(2, ge=1, description="threads for Predictor.prepare_in_thread decoding")

    # slow or too many clients
    read_timeout_s: float = Field(30.0, gt=0, description="a request's head, then its body, must arrive "
                                                          "within this (408 or closed)")
    timeout_keep_alive: float = Field(5.0, gt=0, description="an idle keep-alive connection is closed after this")
    limit_concurrency: int | None = Field(1000, ge=1, description="connections + requests in flight before 503")

    # who may call what
    auth_token_env: str = Field("MLREF_API_TOKEN", description="env var holding a bearer token; unset = no auth")
    public_routes: list[str] = Field(
        default_factory=lambda: ["/", "/docs", "/openapi.json"],
        description="open without the token when auth is on (the probes /livez and /readyz always are)")
    docs: bool = Field(True, description="Swagger UI at /docs, from the installed fastapi-offline assets")
