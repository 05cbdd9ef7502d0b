"""tabular_mining's demo pages in Chromium: the churn record as a form, its probability bars and
per-feature contributions as a sorted chart; segments and rules as readable, rounded tables."""
from __future__ import annotations

import re
from contextlib import contextmanager

import pytest

pytestmark = pytest.mark.browser

# what a rounded number looks like on the page: 1234, 0.123, 12.34, 56.7%, 1.2e-5, –
ROUNDED = re.compile(r"^(–|[+-]?\d+(\.\d{1,3})?%?|[+-]?\d\.\de-\d+)$")


def cells(page, selector: str) -> list[str]:
    return page.locator(selector).all_inner_texts()


@contextmanager
def predicted(serve, ui, app: str, task: str):
    """Serve the task's run, open its page and send the example as it stands: the 200 answer,
    with the server still up for the block."""
    with serve(app, task) as url:
        ui.open(url)
        status, answer = ui.predict()
        assert status == 200
        yield answer


def type_text_in_a_number_field(page, text: str) -> None:
    """Make the first number field a text field holding ``text`` (a value of the wrong kind)."""
    page.evaluate("""text => { const i = document.querySelector('input[type=number][data-field]');
                               i.type = 'text'; i.dataset.kind = 'text'; i.value = text; }""", text)


def test_churn_shows_probability_bars_and_sorted_contributions(serve, ui, page, shoot):
    with serve("tabular_mining", "classify") as url:
        config = ui.open(url)
        record = config["example"]["instances"][0]
        # a categorical feature is a choice among the training categories, a numeric one a number box
        assert page.locator("select[data-field]").count() == sum(isinstance(v, str) for v in record.values())
        assert page.locator("input[type=number][data-field]").count() == sum(
            isinstance(v, (int, float)) for v in record.values())
        status, answer = ui.predict()
        assert status == 200
        pred = answer["predictions"][0]
        card = page.locator(".prediction")
        assert card.locator(".label").inner_text() == pred["label"]
        fills = card.locator(".bar-fill")
        assert fills.count() == 2
        widths = sorted(float(fills.nth(k).evaluate("e => parseFloat(e.style.width)")) for k in range(2))
        assert widths == pytest.approx(sorted([100 * pred["probability"], 100 * (1 - pred["probability"])]), abs=0.01)

        features = {k: v for k, v in pred["contributions"].items() if k != "(bias)"}
        chart = page.locator(".contributions")
        assert chart.locator(".bar-fill").count() == len(features)
        shown = [float(t) for t in cells(page, ".contributions .bar-value")]
        assert [abs(v) for v in shown] == sorted((abs(v) for v in shown), reverse=True)  # largest first
        expected = sorted(features.values(), key=abs, reverse=True)
        assert shown == pytest.approx(expected, abs=0.01)
        # towards the positive class to the right (class "up"), the other way to the left
        ups = chart.locator(".bar-fill.up").count()
        assert ups == sum(v >= 0 for v in features.values())
        shoot("tabular_mining-classify")
        ui.fits_phone("tabular_mining-classify")

        # a value of the wrong kind: the server's 422 message and the field it names
        type_text_in_a_number_field(page, "many")
        status, answer = ui.predict()
        assert status == 422 and answer["error"] in ui.error()
        assert answer["fields"][0]["field"] in ui.error()


def test_three_classes_show_a_bar_per_class_and_the_most_probable_label(serve, ui, page, shoot):
    with predicted(serve, ui, "tabular_mining", "penguins") as answer:
        pred = answer["predictions"][0]
        assert len(pred["probabilities"]) == 3 and answer["threshold"] is None
        card = page.locator(".prediction")
        assert card.locator(".label").inner_text() == pred["label"] == max(pred["probabilities"],
                                                                           key=pred["probabilities"].get)
        assert "the most probable class" in card.inner_text() and "threshold" not in card.inner_text()
        names = cells(page, ".prediction .bar-label")
        widths = [float(w) for w in card.locator(".bar-fill").evaluate_all("es => es.map(e => parseFloat(e.style.width))")]
        ordered = sorted(pred["probabilities"].items(), key=lambda kv: -kv[1])
        assert names == [k for k, _ in ordered]  # most probable first
        assert widths == pytest.approx([100 * v for _, v in ordered], abs=0.01)
        assert card.locator(".bar-fill.top").count() == 1
        assert page.locator(".contributions .bar-fill").count() == len(pred["contributions"]) - 1  # without bias
        shoot("tabular_mining-classify-3-classes")
        ui.fits_phone("tabular_mining-classify-3-classes")


def test_regression_shows_the_predicted_value_and_the_runs_errors(serve, ui, page, shoot):
    with predicted(serve, ui, "tabular_mining", "regress") as answer:
        value = answer["predictions"][0]["value"]
        meta = page.evaluate("fetch('/metadata').then(r => r.json())")
        card = page.locator(".prediction")
        assert card.inner_text().startswith(f"{meta['target']}: ")
        shown = card.locator(".label").inner_text()
        assert float(shown.replace(",", "")) == pytest.approx(value, rel=1e-3)
        hint = card.locator(".hint").inner_text()
        assert "On the run's test rows: RMSE" in hint and "R²" in hint
        shoot("tabular_mining-regress")
        ui.fits_phone("tabular_mining-regress")
        # a text in a number field: the server's 422 names the field, and the page says so
        type_text_in_a_number_field(page, "big")
        status, answer = ui.predict()
        assert status == 422 and answer["fields"][0]["field"] in ui.error()


def test_segments_are_readable_rounded_tables(serve, ui, page, shoot):
    with predicted(serve, ui, "tabular_mining", "segment") as answer:
        pred = answer["predictions"][0]
        assert page.locator(".prediction .label").inner_text() in (str(pred["segment"]), "noise (-1)")
        numbers = cells(page, "td.num")
        assert numbers and all(ROUNDED.match(t) for t in numbers), numbers
        assert page.locator(".prediction td.num").first.inner_text() == str(pred["segment"])
        # every segment listed, the record's own highlighted
        meta = page.evaluate("fetch('/metadata').then(r => r.json())")
        assert page.locator("tr.hit").count() == 1
        rows = page.locator("table").nth(1).locator("tbody tr")
        assert rows.count() == len(meta["segments"])
        shoot("tabular_mining-segment")
        ui.fits_phone("tabular_mining-segment")


def test_rules_show_recommendations_and_fired_rules(serve, ui, page, shoot):
    with serve("tabular_mining", "rules") as url:
        config = ui.open(url)
        basket = config["example"]["instances"][0]["items"]
        assert cells(page, ".chip") and len(cells(page, ".chip")) == len(basket)
        page.fill("#item", "no-such-item")
        page.press("#item", "Enter")
        assert len(cells(page, ".chip")) == len(basket) + 1
        status, answer = ui.predict()
        assert status == 200
        pred = answer["predictions"][0]
        assert "no-such-item" in page.locator(".note").inner_text()
        recs = page.locator("table.recommendations tbody tr")
        assert recs.count() == len(pred["recommendations"]) > 0
        for k, rec in enumerate(pred["recommendations"]):
            assert rec["item"] in recs.nth(k).inner_text()
        assert page.locator("table.rules tbody tr").count() == len(pred["rules"])
        numbers = cells(page, "td.num")
        assert numbers and all(ROUNDED.match(t) for t in numbers), numbers
        shoot("tabular_mining-rules")
        ui.fits_phone("tabular_mining-rules")
