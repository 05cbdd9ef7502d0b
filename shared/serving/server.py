"""Running an app with uvicorn, with the ``serve:`` settings applied.

    serve(app, cfg)                       # host/port from cfg (the recipe)
    serve(app, cfg, host=args.host)       # the command line wins where it says something (not None)
    serve(partial(build_app, run, cfg), cfg)   # a build function: needed for serve.workers > 1
    serve(partial(create_app, partial(Predictor.from_run, cfg, run), cfg.serve, title), cfg.serve)

``serve.workers > 1`` starts that many server processes on one port (uvicorn's supervisor; the
kernel spreads connections), each building its own app, so each loads its own model in its own
lifespan and has its own micro-batcher. uvicorn can only start workers from an import string, so
the build function (a picklable callable: a module-level function or a ``functools.partial`` of
one) is written to a temporary file named by ``MLREF_SERVE_BUILD``, and each worker calls
:func:`worker_app`, which reads it back.

Slow clients: uvicorn closes idle keep-alive connections (``serve.timeout_keep_alive``) and refuses
work past ``serve.limit_concurrency`` (503), but it waits for a request's head forever; the
protocol here closes a connection whose head has not arrived ``serve.read_timeout_s`` after it
opened (or after its previous response), with a 408. The body's deadline is the
:class:`~shared.serving.limits.RequestGuard` middleware's.
"""
from __future__ import annotations

import logging
import os
import pickle
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from shared.errors import UserError
from shared.serving.config import HEAD_DEADLINES_STATE, ServeConfig
from shared.serving.deadlines import Deadline

log = logging.getLogger(__name__)

BUILD_ENV = "MLREF_SERVE_BUILD"

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # pragma: no cover - uvicorn without httptools (not uvicorn[standard])
    HttpToolsProtocol = None  # type: ignore[assignment,misc]

def _timeout_response() -> bytes:
    body = b'{"error": "the request head did not arrive in time (serve.read_timeout_s)"}'
    return (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


if HttpToolsProtocol is not None:

    class HeaderTimeoutProtocol(HttpToolsProtocol):
        """uvicorn's httptools protocol, plus a deadline on the request head (see the module doc):
        set when the connection opens and when a request begins, cleared when its head is
        complete; between requests uvicorn's keep-alive timer is the one that runs. The deadlines
        are the app's (:class:`~shared.serving.deadlines.Deadlines`: one timer for all connections)."""

        _head_deadline: Deadline | None = None

        def connection_made(self, transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm_head_deadline()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._arm_head_deadline()

        def on_headers_complete(self) -> None:
            self._clear_head_deadline()
            super().on_headers_complete()

        def connection_lost(self, exc) -> None:
            self._clear_head_deadline()
            super().connection_lost(exc)

        def _arm_head_deadline(self) -> None:
            deadlines = self.app_state.get(HEAD_DEADLINES_STATE)
            if deadlines is not None and self._head_deadline is None:
                self._head_deadline = deadlines.start(self._head_timed_out)

        def _clear_head_deadline(self) -> None:
            if self._head_deadline is not None:
                self._head_deadline.clear()
                self._head_deadline = None

        def _head_timed_out(self) -> None:
            self._head_deadline = None
            if not self.transport.is_closing():
                self.transport.write(_timeout_response())
                self.transport.close()
else:  # pragma: no cover
    HeaderTimeoutProtocol = None  # type: ignore[assignment,misc]


def uvicorn_settings(cfg: ServeConfig) -> dict:
    """The ``uvicorn.run`` keyword arguments ``cfg`` implies (host and port aside)."""
    settings: dict[str, Any] = {
        "log_level": "warning", "access_log": False,
        "timeout_keep_alive": cfg.timeout_keep_alive, "limit_concurrency": cfg.limit_concurrency,
        "timeout_graceful_shutdown": 10,
    }
    if HeaderTimeoutProtocol is not None:
        settings["http"] = "shared.serving.server:HeaderTimeoutProtocol"
    else:
        log.warning("httptools is not installed: no deadline on request heads (install uvicorn[standard])")
    return settings


def serve(app: FastAPI | Callable[[], FastAPI], cfg: ServeConfig | None = None, host: str | None = None,
          port: int | None = None) -> None:
    """Run ``app`` (or ``build()``) with uvicorn until stopped. ``host``/``port`` given (not None)
    override ``cfg.host``/``cfg.port``; ``cfg`` defaults to the one the app was created with."""
    import uvicorn

    if cfg is None:
        cfg = getattr(getattr(app, "state", None), "serve_config", None) or ServeConfig()
    host = cfg.host if host is None else host
    port = cfg.port if port is None else port
    settings = {**uvicorn_settings(cfg), "host": host, "port": port}
    log.info("serving on http://%s:%d with %d worker(s) (demo page at /)", host, port, cfg.workers)
    if cfg.workers == 1:
        uvicorn.run(app if isinstance(app, FastAPI) else app(), **settings)
        return
    if isinstance(app, FastAPI):
        raise UserError("serve.workers > 1 needs the app as a build function (each worker builds its own): "
                        "pass serve(partial(build_app, ...), cfg)")
    with tempfile.TemporaryDirectory(prefix="mlref-serve-") as tmp:
        path = Path(tmp) / "build.pickle"
        path.write_bytes(pickle.dumps(app))
        os.environ[BUILD_ENV] = str(path)
        try:
            uvicorn.run("shared.serving.server:worker_app", factory=True, workers=cfg.workers, **settings)
        finally:
            os.environ.pop(BUILD_ENV, None)


def worker_app() -> FastAPI:
    """In a worker process: the app, from the build function :func:`serve` left for it."""
    path = os.environ.get(BUILD_ENV)
    if not path:
        raise RuntimeError(f"{BUILD_ENV} is not set: worker_app is started by shared.serving.serve only")
    return pickle.loads(Path(path).read_bytes())()  # our own file, written by the parent process
