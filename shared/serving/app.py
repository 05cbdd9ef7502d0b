"""The FastAPI app factory every served model uses.

``create_app(load, cfg)`` builds an app around the :class:`Predictor` that ``load()`` returns,
loaded (and warmed) in the app's lifespan, so ``/readyz`` means the same for every app:

- ``GET /livez``: the process is up. ``GET /readyz``: 503 until the model is loaded and warmed.
- ``GET /metadata``: run id, model, features/labels, metrics (from the predictor).
- ``GET /metrics``: Prometheus (requests by route and status, latency, batch sizes, queue depth).
- ``POST /predict``: ``{"instances": [...], ...}`` (the predictor's schema) → its response; see
  :mod:`shared.serving.pipeline` for the path one request takes and the limits checked once here.
- ``GET /``: the demo page of the predictor's ``page`` kind (:mod:`shared.serving.pages`).
- ``GET /openapi.json`` and ``GET /docs`` (offline Swagger UI): see :mod:`shared.serving.openapi`.

Every error is JSON ``{"error": message}`` (422s add ``"fields"``), 404 and 405 included, and the
server keeps serving. With a bearer token set (env var ``serve.auth_token_env``), the probes and
``serve.public_routes`` stay open and every other route needs the token.
"""
from __future__ import annotations

import asyncio
import gc
import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Route

from shared.serving.batcher import MicroBatcher
from shared.serving.config import HEAD_DEADLINES_STATE, PROBES, ServeConfig
from shared.serving.deadlines import Deadlines
from shared.serving.limits import RequestGuard
from shared.serving.openapi import install_docs, install_openapi
from shared.serving.pages import page_config, render_page
from shared.serving.pipeline import error_response, handle_predict
from shared.serving.predictor import ErrorBody, Predictor
from shared.serving.telemetry import Telemetry

log = logging.getLogger(__name__)

_UNAVAILABLE = {503: {"model": ErrorBody, "description": "model not loaded yet (Retry-After)"}}


class Status(BaseModel):
    status: str


def create_app(load: Callable[[], Predictor], cfg: ServeConfig, title: str = "mlref model", *,
               predictor_type: type[Predictor] | None = None, request_model: type[BaseModel] | None = None,
               response_model: type[BaseModel] | None = None) -> FastAPI:
    """Build the app; ``load`` runs in the lifespan (in a thread when ``cfg.load_in_background``).

    ``predictor_type`` (its class attributes) or ``request_model``/``response_model`` describe
    ``/predict`` in OpenAPI before the model has loaded; without them the loaded predictor's are
    used, and a generic schema until then.
    """
    telemetry = Telemetry()
    state: dict[str, Any] = {"predictor": None, "failed": False}
    batcher = MicroBatcher(
        lambda items: state["predictor"].predict_batch(items), cfg.max_batch_size, cfg.max_wait_ms,
        cfg.max_queue, enabled=cfg.batching, on_batch=telemetry.batch_size.observe,
        on_loop=lambda items: state["predictor"].infer_on_loop(items),
    )
    telemetry.queue_depth.set_function(lambda: batcher.depth)  # read when scraped, not set per request
    decode_pool = ThreadPoolExecutor(max_workers=cfg.decode_threads, thread_name_prefix="decode")
    deadlines = Deadlines(cfg.timeout_s)
    # a request's head, then its body, must arrive within serve.read_timeout_s: one queue (and timer)
    # for both, read by the server's protocol (shared/serving/server.py) and by RequestGuard
    read_deadlines = Deadlines(cfg.read_timeout_s)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await batcher.start()
        loader = asyncio.create_task(asyncio.to_thread(_load_and_warm, load, state))
        if not cfg.load_in_background:
            await loader
        yield {HEAD_DEADLINES_STATE: read_deadlines}
        loader.cancel()
        await batcher.stop()
        decode_pool.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title=title, lifespan=lifespan, docs_url=None, redoc_url=None)
    token = os.environ.get(cfg.auth_token_env) if cfg.auth_token_env else None
    app.add_middleware(RequestGuard, telemetry=telemetry, max_bytes=cfg.max_body_bytes,
                       read_deadlines=read_deadlines, token=token, open_paths=[*PROBES, *cfg.public_routes])
    _install_error_handlers(app)

    async def predict(request: Request):
        predictor: Predictor | None = state["predictor"]
        if predictor is None:
            return error_response(503, "model is not loaded yet; poll GET /readyz", headers={"Retry-After": "1"})
        return await handle_predict(request, predictor, batcher, cfg, decode_pool, deadlines)

    # A plain Starlette route, not a FastAPI one: the handler reads its own body, so FastAPI's
    # per-request dependency solving would do nothing but cost (about a sixth of a one-row request);
    # openapi.py documents it. First in the list: the router tries the routes in order.
    app.router.routes.insert(0, Route("/predict", predict, methods=["POST"], include_in_schema=False))
    _install_routes(app, state, telemetry, title, predictor_type, auth=bool(token))

    app.state.batcher, app.state.serve_state, app.state.serve_config = batcher, state, cfg
    install_openapi(app, lambda: state["predictor"], request_model, response_model, predictor_type,
                    max_instances=cfg.max_instances)
    if cfg.docs:
        install_docs(app, title)
    return app


