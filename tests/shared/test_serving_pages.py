"""The demo page at / without a browser: the kind it draws, what it embeds, what it never embeds,
and that every served predictor names a kind the page knows (tests/browser drives the pages)."""
from __future__ import annotations

import importlib
import inspect
import io
import json
import re
import threading

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from shared.serving import Predictor, ServeConfig, StrictRequest, create_app
from shared.serving.pages import KINDS, image_data_url, page_kind
from shared.serving.testing import EchoPredictor

SERVE_MODULES = ["nlp_app.classify.serve", "nlp_app.qa.serve", "nlp_app.ner.serve", "tabular_mining.classify.serve",
                 "tabular_mining.regress.serve", "tabular_mining.segment.serve", "tabular_mining.rules.serve", "vision_app.classify.serve",
                 "vision_app.segment.serve", "vision_app.detect.serve", "recsys_app.recommend.serve"]


def page_config(html: str) -> dict:
    blob = re.search(r'<script id="page-config" type="application/json">(.*?)</script>', html, re.DOTALL).group(1)
    return json.loads(blob)


def png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (4, 3), (200, 10, 10)).save(buf, format="PNG")
    return buf.getvalue()


class Texts(StrictRequest):
    instances: list[str]


class Sneaky(Predictor):
    """A text model whose example would close a <script> element if embedded carelessly."""

    page = "text-classify"
    request_model = Texts

    def predict_batch(self, items):
        return [len(x) for x in items]

    def example(self):
        return {"instances": ["</script><script>alert(1)</script>"]}

    def example_image(self):
        return png()


def get_page(predictor, **cfg) -> str:
    with TestClient(create_app(predictor, ServeConfig(load_in_background=False, **cfg), title="mlref a · b · c")) as c:
        r = c.get("/")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        return r.text


def test_the_page_embeds_kind_example_and_image_safely():
    html = get_page(Sneaky)
    config = page_config(html)
    assert config["kind"] == "text-classify" and config["ready"] and not config["auth"]
    assert config["example"] == {"instances": ["</script><script>alert(1)</script>"]}  # round-trips...
    assert "<script>alert(1)" not in html  # ...without closing the script element
    assert config["example_image"].startswith("data:image/png;base64,")
    assert "<title>mlref a · b · c</title>" in html and 'data-kind="text-classify"' in html


def test_the_generic_page_keeps_the_predict_button_and_json():
    html = get_page(EchoPredictor)
    assert page_config(html)["kind"] == "json" and "Predict" in html


def test_auth_is_announced_not_leaked(monkeypatch):
    monkeypatch.setenv("PAGE_TOKEN", "s3cret")
    html = get_page(EchoPredictor, auth_token_env="PAGE_TOKEN")
    assert page_config(html)["auth"] is True and "s3cret" not in html


def test_nothing_on_the_page_comes_from_elsewhere():
    html = get_page(Sneaky)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "@import" not in html and "url(http" not in html and "@font-face" not in html


def test_before_the_model_loads_the_page_says_so_with_the_type_kind():
    release = threading.Event()

    def slow():
        release.wait(5)
        return Sneaky()

    app = create_app(slow, ServeConfig(load_in_background=True), predictor_type=Sneaky)
    with TestClient(app) as c:
        config = page_config(c.get("/").text)
        assert config["kind"] == "text-classify" and config["ready"] is False and config["example"] is None
        release.set()


def test_unknown_kinds_and_images_fall_back():
    class Odd(Predictor):
        page = "hologram"

    assert page_kind(Odd) == "json" and page_kind(None) == "json"
    assert image_data_url(b"not an image") is None and image_data_url(None) is None
    assert image_data_url(b"\xff\xd8\xff" + b"0" * 10).startswith("data:image/jpeg;base64,")
    assert image_data_url(b"\x89PNG\r\n\x1a\n" + b"0" * 3_000_000) is None  # too large to inline


@pytest.mark.parametrize("module", SERVE_MODULES)
def test_every_served_predictor_has_a_page_of_its_own(module):
    mod = importlib.import_module(module)
    mine = [cls for _, cls in inspect.getmembers(mod, inspect.isclass)
            if issubclass(cls, Predictor) and cls.__module__ == module]
    assert mine, module
    for cls in mine:
        assert cls.page in KINDS and cls.page != "json", (module, cls.__name__)
