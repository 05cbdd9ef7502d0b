"""Every recipe under configs/vision_app loads into its task's config; each ``-quick`` twin is its
recipe (``base:``) plus a few overrides, under the same name (the same runs/ folder)."""
from pathlib import Path

import pytest
import yaml

from shared.config import load_config, read_recipe
from vision_app.tasks import TASKS

RECIPES = sorted(Path("configs/vision_app").glob("*.yaml"))


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_recipe_loads_into_its_task(path):
    task = read_recipe(path)["task"]
    cfg = load_config(TASKS[task].config, path)
    assert cfg.task == task and cfg.name == path.stem.removesuffix("-quick")


# the model keys a quick twin may shrink (segment-quick: a half-width U-Net buys twice the steps;
# detect-quick: 96² input, about half the cost of a 128² step)
QUICK_MODEL_KEYS = {"segment-quick": {"width"}, "detect-quick": {"input_size"}}


@pytest.mark.parametrize("path", [p for p in RECIPES if p.stem.endswith("-quick")], ids=lambda p: p.name)
def test_quick_twin_is_base_plus_overrides(path):
    raw = yaml.safe_load(path.read_text())
    base = path.parent / raw["base"]
    allowed = QUICK_MODEL_KEYS.get(path.stem, set())
    assert base.stem == path.stem.removesuffix("-quick") and "name" not in raw
    assert set(raw.get("model", {})) <= allowed, f"{path.name} overrides model keys beyond {sorted(allowed)}"
    model = TASKS[read_recipe(path)["task"]].config
    quick, full = load_config(model, path), load_config(model, base)
    assert quick.model.model_copy(update={k: getattr(full.model, k) for k in allowed}) == full.model
    assert quick.train.epochs < full.train.epochs


def test_runs_saved_with_the_former_serve_limit_names_still_load():
    from vision_app.classify.config import ClassifyConfig

    cfg = ClassifyConfig.model_validate({"serve": {"max_images": 5, "max_image_pixels": 1000}})
    assert cfg.serve.max_instances == 5 and cfg.serve.max_item_cost == 1000
    assert cfg.serve.limits().max_pixels == 1000
