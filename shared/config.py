"""Typed configs from YAML, with dotted ``key=value`` overrides.

Every task declares a pydantic model built on :class:`StrictModel` (unknown keys are an error).
``load_config`` reads the YAML, applies overrides such as ``train.epochs=3`` (values parsed as
YAML, so ``3`` is an int and ``[a, b]`` a list), validates, and on failure raises a
:class:`UserError` whose message names each bad key by its dotted path.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from shared.errors import UserError

T = TypeVar("T", bound=BaseModel)


class StrictModel(BaseModel):
    """Base for every config section: unknown keys fail, values are re-validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())


def read_yaml(path: str | os.PathLike) -> dict:
    path = Path(path)
    if not path.exists():
        raise UserError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise UserError(f"{path} is not valid YAML: {exc}".replace("\n", " ")) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"{path} must hold a mapping of keys to values, not {type(data).__name__}")
    return data


def apply_overrides(data: dict, overrides: Iterable[str]) -> dict:
    """Return a copy of ``data`` with each ``dotted.key=value`` applied (value parsed as YAML)."""
    out = _deepcopy(data)
    for item in overrides:
        if "=" not in item:
            raise UserError(f"override {item!r} must look like key=value, e.g. train.epochs=3")
        key, raw = item.split("=", 1)
        key = key.strip()
        if not key:
            raise UserError(f"override {item!r} has no key")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise UserError(f"override {key}: {part!r} is a value, not a section")
            node = child
        node[parts[-1]] = value
    return out


def validate(model: type[T], data: dict, source: str = "config") -> T:
    """Validate ``data`` against ``model``; a failure names every bad key by its dotted path."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "(top level)"
            if err["type"] == "extra_forbidden":
                problems.append(f"{where}: unknown key")
            else:
                problems.append(f"{where}: {err['msg']}")
        raise UserError(f"invalid {source}: " + "; ".join(problems)) from None


def load_config(model: type[T], path: str | os.PathLike, overrides: Iterable[str] = ()) -> T:
    """Load ``path`` as YAML, apply overrides, validate against ``model``."""
    data = apply_overrides(read_yaml(path), overrides)
    return validate(model, data, source=str(path))


def to_dict(cfg: BaseModel) -> dict:
    """The config as plain data (what goes in a run's ``config.yaml``)."""
    return cfg.model_dump(mode="json")


def _deepcopy(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _deepcopy(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_deepcopy(v) for v in obj]
    return obj
