"""Image uploads for any served vision model: multipart files or base64 JSON.

Two ways to send images to ``POST /predict`` (any other Content-Type, a raw ``image/png`` body
included, is a 415 naming these two)::

    curl -F file=@a.png -F file=@b.jpg http://127.0.0.1:8000/predict
    printf '{"instances": [{"image_base64": "%s"}]}' "$(base64 -w0 a.png)" > body.json
    curl -H 'Content-Type: application/json' -d @body.json http://127.0.0.1:8000/predict

:class:`ImageUploadPredictor` implements the :class:`shared.serving.Predictor` hooks for images:
``items`` yields one upload per image, ``cost`` is its pixel count read from the file's header
(so ``serve.max_item_cost`` refuses a decompression bomb before anything is decoded), and
``prepare`` decodes one upload, off the event loop, into an ``HxWx3`` uint8 array. The limits
on a request (``serve.max_instances`` images, ``serve.max_item_cost`` pixels each,
``serve.max_request_cost`` pixels in all) are enforced by the shared app factory; ``prepare``
answers the rest: 413 too many bytes, 415 not an image, 422 truncated/corrupt data or bad base64,
each failing only its own request. A form's text fields are refused (422) unless the predictor
takes them as options (:meth:`ImageUploadPredictor.form_options`). A subclass implements
``predict_batch(images)``.
"""
from __future__ import annotations

import base64
import binascii
import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field
from starlette.datastructures import FormData, UploadFile

from shared.serving import HTTPError, Predictor, StrictRequest
from vision_app.common.images import FORMATS, BadImage, ImageLimits, decode_image


class ImageInstance(StrictRequest):
    image_base64: str = Field(min_length=1, description="the image file's bytes, base64 (a data: URL prefix is fine)")


class ImagesRequest(StrictRequest):
    instances: list[ImageInstance] = Field(min_length=1, description="one image each, answered in this order")


@dataclass
class Upload:
    name: str
    data: bytes


class UploadedImages(BaseModel):
    """A multipart request after parsing (built by :meth:`ImageUploadPredictor.from_form`)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    files: list[Upload]


def decode_base64(text: str, name: str) -> bytes:
    if text.startswith("data:"):
        text = text.partition(",")[2]
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise HTTPError(422, f"{name}: image_base64 is not valid base64") from None


def form_parts(form: FormData) -> tuple[list[Upload], dict[str, str]]:
    """Every file part of a multipart form (any field name) in order, and its text fields (each
    name once: a repeated one is a 422)."""
    files = [(key, v) for key, v in form.multi_items() if isinstance(v, UploadFile)]
    if not files:
        raise HTTPError(422, "the multipart form has no files; send one or more, e.g. curl -F file=@image.png")
    fields: dict[str, str] = {}
    for key, value in form.multi_items():
        if isinstance(value, UploadFile):
            continue
        if key in fields:
            raise HTTPError(422, f"form field {key!r} is given more than once; give it once per request")
        fields[key] = value
    return [Upload(f.filename or key, f.file.read()) for key, f in files], fields


def header_pixels(data: bytes) -> int:
    """Width × height from an image file's header, without decoding it (0 when it is not readable:
    ``prepare`` then says why)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=FORMATS) as img:
                return img.size[0] * img.size[1]
    except Exception:  # noqa: BLE001 - any unreadable upload is refused, with its reason, by prepare
        return 0


def encode_base64_png(array: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


class ImageUploadPredictor(Predictor):
    """Base predictor for image models: uploads in, decoded arrays to ``predict_batch``."""

    request_model = ImagesRequest
    uploads_model: type[BaseModel] = UploadedImages  # what from_form builds (with the form's options)
    prepare_in_thread = True  # decoding images is CPU work: keep it off the event loop
    cost_unit = "pixels"

    def __init__(self, limits: ImageLimits):
        self.limits = limits

    def from_form(self, form: FormData) -> BaseModel:
        uploads, fields = form_parts(form)
        return self.uploads_model.model_construct(files=uploads, **self.form_options(fields))

    def form_options(self, fields: dict[str, str]) -> dict:
        """The request options a form's text fields give; this model takes none (422 naming them)."""
        if fields:
            raise HTTPError(422, f"unknown form field(s) {sorted(fields)[:5]}: this model takes file parts only "
                                 "(any field name), e.g. curl -F file=@image.png")
        return {}

    def items(self, body: BaseModel) -> list[Upload]:
        if isinstance(body, UploadedImages):
            return body.files
        return [Upload(f"instances.{i}", decode_base64(inst.image_base64, f"instances.{i}"))
                for i, inst in enumerate(body.instances)]

    def cost(self, item: Upload) -> float:
        return float(header_pixels(item.data))

    def prepare(self, item: Upload) -> np.ndarray:
        try:
            return np.asarray(decode_image(item.data, item.name, self.limits))
        except BadImage as exc:
            raise HTTPError(exc.status, str(exc)) from None

    def example(self) -> dict:
        """A request with one small generated image (used for warm-up and on the demo page)."""
        rng = np.random.default_rng(0)
        img = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
        return {"instances": [{"image_base64": encode_base64_png(img)}]}
