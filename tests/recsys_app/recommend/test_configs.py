"""The shipped recipes load into the recommend task's config, and config mistakes name the key."""
from pathlib import Path

import pytest

from recsys_app.recommend.config import RecsysConfig
from recsys_app.tasks import TASKS
from shared.config import load_config, read_yaml
from shared.errors import UserError

RECIPES = sorted(Path("configs/recsys_app").glob("*.yaml"))


@pytest.mark.parametrize("path", RECIPES, ids=[p.name for p in RECIPES])
def test_recipes_load_into_their_task_with_the_same_name(path):
    task = read_yaml(path).get("task") or read_yaml(path.parent / read_yaml(path)["base"])["task"]
    cfg = load_config(TASKS[task].config, path)
    assert cfg.task == "recommend" and cfg.name == "movielens" and cfg.data.source == "movielens"


def test_the_quick_twin_is_its_base_plus_a_few_overrides():
    quick = read_yaml("configs/recsys_app/movielens-quick.yaml")
    assert quick["base"] == "movielens.yaml" and "task" not in quick and "serve" not in quick
    full = load_config(RecsysConfig, "configs/recsys_app/movielens.yaml")
    cfg = load_config(RecsysConfig, "configs/recsys_app/movielens-quick.yaml")
    assert cfg.data.min_item_interactions == 5 and cfg.train.epochs == 2 and cfg.model.sasrec.dim == 32
    assert cfg.serve == full.serve and cfg.model.ease == full.model.ease


def test_bad_keys_and_values_name_the_key():
    path = "configs/recsys_app/movielens.yaml"
    with pytest.raises(UserError, match="model.ease.lambda=3: unknown key"):
        load_config(RecsysConfig, path, ["model.ease.lambda=3"])
    with pytest.raises(UserError, match="model.name"):
        load_config(RecsysConfig, path, ["model.name=bpr"])
    with pytest.raises(UserError, match="data.path"):
        load_config(RecsysConfig, path, ["data.source=file"])
    with pytest.raises(UserError, match="multiple of heads"):
        load_config(RecsysConfig, path, ["model.sasrec.heads=3"])