def _load_and_warm(load: Callable[[], Predictor], state: dict) -> None:
    try:
        t0 = time.perf_counter()
        predictor = load()
        predictor.warmup()
        # everything loaded so far (libraries, model) lives for the whole process: move it out
        # of the collector's reach, so a full collection under load does not stall requests
        gc.collect()
        gc.freeze()
        state["predictor"] = predictor
        log.info("model loaded and warmed in %.2fs", time.perf_counter() - t0)
    except Exception:  # readyz says so; the details go to the log, not to callers
        state["failed"] = True
        log.exception("model failed to load")


def _install_routes(app: FastAPI, state: dict, telemetry: Telemetry, title: str,
                    predictor_type: type[Predictor] | None, auth: bool) -> None:
    """The probes, metadata, metrics and the demo page."""

    @app.get("/livez", response_model=Status)
    async def livez():
        """The process is up (says nothing about the model)."""
        return {"status": "alive"}

    @app.get("/readyz", response_model=Status, responses=_UNAVAILABLE)
    async def readyz():
        """Ready to predict: the model is loaded and warmed."""
        if state["predictor"] is not None:
            return {"status": "ready"}
        if state["failed"]:
            return error_response(503, "model failed to load; the server log has the details")
        return error_response(503, "model is loading", headers={"Retry-After": "1"})

    @app.get("/metadata", responses=_UNAVAILABLE)
    async def metadata() -> dict:
        """Run, model, labels or features, limits and metrics of the served model."""
        if state["predictor"] is None:
            return error_response(503, "model is not loaded yet", headers={"Retry-After": "1"})
        return state["predictor"].metadata()

    @app.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
    async def metrics():
        """Prometheus metrics."""
        return Response(telemetry.render(), media_type=telemetry.content_type)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def demo():
        """The demo page of the predictor's kind (:mod:`shared.serving.pages`), built once the model is loaded."""
        predictor = state["predictor"]
        if predictor is not None and "page" in state:
            return state["page"]
        # example_image() may read a file: off the event loop
        config = await asyncio.to_thread(page_config, predictor, predictor_type, title, auth)
        page = render_page(config)
        if predictor is not None:
            state["page"] = page
        return page


def _install_error_handlers(app: FastAPI) -> None:
    """400/404/405 (Starlette's HTTPException) and 422 (FastAPI's validation) in the one error shape."""

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        return error_response(exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        fields = [{"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()]
        return error_response(422, "request does not match the schema; see 'fields'", fields=fields)


