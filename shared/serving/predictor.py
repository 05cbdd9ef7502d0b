"""What an app implements to be served (:class:`Predictor`), and the schemas every app shares.

One request goes through these hooks, in this order (the factory calls them; see
:mod:`shared.serving.pipeline`)::

    body   = request_model.model_validate(json)        # or from_form(multipart form)
    raw    = items(body)                               # one item per instance (+ request options)
    limits : len(raw) <= serve.max_instances, cost(item) <= serve.max_item_cost,
             sum(cost) <= serve.max_request_cost       # 413, before anything heavy runs
    item   = prepare(raw_item)                         # validate + encode ONE instance (4xx: that request)
    outputs = predict_batch(items of several requests) # through the micro-batcher (on the loop
                                                       # when infer_on_loop(items) says it is cheap)
    respond(body, outputs)                             # the response body

With ``prepare_in_thread = True`` the parsing hooks (``from_form``, ``items``, ``cost``,
``prepare``) run in a small thread pool instead of on the event loop: set it where they decode
images or do other CPU-heavy work, so ``/livez`` and light requests keep being answered.
"""
from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field
from starlette.datastructures import FormData


class HTTPError(Exception):
    """Raise from a predictor hook to answer with ``status`` and a message."""

    def __init__(self, status: int, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


class StrictRequest(BaseModel):
    """Base for request models: unknown fields are refused and nothing is coerced (``"user": true``
    is not user 1, ``"contributions": "yes"`` is not ``true``; an int is still a valid float)."""

    model_config = ConfigDict(extra="forbid", strict=True)


class FieldError(BaseModel):
    field: str = Field(description="dotted path of the offending value, e.g. instances.0.tenure")
    message: str


class ErrorBody(BaseModel):
    """Every error the server answers (4xx and 5xx) has this shape."""

    error: str = Field(description="what went wrong and what to do about it")
    fields: list[FieldError] | None = Field(None, description="one entry per invalid value (422 only)")

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"error": "request does not match the schema; see 'fields'",
         "fields": [{"field": "instances.0.x", "message": "Input should be a valid number"}]}]})


class GenericRequest(BaseModel):
    """The schema documented when an app gives none: a non-empty list of instances."""

    instances: list[Any] = Field(min_length=1)


class GenericResponse(BaseModel):
    """The response documented when an app gives none: one prediction per instance."""

    predictions: list[Any]


class Predictor:
    """What an app implements to be served. Batch-first: ``predict_batch(items) -> outputs``.

    ``request_model`` is the pydantic schema of the POST body (derive it from :class:`StrictRequest`
    and put ``Field`` limits on it, so bad requests get a 422 for free); ``response_model``, when
    given, documents the response in OpenAPI. Both may be set per instance (built from the run,
    like a feature schema) or on the class, where ``create_app(..., predictor_type=...)`` can read
    them before the model is loaded.
    """

    request_model: type[BaseModel]
    response_model: type[BaseModel] | None = None
    prepare_in_thread: ClassVar[bool] = False
    cost_unit: ClassVar[str] = "units"
    # how the demo page at / shows this model: one of shared.serving.pages.KINDS ("json": the
    # request as editable JSON; "text-classify", "image-detect", ... draw the answer)
    page: ClassVar[str] = "json"

    def items(self, body: BaseModel) -> list:
        """One item per instance of a validated body (carry per-request options in the item)."""
        return list(body.instances)  # type: ignore[attr-defined]

    def cost(self, item: Any) -> float:
        """What one raw item (from ``items``, before ``prepare``) costs, in ``cost_unit``: text
        characters, image pixels read from the header... Checked against ``serve.max_item_cost``
        and ``serve.max_request_cost`` before ``prepare`` runs (and against ``serve.release_memory_cost``
        after the request); only called when one of those is set."""
        return 0.0

    def prepare(self, item: Any) -> Any:
        """Validate and encode ONE item for the model. Raise :class:`HTTPError`, ``UserError`` or
        ``ValueError`` to refuse it: that request alone gets a 4xx naming the instance."""
        return item

    def predict_batch(self, items: list) -> list:
        """One output per prepared item, in order; the items may come from several requests."""
        raise NotImplementedError

    def infer_on_loop(self, items: list) -> bool:
        """Whether ``predict_batch(items)`` is so short (tens of microseconds: a tree ensemble on a
        few rows) that it should run on the event loop rather than be handed to the inference
        thread and back, which costs more than that. Never for a call that can take milliseconds:
        the loop answers nothing else meanwhile."""
        return False

    def respond(self, body: BaseModel, outputs: list) -> dict:
        """The response body for one request, given its outputs in order."""
        return {"predictions": outputs}

    def metadata(self) -> dict:
        """What ``GET /metadata`` answers: run, model, labels, limits, metrics."""
        return {}

    def example(self) -> dict:
        """A valid request body: used for warm-up, in OpenAPI and prefilled on the demo page."""
        raise NotImplementedError

    def example_image(self) -> bytes | None:
        """An image file (PNG or JPEG bytes) from the run's own data, offered on the demo page of
        an image model; None (the default) when there is none at hand."""
        return None

    def from_form(self, form: FormData) -> BaseModel:
        """A multipart request turned into a body model; by default such requests are refused."""
        raise HTTPError(415, "this model takes a JSON body (Content-Type: application/json)")

    def warmup(self) -> None:
        """Run the example once through every hook, so the first real request is not the slow one."""
        body = self.request_model.model_validate(self.example())
        self.predict_batch([self.prepare(x) for x in self.items(body)])


def accepts_form(predictor: type[Predictor] | Predictor | None) -> bool:
    """Whether a predictor (class or instance) overrides ``from_form`` (takes multipart uploads)."""
    cls = predictor if isinstance(predictor, type) else type(predictor)
    return predictor is not None and getattr(cls, "from_form", None) is not Predictor.from_form
