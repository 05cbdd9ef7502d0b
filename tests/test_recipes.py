"""Every file under configs/ loads into its task's config through the CLI's own reader, and every
``-quick`` twin is ``base: <recipe>.yaml`` plus overrides, not a copy."""
from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import yaml

from shared.cli import recipe_config

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
RECIPES = sorted(p for p in CONFIGS.glob("*/*.yaml"))


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_recipe_loads_into_its_tasks_config(path):
    app = path.parent.name
    tasks = importlib.import_module(f"{app}.tasks").TASKS
    name, task, cfg = recipe_config(app, tasks, str(path), [])
    assert task.config is type(cfg) and cfg.task == name


@pytest.mark.parametrize("path", [p for p in RECIPES if p.stem.endswith("-quick")], ids=lambda p: p.name)
def test_quick_twin_is_its_recipe_plus_overrides(path):
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert raw.get("base") == path.name.replace("-quick", ""), f"{path} should start from its full recipe"
    assert (path.parent / raw["base"]).exists()


def test_every_app_has_recipes():
    assert {p.parent.name for p in RECIPES} == {"nlp_app", "tabular_mining", "vision_app", "recsys_app"}
