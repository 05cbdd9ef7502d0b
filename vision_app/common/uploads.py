"""Image uploads for any served vision model: multipart files or base64 JSON, with limits.

Two ways to send images to ``POST /predict``::

    curl -F file=@a.png -F file=@b.jpg http://127.0.0.1:8000/predict
    curl -H 'Content-Type: application/json' \
         -d '{"instances": [{"image_base64": "iVBORw0KGgo..."}]}' http://127.0.0.1:8000/predict

:class:`ImageUploadPredictor` turns either into decoded ``HxWx3`` uint8 arrays, one per image,
and answers mistakes with a status and a message: 413 too many images, bytes or pixels; 415 not
an image; 422 truncated/corrupt data, bad base64, or no images at all. A subclass implements
``predict_batch(images)`` (and ``metadata``); batching across requests is the server's job.
"""
from __future__ import annotations

import base64
import binascii
import io
from dataclasses import dataclass

import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field
from starlette.datastructures import FormData, UploadFile

from shared.serving import HTTPError, Predictor
from vision_app.common.images import BadImage, ImageLimits, decode_image


class ImageInstance(BaseModel):
    model_config = ConfigDict(extra="forbid")
    image_base64: str = Field(min_length=1, description="the image file's bytes, base64 (a data: URL prefix is fine)")


class ImagesRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    instances: list[ImageInstance] = Field(min_length=1)


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


def form_uploads(form: FormData, max_images: int, max_bytes: int) -> list[Upload]:
    """Every file part of a multipart form (any field name), in order."""
    files = [(key, v) for key, v in form.multi_items() if isinstance(v, UploadFile)]
    if not files:
        raise HTTPError(422, "the multipart form has no files; send one or more, e.g. curl -F file=@image.png")
    if len(files) > max_images:
        raise HTTPError(413, f"{len(files)} images in one request; the limit is {max_images}")
    uploads = []
    for key, f in files:
        name = f.filename or key
        data = f.file.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise HTTPError(413, f"{name}: over the per-image limit of {max_bytes:,} bytes")
        uploads.append(Upload(name, data))
    return uploads


def encode_base64_png(array: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


class ImageUploadPredictor(Predictor):
    """Base predictor for image models: parses and decodes uploads; ``predict_batch`` gets arrays."""

    request_model = ImagesRequest

    def __init__(self, limits: ImageLimits, max_images: int):
        self.limits, self.max_images = limits, max_images

    def from_form(self, form: FormData) -> BaseModel:
        return UploadedImages(files=form_uploads(form, self.max_images, self.limits.max_bytes))

    def uploads(self, body: BaseModel) -> list[Upload]:
        if isinstance(body, UploadedImages):
            return body.files
        if len(body.instances) > self.max_images:
            raise HTTPError(413, f"{len(body.instances)} images in one request; the limit is {self.max_images}")
        return [Upload(f"instances.{i}", decode_base64(inst.image_base64, f"instances.{i}"))
                for i, inst in enumerate(body.instances)]

    def items(self, body: BaseModel) -> list[np.ndarray]:
        images = []
        for up in self.uploads(body):
            try:
                images.append(np.asarray(decode_image(up.data, up.name, self.limits)))
            except BadImage as exc:
                raise HTTPError(exc.status, str(exc)) from None
        return images

    def example(self) -> dict:
        """A request with one small generated image (used for warm-up and on the demo page)."""
        rng = np.random.default_rng(0)
        img = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
        return {"instances": [{"image_base64": encode_base64_png(img)}]}
