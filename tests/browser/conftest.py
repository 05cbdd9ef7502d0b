"""The demo pages in a real browser: Debian's Chromium driven by Playwright (``make test-browser``).

Every test here is marked ``browser`` (``pytestmark`` in each module) and skipped, with the reason, when the ``playwright``
package or a Chromium binary is missing (``MLREF_CHROMIUM`` names one; else ``chromium`` on the
PATH), so the fast suite never fails for want of a browser. Each task's quick recipe is trained
once per session, with a few overrides that keep the whole suite within minutes on 2 CPU cores,
the first time a test asks for it; the server is built by the CLI's own ``serve`` stage
(:func:`shared.serving.testing.intercept_serve`) and run for real (``running_server``).

Screenshots: every test saves one per page under its tmp dir, and into ``$MLREF_SCREENSHOTS``
(a folder) when that is set, as ``<app>-<task>.png``. ``MLREF_BROWSER_RUNS=quick`` trains the
plain quick recipes instead (slower; what the README's screenshots were made with).
"""
from __future__ import annotations

import os
import random
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from shared.cli import run_app
from shared.runs import latest_run

BROWSER_ENV = "MLREF_CHROMIUM"
SHOTS_ENV = "MLREF_SCREENSHOTS"
DESKTOP = {"width": 1024, "height": 800}
PHONE = {"width": 375, "height": 740}
PEOPLE, PLACES, ORGS = ["张伟", "王芳", "李娜", "刘洋"], ["北京", "上海", "广州"], ["新华社", "人民日报"]


def chromium_path() -> str | None:
    """The Chromium to drive: ``$MLREF_CHROMIUM``, else ``chromium`` / ``chromium-browser`` on the PATH."""
    given = os.environ.get(BROWSER_ENV)
    if given:
        return given if Path(given).is_file() else None
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="session")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (make test-browser)")
    path = chromium_path()
    if path is None:
        pytest.skip("no Chromium found (apt-get install chromium, or set MLREF_CHROMIUM); make test-browser")
    with sync_api.sync_playwright() as pw:
        # --no-sandbox: the tests often run as root (containers, CI), where Chromium's sandbox cannot start
        browser = pw.chromium.launch(executable_path=path, headless=True, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport=DESKTOP, device_scale_factor=1)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.js_errors = errors
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


# ---------------------------------------------------------------- the runs
def _ner_files(root: Path) -> list[str]:
    """Templated character-BIO sentences (a person, a place, an organisation): learnt in seconds."""
    rng = random.Random(0)
    paths = []
    for split, n in (("train", 300), ("valid", 30), ("test", 30)):
        rows = []
        for _ in range(n):
            parts = [(rng.choice(PEOPLE), "PER"), ("在", None), (rng.choice(PLACES), "LOC"), ("接受了", None),
                     (rng.choice(ORGS), "ORG"), ("的采访。", None)]
            for text, etype in parts:
                rows += [f"{ch} {'O' if etype is None else ('B-' if k == 0 else 'I-') + etype}" for k, ch in enumerate(text)]
            rows.append("")
        path = root / f"{split}.bio"
        path.write_text("\n".join(rows) + "\n", encoding="utf-8")
        paths.append(str(path))
    return paths


TINY_BERT = ["model.hidden_size=32", "model.num_layers=1", "model.num_heads=2", "model.intermediate_size=64",
             "train.device=cpu", "train.progress=false"]


def recipes(tmp: Path) -> dict[tuple[str, str], tuple[str, list[str]]]:
    """``(app, task) → (recipe, overrides)``: the quick recipe of each served task, made small."""
    train, valid, test = _ner_files(tmp)
    quick = os.environ.get("MLREF_BROWSER_RUNS") == "quick"
    small = {
        ("nlp_app", "classify"): ["data.max_examples=400", "model.max_length=48", "train.max_steps=30", *TINY_BERT],
        ("nlp_app", "qa"): ["data.generated_size=200", "train.max_steps=30", "train.progress=false", *TINY_BERT],
        ("nlp_app", "ner"): [],  # the templated data is already small
        ("tabular_mining", "classify"): ["data.sample=800", "eval.cv_folds=2", "model.xgboost.n_estimators=60",
                                         "model.lightgbm.n_estimators=60"],
        ("tabular_mining", "segment"): ["data.sample=600", "model.k_max=4", "model.n_init=1",
                                        "eval.silhouette_sample=300"],
        ("tabular_mining", "rules"): [],
        ("tabular_mining", "regress"): ["model.xgboost.n_estimators=60", "model.lightgbm.n_estimators=60"],
        ("tabular_mining", "penguins"): ["eval.cv_folds=2", "model.xgboost.n_estimators=60",
                                         "model.lightgbm.n_estimators=60"],
        ("vision_app", "classify"): ["train.max_steps=10", "eval.worst=4", "train.progress=false"],
        # a few steps of a small U-Net on 32 px images paint foreground classes (seeded); after an
        # epoch or two it paints only background until it learns the shapes, which takes minutes
        ("vision_app", "segment"): ["data.n_images=60", "data.image_size=32", "augment.size=32", "model.depth=2",
                                    "model.width=8", "train.max_steps=6", "train.lr=0.01", "eval.overlays=1",
                                    "train.progress=false"],
        ("vision_app", "detect"): ["data.shapes_images=40", "train.epochs=1", "eval.draw_images=1",
                                   "train.progress=false"],
        ("recsys_app", "recommend"): ["eval.plot=false"],
    }
    ner = ["data.source=splits", f"data.train={train}", f"data.valid={valid}", f"data.test={test}",
           "model.max_length=32", "train.max_steps=60", "train.lr=0.003", "train.progress=false", *TINY_BERT[:4]]
    base = {
        ("nlp_app", "classify"): "configs/nlp_app/sentiment-quick.yaml",
        ("nlp_app", "qa"): "configs/nlp_app/qa-quick.yaml",
        ("nlp_app", "ner"): "configs/nlp_app/ner-quick.yaml",
        ("tabular_mining", "classify"): "configs/tabular_mining/churn-quick.yaml",
        ("tabular_mining", "segment"): "configs/tabular_mining/segments-quick.yaml",
        ("tabular_mining", "rules"): "configs/tabular_mining/rules-quick.yaml",
        ("tabular_mining", "regress"): "configs/tabular_mining/house_prices-quick.yaml",
        ("tabular_mining", "penguins"): "configs/tabular_mining/penguins.yaml",  # classify, three classes
        ("vision_app", "classify"): "configs/vision_app/classify-quick.yaml",
        ("vision_app", "segment"): "configs/vision_app/segment-quick.yaml",
        ("vision_app", "detect"): "configs/vision_app/detect-quick.yaml",
        ("recsys_app", "recommend"): "configs/recsys_app/movielens-quick.yaml",
    }
    out = {}
    for key, recipe in base.items():
        extra = ner if key == ("nlp_app", "ner") else ([] if quick else small[key])
        out[key] = (recipe, [f"name=browser-{key[1]}", *extra])
    return out


