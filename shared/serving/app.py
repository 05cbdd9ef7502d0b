"""The FastAPI app factory every served model uses.

``create_app(load, cfg)`` builds an app around a :class:`Predictor` that ``load()`` returns:

- ``GET /livez``: the process is up. ``GET /readyz``: 503 until the model is loaded and warmed.
- ``GET /metadata``: run id, model, features/labels, metrics (from the predictor).
- ``GET /metrics``: Prometheus (requests by route and status, latency, batch sizes, queue depth).
- ``POST /predict``: ``{"instances": [...], ...}`` (the predictor's schema) → its response; goes
  through the :class:`MicroBatcher`. A multipart upload is handed to ``Predictor.from_form``.
- ``GET /``: a small demo page that posts the predictor's example request.

Limits: request body size (413), per-request timeout (504), bounded queue (503 + Retry-After),
optional bearer token read from the environment variable ``cfg.auth_token_env`` (401). Every
error is JSON ``{"error": message}`` (422s add ``"fields"``) and the server keeps serving.
"""
from __future__ import annotations

import asyncio
import gc
import hmac
import json
import logging
import os
import time
from contextlib import asynccontextmanager
from typing import Any, Callable

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field, ValidationError
from starlette.datastructures import FormData

from shared.config import StrictModel
from shared.errors import UserError
from shared.serving.batcher import MicroBatcher, QueueFull
from shared.serving.limits import BodySizeLimit
from shared.serving.telemetry import ObserveRequests, Telemetry

log = logging.getLogger(__name__)


class ServeConfig(StrictModel):
    """The ``serve:`` section every app's recipe has."""

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    batching: bool = True
    max_batch_size: int = Field(64, ge=1)
    max_wait_ms: float = Field(2.0, ge=0)
    max_queue: int = Field(256, ge=1, description="requests waiting before 503")
    timeout_s: float = Field(10.0, gt=0)
    max_body_bytes: int = Field(2_000_000, ge=1024)
    auth_token_env: str = Field("MLREF_API_TOKEN", description="env var holding a bearer token; unset = no auth")
    load_in_background: bool = True


