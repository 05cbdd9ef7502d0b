import pytest
from pydantic import Field

from shared.config import StrictModel, apply_overrides, load_config
from shared.errors import UserError


class Train(StrictModel):
    epochs: int = 1
    lr: float = 1e-3


class Recipe(StrictModel):
    name: str
    train: Train = Field(default_factory=Train)
    tags: list[str] = Field(default_factory=list)


def write(tmp_path, text):
    p = tmp_path / "r.yaml"
    p.write_text(text)
    return p


def test_loads_and_applies_dotted_overrides(tmp_path):
    cfg = load_config(Recipe, write(tmp_path, "name: a\ntrain:\n  epochs: 2\n"), ["train.lr=0.1", "tags=[x, y]"])
    assert cfg.train.epochs == 2 and cfg.train.lr == 0.1 and cfg.tags == ["x", "y"]


def test_unknown_key_is_named_by_path(tmp_path):
    with pytest.raises(UserError, match=r"train\.epoch: unknown key"):
        load_config(Recipe, write(tmp_path, "name: a\ntrain:\n  epoch: 2\n"))


def test_wrong_type_is_named_by_path(tmp_path):
    with pytest.raises(UserError, match=r"train\.epochs"):
        load_config(Recipe, write(tmp_path, "name: a\n"), ["train.epochs=many"])


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_config(Recipe, tmp_path / "nope.yaml")
    with pytest.raises(UserError, match="not valid YAML"):
        load_config(Recipe, write(tmp_path, "name: [unclosed\n"))


def test_override_without_equals_is_an_error():
    with pytest.raises(UserError, match="key=value"):
        apply_overrides({}, ["train.epochs"])


def test_override_does_not_mutate_input():
    data = {"train": {"epochs": 1}}
    apply_overrides(data, ["train.epochs=5"])
    assert data["train"]["epochs"] == 1
