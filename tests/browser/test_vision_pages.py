"""vision_app's demo pages in Chromium: the run's own test image offered as the example, more
images through the file picker and by drag and drop, then bars, boxes or masks drawn over them."""
from __future__ import annotations

import base64
import io
import os

import numpy as np
import pytest
from PIL import Image, ImageDraw

pytestmark = pytest.mark.browser
# the small run's boxes score low: show its best few at any score; a quick run's at the usual threshold
TRAINED = os.environ.get("MLREF_BROWSER_RUNS") == "quick"


def png(seed: int, size: int = 64) -> bytes:
    """A gradient with a bright filled shape on it."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(40, 200, size, dtype=np.float32)
    arr = np.stack([ramp[None, :].repeat(size, 0), ramp[:, None].repeat(size, 1), np.full((size, size), 90.0)], -1)
    img = Image.fromarray(arr.astype(np.uint8))
    x, y = rng.integers(4, size // 2, 2)
    ImageDraw.Draw(img).ellipse([int(x), int(y), int(x) + size // 3, int(y) + size // 3], fill=(240, 40, 40))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def add_images(page) -> list[str]:
    """One image through the file picker and one dropped on the drop zone; the example image is
    already there (the page adds it). Returns the names in upload order."""
    page.wait_for_selector(".thumb")  # the example image
    assert page.locator(".thumb figcaption").all_inner_texts() == ["example.png"]
    page.set_input_files("#files", files=[{"name": "picked.png", "mimeType": "image/png", "buffer": png(1)}])
    page.evaluate("""(b64) => {
        const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
        const data = new DataTransfer();
        data.items.add(new File([bytes], 'dropped.png', {type: 'image/png'}));
        document.getElementById('drop').dispatchEvent(new DragEvent('drop', {dataTransfer: data, bubbles: true, cancelable: true}));
    }""", base64.b64encode(png(2)).decode())
    names = page.locator(".thumb figcaption").all_inner_texts()
    assert names == ["example.png", "picked.png", "dropped.png"]
    return names


def is_test_image(config: dict) -> None:
    """The example is a real image (a PNG of the run's data), not generated noise."""
    assert config["example_image"] and config["example_image"].startswith("data:image/png;base64,")


def set_opacity(page, value: float) -> None:
    page.evaluate("""(v) => { const s = document.getElementById('opacity');
                              s.value = v; s.dispatchEvent(new Event('input')); }""", value)


def test_image_classification_bars_per_image(serve, ui, page, shoot):
    with serve("vision_app", "classify") as url:
        config = ui.open(url)
        is_test_image(config)
        names = add_images(page)
        status, answer = ui.predict()
        assert status == 200 and len(answer["predictions"]) == len(names)
        cards = page.locator(".prediction")
        assert cards.count() == len(names)
        for i, pred in enumerate(answer["predictions"]):
            assert cards.nth(i).locator("h3").inner_text() == names[i]
            assert cards.nth(i).locator(".label").inner_text() == pred["label"]
            assert cards.nth(i).locator(".bar-fill").count() == len(pred["top"])
            assert cards.nth(i).locator("img").evaluate("img => img.complete && img.naturalWidth > 0")
        shoot("vision_app-classify")
        ui.fits_phone("vision_app-classify")

        # not an image: the server's 415/422 message on the page
        page.evaluate("() => { let b; while ((b = document.querySelector('.thumb button'))) b.click(); }")
        page.evaluate("""() => {
            const data = new DataTransfer();
            data.items.add(new File([new Uint8Array([1, 2, 3])], 'broken.png', {type: 'image/png'}));
            document.getElementById('drop').dispatchEvent(new DragEvent('drop', {dataTransfer: data, bubbles: true}));
        }""")
        status, answer = ui.predict()
        assert status in (415, 422) and answer["error"] in ui.error()


def test_detection_draws_labelled_boxes(serve, ui, page, shoot):
    with serve("vision_app", "detect") as url:
        config = ui.open(url)
        is_test_image(config)
        names = add_images(page)
        page.fill("#score", "0.3" if TRAINED else "0")
        page.fill("#max_det", "20" if TRAINED else "5")
        status, answer = ui.predict()
        assert status == 200 and len(answer["predictions"]) == len(names)
        total = 0
        for i, pred in enumerate(answer["predictions"]):
            view = page.locator(".prediction").nth(i)
            boxes = view.locator("svg g.detection")
            assert boxes.count() == view.locator(".box-label").count() == len(pred["detections"]) <= 20
            assert view.locator("svg").get_attribute("viewBox") == f"0 0 {pred['width']} {pred['height']}"
            for k, det in enumerate(pred["detections"]):
                rect = boxes.nth(k).locator("rect.box")
                assert float(rect.get_attribute("x")) == pytest.approx(det["box"][0])
                assert float(rect.get_attribute("width")) == pytest.approx(det["box"][2] - det["box"][0])
                assert view.locator(".box-label").nth(k).inner_text().startswith(det["label"] + " ")
                # drawn, not just present: the box has a size on the screen
                size = rect.bounding_box()
                assert size and size["width"] > 0 and size["height"] > 0
            total += len(pred["detections"])
        assert total > 0, "there are boxes to draw"
        shoot("vision_app-detect")
        ui.fits_phone("vision_app-detect")


def canvas_pixels(page, index: int) -> list[int]:
    return page.evaluate("""(i) => {
        const c = document.querySelectorAll('canvas.segmented')[i];
        return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data);
    }""", index)


def test_segmentation_overlays_masks_with_legend_and_opacity(serve, ui, page, shoot):
    with serve("vision_app", "segment") as url:
        config = ui.open(url)
        is_test_image(config)
        names = add_images(page)
        status, answer = ui.predict()
        assert status == 200 and len(answer["predictions"]) == len(names)
        canvases = page.locator("canvas.segmented")
        assert canvases.count() == len(names)
        for i, pred in enumerate(answer["predictions"]):
            classes = list(pred["fractions"])
            card = page.locator(".prediction").nth(i)
            assert card.locator(".legend-item").count() == len(classes)
            # every pixel the mask gives a class other than the first is painted, and only those
            expected = round((1 - pred["fractions"][classes[0]]) * pred["width"] * pred["height"])
            assert int(canvases.nth(i).get_attribute("data-painted")) == pytest.approx(expected, abs=1)
            # the image itself is drawn: the canvas is not blank
            assert len(set(canvas_pixels(page, i))) > 3
        painted = [int(canvases.nth(i).get_attribute("data-painted")) for i in range(len(names))]
        assert sum(painted) > 0, "the small seeded run paints foreground classes somewhere"
        # the opacity slider changes what is drawn wherever a mask is painted
        set_opacity(page, 0)
        plain = [canvas_pixels(page, i) for i in range(len(names))]
        set_opacity(page, 1)
        for i in range(len(names)):
            assert (canvas_pixels(page, i) != plain[i]) == (painted[i] > 0)
        set_opacity(page, 0.6)
        shoot("vision_app-segment")
        ui.fits_phone("vision_app-segment")
