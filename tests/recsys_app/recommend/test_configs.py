"""The shipped recipes load, and config mistakes name the key."""
from pathlib import Path

import pytest

from recsys_app.config import RecsysConfig
from shared.config import load_config
from shared.errors import UserError

RECIPES = sorted(Path("configs/recsys_app").glob("*.yaml"))


@pytest.mark.parametrize("path", RECIPES, ids=[p.name for p in RECIPES])
def test_recipes_load_with_the_same_name(path):
    cfg = load_config(RecsysConfig, path)
    assert cfg.name == "movielens" and cfg.data.source == "movielens"


def test_bad_keys_and_values_name_the_key():
    path = "configs/recsys_app/movielens.yaml"
    with pytest.raises(UserError, match="model.ease.lambda: unknown key"):
        load_config(RecsysConfig, path, ["model.ease.lambda=3"])
    with pytest.raises(UserError, match="model.name"):
        load_config(RecsysConfig, path, ["model.name=als"])
    with pytest.raises(UserError, match="data.path"):
        load_config(RecsysConfig, path, ["data.source=file"])
    with pytest.raises(UserError, match="multiple of heads"):
        load_config(RecsysConfig, path, ["model.sasrec.heads=3"])
