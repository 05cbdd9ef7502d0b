"""recsys_app's demo page in Chromium: the recommended titles in order, with why (the history used,
or the fallback reason)."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser


def test_recommendations_list_titles_and_why(serve, ui, page, shoot):
    with serve("recsys_app", "recommend") as url:
        config = ui.open(url)
        queries = config["example"]["instances"]
        status, answer = ui.predict()
        assert status == 200
        cards = page.locator(".prediction")
        assert cards.count() == len(queries) == len(answer["predictions"])
        for i, pred in enumerate(answer["predictions"]):
            items = cards.nth(i).locator("ol.recs li")
            assert items.count() == len(pred["items"]) > 0
            titles = cards.nth(i).locator("ol.recs .title").all_inner_texts()
            assert titles == [r["title"] or f"item {r['item']}" for r in pred["items"]]
            reason = cards.nth(i).locator(".reason").inner_text()
            assert ("popular" in reason) == pred["fallback"]
            assert "Because of" in reason or pred["fallback"]
        shoot("recsys_app-recommend")
        ui.fits_phone("recsys_app-recommend")

        # a user the run has never seen: the most popular items, and the server's reason
        page.fill("#user0", "no-such-user")
        status, answer = ui.predict()
        assert status == 200 and answer["predictions"][0]["fallback"]
        reason = page.locator(".prediction .reason").first.inner_text()
        assert answer["predictions"][0]["fallback_reason"] in reason

        # k beyond the recipe's serve.max_k: the 422 and the field it names, on the page
        page.fill("#k0", "100000")
        status, answer = ui.predict()
        assert status == 422 and answer["error"] in ui.error() and "instances.0.k" in ui.error()
