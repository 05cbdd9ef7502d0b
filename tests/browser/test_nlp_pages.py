"""nlp_app's demo pages in Chromium: probability bars per text, the QA answer marked in its
context, NER entities highlighted by type; the server's error message shown as it is."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser


def test_text_classification_draws_a_bar_per_class(serve, ui, page, shoot):
    with serve("nlp_app", "classify") as url:
        config = ui.open(url)
        assert config["title"].startswith("mlref nlp_app · classify · ") and page.title() == config["title"]
        status, answer = ui.predict()
        assert status == 200
        cards = page.locator(".prediction")
        assert cards.count() == len(config["example"]["instances"]) == len(answer["predictions"])
        for i, pred in enumerate(answer["predictions"]):
            card = cards.nth(i)
            assert card.locator(".quote").inner_text() == config["example"]["instances"][i]
            assert card.locator(".label").inner_text() == pred["label"]
            fills = card.locator(".bar-fill")
            assert fills.count() == len(pred["probabilities"])
            # the bars are the probabilities, best first
            widths = [float(fills.nth(k).evaluate("e => parseFloat(e.style.width)")) for k in range(fills.count())]
            assert widths == sorted(widths, reverse=True)
            assert widths[0] == pytest.approx(100 * max(pred["probabilities"].values()), abs=0.01)
        shoot("nlp_app-classify")
        ui.fits_phone("nlp_app-classify")

        # a refused request: the server's own message, on the page
        page.fill("#texts", "好" * 5000)
        status, answer = ui.predict()
        assert status in (413, 422) and answer["error"] in ui.error()
        assert page.locator(".prediction").count() == 0


def test_qa_marks_the_answer_in_its_context(serve, ui, page, shoot):
    with serve("nlp_app", "qa") as url:
        config = ui.open(url)
        status, answer = ui.predict()
        assert status == 200
        pred, inst = answer["predictions"][0], config["example"]["instances"][0]
        card = page.locator(".prediction").first
        assert card.locator(".quote").inner_text() == "Q: " + inst["question"]
        if pred["answer"] and pred["end"] > pred["start"]:
            mark = card.locator("mark.answer")
            assert mark.count() == 1 and mark.inner_text() == pred["answer"]
            # the span sits where the server says: the text before it is the context up to start
            before = card.locator(".marked").evaluate("p => p.firstChild.textContent")
            assert before == inst["context"][: pred["start"]]
        else:  # an untrained-enough model may find none: the page says so instead of marking
            assert "No answer" in card.inner_text()
        shoot("nlp_app-qa")
        ui.fits_phone("nlp_app-qa")


def test_ner_highlights_entities_by_type(serve, ui, page, shoot):
    with serve("nlp_app", "ner") as url:
        ui.open(url)
        text = "张伟在北京接受了新华社的采访。\n王芳在上海接受了人民日报的采访。"
        page.fill("#texts", text)
        status, answer = ui.predict()
        assert status == 200
        found = [e for p in answer["predictions"] for e in p["entities"]]
        assert found, "the model trained on these templates tags something in them"
        marks = page.locator("mark.ent")
        assert marks.count() == len(found)
        for k, e in enumerate(found):
            assert marks.nth(k).get_attribute("data-type") == e["type"]
            assert marks.nth(k).evaluate("m => m.firstChild.textContent") == e["text"]
        # one colour per type, and a legend entry for each type found
        colours = {e["type"]: marks.nth(k).evaluate("m => getComputedStyle(m).borderBottomColor") for k, e in enumerate(found)}
        assert len(set(colours.values())) == len(colours)
        assert page.locator(".legend-item").count() == len(colours)
        shoot("nlp_app-ner")
        ui.fits_phone("nlp_app-ner")
