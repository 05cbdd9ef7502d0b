"""One ``POST /predict`` request, from bytes to response, and the one mapping from errors to
HTTP answers. The hooks it calls are documented on :class:`shared.serving.Predictor`.

Limits are checked here, once, for every app: ``serve.max_instances`` (413), ``serve.max_item_cost``
and ``serve.max_request_cost`` (413, in the predictor's ``cost_unit``), before ``prepare`` runs.
An instance that ``prepare`` refuses fails its own request with a 4xx naming the instance; it
never reaches the micro-batcher, where it could fail its neighbours.
"""
from __future__ import annotations

import asyncio
import ctypes
import logging
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from shared.errors import UserError
from shared.serving.batcher import MicroBatcher, QueueFull
from shared.serving.config import ServeConfig
from shared.serving.deadlines import Deadlines
from shared.serving.jsonbody import is_json_media, media_type, validate_body
from shared.serving.limits import BodyTooLarge, BodyTooSlow
from shared.serving.predictor import HTTPError, Predictor, accepts_form

log = logging.getLogger(__name__)

# not answered by the route: a client gone, or a body too large or too slow (the middleware answers)
_PASS_THROUGH = (ClientDisconnect, BodyTooLarge, BodyTooSlow)


@dataclass
class Prepared:
    """A request's validated body, its model-ready items and their total cost."""

    body: BaseModel
    items: list
    cost: float


def error_response(status: int, message: str, headers: dict | None = None, **extra: Any) -> JSONResponse:
    """The one error shape: ``{"error": message, ...extra}``."""
    return JSONResponse({"error": message, **extra}, status_code=status, headers=headers)


def field_errors(exc: ValidationError) -> list[dict]:
    """Pydantic's errors as ``[{"field": "instances.0.x", "message": ...}]``."""
    return [{"field": ".".join(str(p) for p in e["loc"]) or "(body)", "message": e["msg"]} for e in exc.errors()]


def as_response(exc: Exception, cfg: ServeConfig) -> JSONResponse:
    """The HTTP answer for an exception raised while serving one request; a bug is a logged 500."""
    if isinstance(exc, ValidationError):
        return error_response(422, "request does not match the schema; see 'fields'", fields=field_errors(exc))
    if isinstance(exc, HTTPError):
        return error_response(exc.status, exc.message, headers=exc.headers or None)
    if isinstance(exc, StarletteHTTPException):
        return error_response(exc.status_code, str(exc.detail), headers=exc.headers)
    if isinstance(exc, (UserError, ValueError)):  # BadJSON included
        return error_response(422, str(exc))
    if isinstance(exc, QueueFull):
        return error_response(503, f"{exc}; retry shortly", headers={"Retry-After": "1"})
    if isinstance(exc, TimeoutError):
        return error_response(504, f"prediction took longer than {cfg.timeout_s:g}s (serve.timeout_s); "
                                   "send fewer instances or retry when the server is less busy")
    log.error("prediction failed", exc_info=exc)
    return error_response(500, "internal error; the server logged the details and keeps serving")


async def read_body(request: Request, predictor: Predictor, cfg: ServeConfig, pool: Executor) -> BaseModel:
    """The request as the predictor's body model: strict JSON, or a multipart form via ``from_form``."""
    media = media_type(request.headers.get("content-type", ""))
    if media == "multipart/form-data":
        return await _read_form(request, predictor, cfg, pool)
    if not is_json_media(media):
        uploads = " or a multipart/form-data upload (curl -F file=@FILE)" if accepts_form(predictor) else ""
        raise HTTPError(415, f"Content-Type {media!r} is not accepted here; send JSON with "
                             f"'Content-Type: application/json'{uploads}")
    raw = await request.body()
    if not raw:
        raise HTTPError(422, "empty request body; send JSON like the example on GET /")
    return validate_body(predictor.request_model, raw)


