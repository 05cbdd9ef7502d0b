"""What every demo page does whatever its kind: the token field when the server wants a token,
the server's error shown as it is, a page that waits for the model, nothing fetched from elsewhere."""
from __future__ import annotations

import threading

import pytest

from shared.serving import ServeConfig, create_app
from shared.serving.testing import EchoPredictor, running_server

pytestmark = pytest.mark.browser


def test_token_field_when_auth_is_on(serve, ui, page, monkeypatch):
    monkeypatch.setenv("MLREF_API_TOKEN", "s3cret")
    with serve("tabular_mining", "segment") as url:
        page.goto(url)
        page.wait_for_selector("body[data-state=ready]")
        assert page.locator("#auth").is_visible()
        # no token yet: /metadata and /predict answer 401, and the page says what the server says
        assert "bearer token" in ui.error()
        status, answer = ui.predict()
        assert status == 401 and answer["error"] in ui.error()
        page.fill("#token", "s3cret")
        page.click("#token-save")
        page.wait_for_selector("body[data-state=ready]")
        assert page.evaluate("localStorage.getItem('mlref_token')") == "s3cret"
        status, answer = ui.predict()
        assert status == 200 and not ui.error()
        assert page.locator(".prediction").count() == 1
        # kept in the browser: a reload sends it again
        page.reload()
        page.wait_for_selector("body[data-state=ready]")
        status, _ = ui.predict()
        assert status == 200


def test_page_waits_for_the_model_then_reloads(page):
    release = threading.Event()

    def slow_load():
        release.wait(20)
        return EchoPredictor()

    cfg = ServeConfig(load_in_background=True)
    with running_server(create_app(slow_load, cfg, title="mlref test · echo · slow"), cfg) as url:
        page.goto(url)
        assert "loading" in page.locator("#status").inner_text()
        assert page.locator("#predict").is_disabled()
        release.set()
        page.wait_for_selector("body[data-state=ready]", timeout=15_000)  # reloaded, form built
        assert page.locator("#status").is_hidden()
        with page.expect_response(lambda r: r.url.endswith("/predict")) as info:
            page.click("#predict")
        page.wait_for_selector("body[data-state=done]")
        assert info.value.json() == {"predictions": [2.0]}


def test_nothing_is_fetched_from_elsewhere(browser):
    """The page works offline: every request it makes goes to the server that served it."""
    cfg = ServeConfig(load_in_background=False)
    context = browser.new_context()
    page = context.new_page()
    hosts: list[str] = []
    page.on("request", lambda r: hosts.append(r.url.split("/")[2] if "://" in r.url else r.url[:5]))
    with running_server(create_app(EchoPredictor, cfg, title="echo"), cfg) as url:
        page.goto(url)
        page.wait_for_selector("body[data-state=ready]")
        page.click("#predict")
        page.wait_for_selector("body[data-state=done]")
    context.close()
    own = url.split("/")[2]
    assert hosts and all(h == own for h in hosts), hosts