def tasks_of(app: str) -> dict:
    if app == "nlp_app":
        from nlp_app.tasks import TASKS
    elif app == "tabular_mining":
        from tabular_mining.tasks import TASKS
    elif app == "vision_app":
        from vision_app.tasks import TASKS
    else:
        from recsys_app.tasks import TASKS
    return TASKS


@pytest.fixture(scope="session")
def trained(browser, tmp_path_factory):
    """``trained(app, task) → run dir``: the task's small quick run, trained on first use (after the
    browser fixture, so a missing browser skips before anything is trained)."""
    table = recipes(tmp_path_factory.mktemp("browser-data"))
    done: dict[tuple[str, str], Path] = {}

    def get(app: str, task: str) -> Path:
        if (app, task) not in done:
            recipe, overrides = table[(app, task)]
            t0 = time.perf_counter()
            assert run_app(app, tasks_of(app), argv=["train", "--config", recipe, *overrides]) == 0, (app, task)
            print(f"trained {app} {task} in {time.perf_counter() - t0:.0f}s")
            done[(app, task)] = latest_run(app, f"browser-{task}")
        return done[(app, task)]

    return get


@pytest.fixture
def serve(trained, monkeypatch):
    """``with serve(app, task, *overrides) as url``: the CLI's ``serve`` stage over the task's run,
    run for real on a free port."""
    from shared.serving.testing import intercept_serve, running_server

    @contextmanager
    def start(app: str, task: str, *overrides: str) -> Iterator[str]:
        run = trained(app, task)
        caught = intercept_serve(monkeypatch)
        argv = ["serve", "--run", str(run), "serve.load_in_background=false", *overrides]
        assert run_app(app, tasks_of(app), argv=argv) == 0
        with running_server(caught["app"], caught["cfg"], timeout_s=120) as url:
            yield url

    return start


@pytest.fixture
def shoot(page, tmp_path):
    """``shoot(name)``: a full-page screenshot into the test's tmp dir and ``$MLREF_SCREENSHOTS``."""

    def take(name: str) -> Path:
        path = tmp_path / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        target = os.environ.get(SHOTS_ENV)
        if target:
            Path(target).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, Path(target) / path.name)
        return path

    return take


class UI:
    """What a test does on a page: open it, press Predict, check the layout at phone width."""

    def __init__(self, page, shoot):
        self.page, self.shoot = page, shoot

    def open(self, url: str) -> dict:
        """Load the page and wait until its form is built; returns the page's config block."""
        self.page.goto(url)
        self.page.wait_for_selector("body[data-state=ready]")
        return self.page.evaluate("JSON.parse(document.getElementById('page-config').textContent)")

    def predict(self) -> tuple[int, dict]:
        """Press Predict; wait for the answer to be drawn (or the error shown). Returns the
        server's status and JSON, as the page received them."""
        with self.page.expect_response(lambda r: r.url.endswith("/predict")) as info:
            self.page.click("#predict")
        self.page.wait_for_selector("body[data-state=done], body[data-state=error]")
        return info.value.status, info.value.json()

    def error(self) -> str:
        box = self.page.locator("#error")
        return box.inner_text() if box.is_visible() else ""

    def fits_phone(self, name: str) -> None:
        """At 375 px nothing sticks out sideways (the page does not scroll horizontally)."""
        self.page.set_viewport_size(PHONE)
        width = self.page.evaluate("document.documentElement.scrollWidth")
        # and no table squeezed to a letter per line (wide tables scroll inside their wrapper)
        squeezed = self.page.evaluate("""() => [...document.querySelectorAll('th, td')].filter(
            (c) => c.textContent.trim().length > 3 && c.getBoundingClientRect().width < 32).length""")
        self.shoot(f"{name}-phone")
        self.page.set_viewport_size(DESKTOP)
        assert width <= PHONE["width"], f"the page is {width}px wide at {PHONE['width']}px"
        assert not squeezed, f"{squeezed} table cells squeezed narrower than 32px at {PHONE['width']}px"


@pytest.fixture
def ui(page, shoot) -> UI:
    return UI(page, shoot)
