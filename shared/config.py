"""Typed configs from YAML, with dotted ``key=value`` overrides.

Every task declares a pydantic model built on :class:`StrictModel` (unknown keys are an error).
``load_config`` reads the YAML, applies overrides such as ``train.epochs=3`` (values parsed as
YAML, so ``3`` is an int and ``[a, b]`` a list), validates, and on failure raises a
:class:`UserError` whose message names each bad key by its dotted path.
"""
from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar

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


def override_values(overrides: Iterable[str]) -> dict[tuple[str, ...], str]:
    """``{("data", "positive_class"): "Yes"}``: each override's dotted key and its raw text."""
    return {tuple(item.split("=", 1)[0].strip().split(".")): item.split("=", 1)[1]
            for item in overrides if "=" in item}


def validate(model: type[T], data: dict, source: str = "config", overrides: Iterable[str] = ()) -> T:
    """Validate ``data`` against ``model``; a failure names every bad key by its dotted path.

    An override whose YAML reading has the wrong type for a string field (``positive_class=Yes``
    read as a boolean, ``name=2024``) keeps its raw text; an error that an override caused names
    the override, not the recipe file.
    """
    raw = override_values(overrides)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
    retry = [e["loc"] for e in errors if e["type"] == "string_type" and tuple(map(str, e["loc"])) in raw]
    if retry:
        data = _deepcopy(data)
        for loc in retry:
            node = data
            for part in loc[:-1]:
                node = node[part]
            node[loc[-1]] = raw[tuple(map(str, loc))]
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            errors = exc.errors()
    in_file, in_overrides = [], []
    for err in errors:
        loc = tuple(str(p) for p in err["loc"])
        where = ".".join(loc) or "(top level)"
        problem = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        if loc in raw:
            in_overrides.append(f"{where}={raw[loc]}: {problem}")
        else:
            in_file.append(f"{where}: {problem}")
    parts = (["invalid command-line override " + "; ".join(in_overrides)] if in_overrides else []) + \
            ([f"invalid {source}: " + "; ".join(in_file)] if in_file else [])
    raise UserError("; ".join(parts)) from None


def load_config(model: type[T], path: str | os.PathLike, overrides: Iterable[str] = ()) -> T:
    """Load ``path`` as YAML (following ``base:``), apply overrides, validate against ``model``."""
    overrides = list(overrides)
    data = apply_overrides(read_recipe(path), overrides)
    return validate(model, data, source=str(path), overrides=overrides)


def read_recipe(path: str | os.PathLike) -> dict:
    """A recipe's YAML; ``base: other.yaml`` (relative to this file) is read first and this file's
    keys are merged over it, section by section (``-quick`` twins are a base plus a few overrides)."""
    path = Path(path)
    data = read_yaml(path)
    base = data.pop("base", None)
    if base is None:
        return data
    base_path = path.parent / base
    if base_path.resolve() == path.resolve():
        raise UserError(f"{path}: base: points at itself")
    return _merge(read_recipe(base_path), data)


def _merge(base: dict, over: dict) -> dict:
    out = _deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = _deepcopy(value)
    return out


def to_dict(cfg: BaseModel) -> dict:
    """The config as plain data (what goes in a run's ``config.yaml``)."""
    return cfg.model_dump(mode="json")


def _deepcopy(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _deepcopy(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_deepcopy(v) for v in obj]
    return obj


# --- recipes by name: configs/ ships as the mlref_recipes package (setup.py maps it) ---------------
RECIPES_PACKAGE = "mlref_recipes"  # configs/ shipped as package data (setup.py maps it)


def recipes_dir() -> Path | None:
    """The shipped recipes, ``<dir>/<app>/<name>.yaml``: the installed ``mlref_recipes`` package (an
    editable install maps it onto the checkout's ``configs/``), else a checkout's ``configs/``."""
    spec = importlib.util.find_spec(RECIPES_PACKAGE)
    # a namespace package's path can hold an editable install's hook entry next to the real folder
    for location in (spec.submodule_search_locations or []) if spec else []:
        if Path(location).is_dir():
            return Path(location)
    checkout = Path(__file__).resolve().parents[1]  # a clone used without installing it
    return checkout / "configs" if (checkout / "pyproject.toml").is_file() else None


def resolve_recipe(app: str, value: str | os.PathLike | None) -> str:
    """What ``--config value`` reads: ``value`` when that file exists, else the shipped recipe of
    that name, so ``sentiment-quick`` (and, outside a checkout, ``configs/nlp_app/sentiment-quick.yaml``)
    finds ``<recipes>/nlp_app/sentiment-quick.yaml``. Any other missing path is an error, never
    silently a shipped recipe of the same file name."""
    if value is None:
        raise UserError("give --config RECIPE (a YAML file or a shipped recipe's name)")
    path = Path(value)
    if path.exists():
        return str(value)
    root = recipes_dir()
    if root is not None and path.parent in (Path("."), Path("configs") / app):
        name = path.name if path.suffix in (".yaml", ".yml") else f"{path.name}.yaml"
        if (root / app / name).is_file():
            return str(root / app / name)
    known = sorted(p.stem for p in (root / app).glob("*.yaml")) if root and (root / app).is_dir() else []
    raise UserError(f"config file not found: {value}" + (f" ({app} recipes: {', '.join(known)})" if known else ""))
