"""The demo page at ``GET /``: one self-contained HTML page per served model, drawn in the browser
by the renderer of the predictor's ``page`` kind (see docs/demo-pages.md).

The page is ``page.html`` with ``page.css`` and ``page.js`` inlined and a JSON block of what the
renderers need: the title, the kind, the predictor's ``example()`` request, its
``example_image()`` (as a data URL) and whether a bearer token is required. Everything else
(``/metadata``, ``/predict``) the page fetches itself, with the token a person types into it, so
the page holds no more than ``example()`` already shows and is no more open than
``serve.public_routes`` makes ``/``. Nothing is loaded from elsewhere: no CDN, no web fonts.

Kinds (a predictor's ``page`` class attribute; ``"json"``, the request as editable JSON, by default):
``text-classify``, ``ner``, ``qa``, ``tabular-classify``, ``regress``, ``segments``, ``rules``, ``recommend``,
``image-classify``, ``image-segment``, ``image-detect``.
"""
from __future__ import annotations

import base64
import html
import json
import logging
from functools import cache
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
KINDS = ("json", "text-classify", "ner", "qa", "tabular-classify", "regress", "segments", "rules", "recommend",
         "image-classify", "image-segment", "image-detect")
# an example image larger than this is left off the page (it is inlined as a data URL)
MAX_EXAMPLE_IMAGE_BYTES = 2_000_000
_IMAGE_TYPES = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"), (b"GIF8", "image/gif"),
                (b"BM", "image/bmp"))


@cache
def _template() -> str:
    read = lambda name: (HERE / name).read_text(encoding="utf-8")
    return read("page.html").replace("/*{{CSS}}*/", read("page.css")).replace("/*{{JS}}*/", read("page.js"))


def page_kind(predictor: Any) -> str:
    """The predictor's (class or instance) ``page`` kind; an unknown or missing one is ``"json"``."""
    kind = getattr(predictor, "page", "json") if predictor is not None else "json"
    if kind not in KINDS:
        log.warning("unknown demo page kind %r; showing the JSON page", kind)
        return "json"
    return kind


def image_data_url(data: bytes | None) -> str | None:
    """An image file's bytes as a ``data:`` URL (PNG, JPEG, GIF, BMP), or None when it is none of
    those or too large to inline."""
    if not data or len(data) > MAX_EXAMPLE_IMAGE_BYTES:
        return None
    for magic, mime in _IMAGE_TYPES:
        if data.startswith(magic):
            return f"data:{mime};base64,{base64.b64encode(data).decode()}"
    return None


def page_config(predictor: Any, predictor_type: type | None, title: str, auth: bool) -> dict:
    """What the page's script reads: title, kind, example request and image, auth, readiness."""
    example, image = None, None
    if predictor is not None:
        try:
            example = predictor.example()
        except Exception:  # an example is a convenience: the page still works without one
            log.warning("predictor.example() failed; the demo page has no example", exc_info=True)
        hook = getattr(predictor, "example_image", None)
        if hook is not None:
            try:
                image = image_data_url(hook())
            except Exception:
                log.warning("predictor.example_image() failed; the demo page has no example image", exc_info=True)
    return {"title": title, "kind": page_kind(predictor if predictor is not None else predictor_type),
            "example": example, "example_image": image, "auth": auth, "ready": predictor is not None}


def render_page(config: dict) -> str:
    """The HTML of the page for ``config`` (:func:`page_config`)."""
    # JSON inside <script>: no "<" at all, so nothing in it can close the element or open a comment
    blob = json.dumps(config, ensure_ascii=False).replace("<", "\\u003c").replace(">", "\\u003e")
    return (_template().replace("{{TITLE}}", html.escape(config["title"]))
            .replace("{{KIND}}", html.escape(config["kind"])).replace("{{CONFIG}}", blob))