async def _read_form(request: Request, predictor: Predictor, cfg: ServeConfig, pool: Executor) -> BaseModel:
    try:
        form = await request.form(max_files=cfg.max_instances, max_fields=cfg.max_instances)
    except StarletteHTTPException as exc:  # Starlette's 400 for "Too many files/fields"
        if str(exc.detail).startswith("Too many"):
            raise HTTPError(413, f"more than {cfg.max_instances} parts in one request; the limit is "
                                 f"{cfg.max_instances} (serve.max_instances): split the request") from None
        raise
    try:
        return await _maybe_in_thread(predictor, pool, predictor.from_form, form)
    finally:
        await form.close()


def prepare_request(predictor: Predictor, body: BaseModel, cfg: ServeConfig) -> Prepared:
    """``items`` → the limits → ``prepare`` per item; raises :class:`HTTPError` naming the instance."""
    raw = predictor.items(body)
    if len(raw) > cfg.max_instances:
        raise HTTPError(413, f"{len(raw)} instances in one request; the limit is {cfg.max_instances} "
                             "(serve.max_instances): split the request")
    costed = cfg.max_item_cost or cfg.max_request_cost or cfg.release_memory_cost
    total = _check_cost(predictor, raw, cfg) if costed else 0.0
    items = []
    for i, item in enumerate(raw):
        try:
            items.append(predictor.prepare(item))
        except HTTPError as exc:
            raise HTTPError(exc.status, f"instances[{i}]: {exc.message}", exc.headers) from None
        except ValidationError as exc:
            errors = "; ".join(f"{e['field']}: {e['message']}" for e in field_errors(exc))
            raise HTTPError(422, f"instances[{i}]: {errors}") from None
        except (UserError, ValueError) as exc:
            raise HTTPError(422, f"instances[{i}]: {exc}") from None
    return Prepared(body, items, total)


def _check_cost(predictor: Predictor, raw: list, cfg: ServeConfig) -> float:
    unit, total = predictor.cost_unit, 0.0
    for i, item in enumerate(raw):
        cost = float(predictor.cost(item))
        if cfg.max_item_cost is not None and cost > cfg.max_item_cost:
            raise HTTPError(413, f"instances[{i}] is {cost:,.0f} {unit}; the limit is {cfg.max_item_cost:,.0f} "
                                 f"{unit} per instance (serve.max_item_cost)")
        total += cost
    if cfg.max_request_cost is not None and total > cfg.max_request_cost:
        raise HTTPError(413, f"the request is {total:,.0f} {unit} in all; the limit is {cfg.max_request_cost:,.0f} "
                             f"{unit} per request (serve.max_request_cost): split it")
    return total


async def handle_predict(request: Request, predictor: Predictor, batcher: MicroBatcher, cfg: ServeConfig,
                         pool: Executor, deadlines: Deadlines) -> JSONResponse:
    """Parse, check, prepare, batch and answer one request; every failure is a JSON error. The
    model's part must end within ``deadlines`` (``serve.timeout_s``: a 504)."""
    try:
        body = await read_body(request, predictor, cfg, pool)
        prepared = await _maybe_in_thread(predictor, pool, prepare_request, predictor, body, cfg)
        with deadlines.watch():
            outputs = await batcher.submit(prepared.items)
    except _PASS_THROUGH:
        raise
    except Exception as exc:  # noqa: BLE001 - as_response answers each kind, and logs a bug as a 500
        return as_response(exc, cfg)
    # past the model, a failure is ours (a NaN in an output, a bug in respond): a logged 500
    response = JSONResponse(predictor.respond(body, outputs))
    if cfg.release_memory_cost is not None and prepared.cost >= cfg.release_memory_cost:
        del prepared, outputs
        response.background = BackgroundTask(release_memory)
    return response


async def _maybe_in_thread(predictor: Predictor, pool: Executor, fn, *args):
    if predictor.prepare_in_thread:
        return await asyncio.get_running_loop().run_in_executor(pool, fn, *args)
    return fn(*args)


def _load_malloc_trim():
    try:  # the process's own symbols: glibc's malloc_trim where the C library is glibc
        return getattr(ctypes.CDLL(None), "malloc_trim", None)
    except OSError:  # pragma: no cover - platforms without dlopen(NULL)
        return None


_MALLOC_TRIM = _load_malloc_trim()


def release_memory() -> None:
    """Give the heap freed by a large request back to the OS (glibc ``malloc_trim``; elsewhere a no-op)."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)
