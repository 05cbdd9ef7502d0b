"""The app's OpenAPI document and its offline Swagger UI.

``POST /predict`` reads its body itself (strict JSON, or a multipart form) on a plain Starlette
route, so FastAPI neither infers nor lists it; :func:`install_openapi` writes it in: the request
body from the predictor's ``request_model`` (JSON, plus multipart when the predictor takes
uploads; ``maxItems`` on the instances is ``serve.max_instances``, checked by the factory), the 200
response from its ``response_model``, every error status with :class:`ErrorBody`, and the
predictor's ``example()`` once loaded. The models come, first found, from what ``create_app``
was given (``request_model=``, ``response_model=``), the ``predictor_type``'s class attributes,
the loaded predictor, else a generic ``{"instances": [...]}`` schema, so the document is right
before the model has loaded whenever the app says what it serves.

``/docs`` serves Swagger UI from the assets of the installed ``fastapi-offline`` package (no CDN:
it works on a machine without internet); without that package, or with ``serve.docs: false``,
there is no ``/docs`` and ``/openapi.json`` still is.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from shared.serving.predictor import ErrorBody, GenericRequest, GenericResponse, Predictor, accepts_form

log = logging.getLogger(__name__)

DOCS_ASSETS = "/docs/assets"
_ERRORS = {
    "400": "a malformed multipart body (models that take uploads)",
    "401": "missing or wrong bearer token (only when auth is on)",
    "408": "the body did not arrive within serve.read_timeout_s",
    "413": "body, instance count or cost over a serve.* limit",
    "415": "a Content-Type other than JSON (or multipart, for models that take uploads)",
    "422": "not strict JSON, or does not match the request schema (see 'fields'), or an instance refused",
    "500": "a bug: the server logged it and keeps serving",
    "503": "model not loaded yet, or the queue is full (Retry-After)",
    "504": "prediction took longer than serve.timeout_s; what had not started was dropped",
}


def install_openapi(app: FastAPI, get_predictor: Callable[[], Predictor | None],
                    request_model: type[BaseModel] | None = None, response_model: type[BaseModel] | None = None,
                    predictor_type: type[Predictor] | None = None, max_instances: int | None = None) -> None:
    """Replace ``app.openapi`` with one that documents ``POST /predict`` (see the module doc);
    ``max_instances`` (``serve.max_instances``) is published as the ``instances`` array's ``maxItems``."""

    def openapi() -> dict:
        if app.openapi_schema:
            return app.openapi_schema
        predictor = get_predictor()
        req = request_model or _attr(predictor_type, "request_model") or _attr(predictor, "request_model")
        resp = response_model or _attr(predictor_type, "response_model") or _attr(predictor, "response_model")
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        example = _example(predictor)
        _document_predict(schema, req or GenericRequest, resp or GenericResponse, example,
                          accepts_form(predictor_type or predictor), max_instances)
        if predictor is not None:  # final once loaded: cache it
            app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _attr(obj: Any, name: str) -> type[BaseModel] | None:
    value = getattr(obj, name, None) if obj is not None else None
    return value if isinstance(value, type) and issubclass(value, BaseModel) else None


def _example(predictor: Predictor | None) -> dict | None:
    if predictor is None:
        return None
    try:
        return predictor.example()
    except Exception:  # an example is documentation: never fail the schema for it
        log.warning("predictor.example() failed; /openapi.json has no request example", exc_info=True)
        return None


def _document_predict(schema: dict, request: type[BaseModel], response: type[BaseModel], example: dict | None,
                      takes_form: bool, max_instances: int | None) -> None:
    refs, defs = models_json_schema([(request, "validation"), (response, "serialization"),
                                     (ErrorBody, "serialization")], ref_template="#/components/schemas/{model}")
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.update(defs.get("$defs", {}))
    request_schema = components.get(refs[(request, "validation")]["$ref"].rsplit("/", 1)[-1], {})
    _cap_items(request_schema.get("properties", {}).get("instances"), max_instances)
    json_body: dict[str, Any] = {"schema": refs[(request, "validation")]}
    if example is not None:
        json_body["examples"] = {"example": {"summary": "the model's own example", "value": example}}
    content: dict[str, Any] = {"application/json": json_body}
    if takes_form:
        files = {"type": "array", "items": {"type": "string", "format": "binary"}}
        _cap_items(files, max_instances)
        content["multipart/form-data"] = {"schema": {
            "type": "object", "description": "one or more file parts, any field name", "properties": {"file": files}}}
    error = {"application/json": {"schema": refs[(ErrorBody, "serialization")]}}
    responses: dict[str, Any] = {"200": {"description": "one prediction per instance, in order",
                                         "content": {"application/json": {"schema": refs[(response, "serialization")]}}}}
    responses.update({code: {"description": text, "content": error} for code, text in _ERRORS.items()})
    # a plain Starlette route (see app.py), so FastAPI's generator left it out: written here whole
    schema.setdefault("paths", {})["/predict"] = {"post": {
        "summary": "Predict", "operationId": "predict",
        "description": "A list of instances in, a list of predictions out, in order.",
        "requestBody": {"required": True, "content": content}, "responses": responses}}


def _cap_items(array: dict | None, limit: int | None) -> None:
    """Give an array schema ``maxItems = limit`` (keeping a smaller one the model declares)."""
    if array is not None and limit is not None and array.get("type") == "array":
        array["maxItems"] = min(limit, array.get("maxItems", limit))


def docs_assets() -> Path | None:
    """The folder of Swagger UI assets shipped by ``fastapi-offline``, or None if not installed."""
    try:
        import fastapi_offline
    except ImportError:
        return None
    folder = Path(fastapi_offline.__file__).parent / "static"
    return folder if (folder / "swagger-ui-bundle.js").is_file() else None


def install_docs(app: FastAPI, title: str) -> bool:
    """Serve Swagger UI at ``/docs`` from local assets; False (and a log line) when there are none."""
    from fastapi.staticfiles import StaticFiles

    folder = docs_assets()
    if folder is None:
        log.warning("/docs is off: the fastapi-offline package (Swagger UI assets) is not installed")
        return False
    app.mount(DOCS_ASSETS, StaticFiles(directory=folder), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{title} - API",
                                   swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
                                   swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png")

    return True