class HTTPError(Exception):
    """Raise from a predictor hook to answer with ``status`` and a message."""

    def __init__(self, status: int, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


class Predictor:
    """What an app implements to be served. Batch-first: ``predict_batch(items) -> outputs``.

    ``request_model`` is the pydantic schema of the POST body (put ``Field`` limits on it, so bad
    requests get a 422 for free). ``items`` turns a validated body into one item per instance
    (carrying per-request options if the model needs them); ``respond`` turns the outputs back
    into the response body.
    """

    request_model: type[BaseModel]

    def items(self, body: BaseModel) -> list:
        return list(body.instances)  # type: ignore[attr-defined]

    def predict_batch(self, items: list) -> list:
        raise NotImplementedError

    def respond(self, body: BaseModel, outputs: list) -> dict:
        return {"predictions": outputs}

    def metadata(self) -> dict:
        return {}

    def example(self) -> dict:
        """A valid request body: used for warm-up and prefilled on the demo page."""
        raise NotImplementedError

    def from_form(self, form: FormData) -> BaseModel:
        raise HTTPError(415, "this model takes a JSON body (Content-Type: application/json)")

    def warmup(self) -> None:
        body = self.request_model.model_validate(self.example())
        self.predict_batch(self.items(body))


def _field_errors(exc: ValidationError) -> list[dict]:
    return [{"field": ".".join(str(p) for p in e["loc"]) or "(body)", "message": e["msg"]} for e in exc.errors()]


def create_app(load: Callable[[], Predictor], cfg: ServeConfig, title: str = "mlref model") -> FastAPI:
    """Build the app; ``load`` runs in the lifespan (in a thread when ``cfg.load_in_background``)."""
    telemetry = Telemetry()
    state: dict[str, Any] = {"predictor": None, "error": None}

    def _load_and_warm() -> None:
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
        except Exception as exc:  # readyz reports it; livez stays up so the operator can look
            state["error"] = f"{type(exc).__name__}: {exc}"
            log.exception("model failed to load")

    def _infer(items: list) -> list:
        return state["predictor"].predict_batch(items)

    batcher = MicroBatcher(
        _infer, cfg.max_batch_size, cfg.max_wait_ms, cfg.max_queue, enabled=cfg.batching,
        on_batch=telemetry.batch_size.observe, on_queue=telemetry.queue_depth.set,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await batcher.start()
        loader = asyncio.create_task(asyncio.to_thread(_load_and_warm))
        if not cfg.load_in_background:
            await loader
        yield
        loader.cancel()
        await batcher.stop()

    app = FastAPI(title=title, lifespan=lifespan)
    # outermost first: telemetry sees every response, 413s included
    app.add_middleware(BodySizeLimit, max_bytes=cfg.max_body_bytes)
    app.add_middleware(ObserveRequests, telemetry=telemetry)
    app.state.batcher = batcher
    app.state.serve_state = state

    def _error(status: int, message: str, headers: dict | None = None, **extra) -> JSONResponse:
        return JSONResponse({"error": message, **extra}, status_code=status, headers=headers)

    def _check_auth(request: Request) -> JSONResponse | None:
        token = os.environ.get(cfg.auth_token_env) if cfg.auth_token_env else None
        if not token:
            return None
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), token.encode()):
            return JSONResponse({"error": "missing or wrong bearer token (send 'Authorization: Bearer <token>')"},
                                status_code=401, headers={"WWW-Authenticate": "Bearer"})
        return None

    @app.get("/livez")
    async def livez():
        return {"status": "alive"}

    @app.get("/readyz")
    async def readyz():
        if state["predictor"] is not None:
            return {"status": "ready"}
        if state["error"]:
            return _error(503, f"model failed to load: {state['error']}")
        return _error(503, "model is loading", headers={"Retry-After": "1"})

    @app.get("/metadata")
    async def metadata(request: Request):
        if (denied := _check_auth(request)) is not None:
            return denied
        if state["predictor"] is None:
            return _error(503, "model is not loaded yet", headers={"Retry-After": "1"})
        return state["predictor"].metadata()

    @app.get("/metrics")
    async def metrics():
        return Response(telemetry.render(), media_type=telemetry.content_type)

    @app.post("/predict")
    async def predict(request: Request):
        if (denied := _check_auth(request)) is not None:
            return denied
        predictor: Predictor | None = state["predictor"]
        if predictor is None:
            return _error(503, "model is not loaded yet; poll GET /readyz", headers={"Retry-After": "1"})
        try:
            body = await _parse_body(request, predictor)
            items = predictor.items(body)
            outputs = await asyncio.wait_for(batcher.submit(items), cfg.timeout_s)
            return JSONResponse(predictor.respond(body, outputs))
        except ValidationError as exc:
            return _error(422, "request does not match the schema; see 'fields'", fields=_field_errors(exc))
        except HTTPError as exc:
            return _error(exc.status, exc.message, headers=exc.headers or None)
        except UserError as exc:
            return _error(422, str(exc))
        except QueueFull as exc:
            return _error(503, f"{exc}; retry shortly", headers={"Retry-After": "1"})
        except asyncio.TimeoutError:
            return _error(504, f"prediction took longer than {cfg.timeout_s:g}s; try fewer instances")

    @app.get("/", response_class=HTMLResponse)
    async def demo():
        predictor = state["predictor"]
        example = json.dumps(predictor.example(), indent=2, ensure_ascii=False) if predictor else "{}"
        return _DEMO_PAGE.replace("{{TITLE}}", title).replace("{{EXAMPLE}}", _html_escape(example))

    return app


async def _parse_body(request: Request, predictor: Predictor) -> BaseModel:
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("multipart/form-data"):
        return predictor.from_form(await request.form())
    raw = await request.body()
    if not raw:
        raise HTTPError(422, "empty request body; send JSON like GET / shows")
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise HTTPError(422, f"request body is not valid JSON: {exc}") from None
    return predictor.request_model.model_validate(data)


def _html_escape(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_DEMO_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>{{TITLE}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}
textarea,pre{width:100%;font-family:ui-monospace,monospace;font-size:13px}textarea{height:16rem}
pre{background:#f4f4f4;padding:1rem;white-space:pre-wrap}</style></head><body>
<h1>{{TITLE}}</h1><p>Edit the request and press <b>Predict</b>. API: <code>POST /predict</code>,
<a href="/metadata">/metadata</a>, <a href="/readyz">/readyz</a>, <a href="/metrics">/metrics</a>,
<a href="/docs">/docs</a>.</p>
<textarea id="req">{{EXAMPLE}}</textarea><br><button id="go">Predict</button>
<pre id="out"></pre>
<script>
document.getElementById('go').onclick = async () => {
  const out = document.getElementById('out'); out.textContent = '…';
  const headers = {'Content-Type': 'application/json'};
  const token = localStorage.getItem('mlref_token'); if (token) headers['Authorization'] = 'Bearer ' + token;
  const r = await fetch('/predict', {method: 'POST', headers, body: document.getElementById('req').value});
  out.textContent = r.status + '\\n' + JSON.stringify(await r.json(), null, 2);
};
</script></body></html>"""


def serve(app: FastAPI, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Run ``app`` with uvicorn (one process; the batcher owns inference concurrency)."""
    import uvicorn

    log.info("serving on http://%s:%d (demo page at /)", host, port)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
