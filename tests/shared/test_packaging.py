"""Packaging: the wheel ships the code and every recipe; `mlref <app> <stage>` (and the mlref-<app>
scripts) run any app; `--config NAME` finds a shipped recipe from any directory; each stage's
help lists its own options; MLREF_HOME moves runs and data."""
from __future__ import annotations

import importlib
import importlib.util
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from shared import runs
from shared.cli import run_app
from shared.config import StrictModel, recipes_dir, resolve_recipe
from shared.console import APPS, _app_of, mlref
from shared.errors import UserError
from shared.tasks import Task

ROOT = Path(__file__).resolve().parents[2]
RECIPES = sorted(p.relative_to(ROOT / "configs").as_posix() for p in (ROOT / "configs").glob("*/*.yaml"))


def test_the_wheel_ships_the_code_every_recipe_and_the_scripts(tmp_path):
    """A real (non-editable) wheel, built from a copy of the sources so the checkout stays clean."""
    pytest.importorskip("setuptools")  # built without isolation: no index is reached
    src = tmp_path / "src"
    skip = shutil.ignore_patterns("__pycache__", "*.pyc")
    src.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for folder in ("configs", "shared", *APPS.values()):
        shutil.copytree(ROOT / folder, src / folder, ignore=skip)
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path / "dist")], check=True, capture_output=True, timeout=300)
    (wheel,) = (tmp_path / "dist").glob("mlref-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert RECIPES and {f"mlref_recipes/{r}" for r in RECIPES} <= names
    assert {"shared/cli.py", "shared/tracking.py", *(f"{app}/tasks.py" for app in APPS.values())} <= names
    assert not any("__pycache__" in n for n in names)
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    scripts = zipfile.ZipFile(wheel).read(entry_points).decode()
    for script in ("mlref", *(f"mlref-{short}" for short in APPS)):
        assert f"{script} = shared.console:main" in scripts


def test_every_console_script_names_a_real_function_and_app():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert set(scripts) == {"mlref", *(f"mlref-{short}" for short in APPS)}
    for target in scripts.values():
        module, _, attr = target.partition(":")
        assert callable(getattr(importlib.import_module(module), attr))
    for app in APPS.values():
        assert importlib.util.find_spec(f"{app}.tasks") is not None, app


def test_a_bare_recipe_name_resolves_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # not the checkout: only the shipped recipes can answer
    shipped = recipes_dir() / "tabular_mining" / "churn-quick.yaml"
    assert resolve_recipe("tabular_mining", "churn-quick") == str(shipped)
    assert resolve_recipe("tabular_mining", "churn-quick.yaml") == str(shipped)
    assert resolve_recipe("tabular_mining", "configs/tabular_mining/churn-quick.yaml") == str(shipped)
    Path("churn-quick").write_text("name: mine\n")  # a file of that name here wins: paths come first
    assert resolve_recipe("tabular_mining", "churn-quick") == "churn-quick"
    with pytest.raises(UserError, match=r"config file not found: elsewhere/churn.yaml \(tabular_mining recipes: .*churn-quick"):
        resolve_recipe("tabular_mining", "elsewhere/churn.yaml")  # never silently the shipped churn
    with pytest.raises(UserError, match="give --config"):
        resolve_recipe("tabular_mining", None)


def test_mlref_runs_an_app_with_a_shipped_recipe_outside_the_checkout(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert mlref(["tabular", "train", "--config", "churn-quick", "--print-config"], prog="mlref") == 0
    config = json.loads(capsys.readouterr().out)
    assert config["name"] == "churn" and config["eval"]["cv_folds"] == 3  # base: churn.yaml was followed
    assert mlref(["preprocess", "--config", "churn-quick", "--print-config"], prog="mlref-tabular") == 0


def test_each_stage_help_lists_only_its_own_options(capsys):
    with pytest.raises(SystemExit) as done:
        mlref(["tabular", "train", "--help"], prog="mlref")
    assert done.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith("usage: mlref tabular train") and "--run" in text and "--print-config" in text
    assert not {"--input", "--output", "--host", "--port", "--data"} & set(text.split())
    with pytest.raises(SystemExit):
        mlref(["serve", "--help"], prog="mlref-tabular")
    text = capsys.readouterr().out
    assert "--host" in text and "--port" in text and "--data" not in text


def test_mlref_help_lists_the_apps_and_their_recipes_and_refuses_unknown_apps(capsys):
    assert mlref(["--help"], prog="mlref") == 0
    text = capsys.readouterr().out
    for short, app in APPS.items():
        assert short in text and app in text
    assert "sentiment-quick" in text and "churn-quick" in text
    assert mlref(["nope", "train"], prog="mlref") == 2
    assert "'nope' is not an app" in capsys.readouterr().err
    assert mlref([], prog="mlref") == 2


def test_the_app_comes_from_the_run(tmp_path):
    (tmp_path / "config.yaml").write_text("name: x\n")
    (tmp_path / "run.json").write_text(json.dumps({"app": "vision_app"}))
    assert _app_of(["serve", "--run", str(tmp_path)], "mlref") == ("vision_app", False)
    assert _app_of(["evaluate", f"--run={tmp_path}"], "mlref") == ("vision_app", False)
    assert _app_of(["nlp", "serve"], "mlref") == ("nlp_app", True)
    (tmp_path / "run.json").unlink()  # a run older than run.json: the app must be named
    with pytest.raises(UserError, match="does not say which app"):
        _app_of(["serve", "--run", str(tmp_path)], "mlref")


class Toy(StrictModel):
    name: str = "toy"
    task: str = "toy"


def test_mlref_home_moves_runs_and_data(tmp_path, monkeypatch):
    monkeypatch.delenv("MLREF_RUNS", raising=False)
    monkeypatch.delenv("MLREF_DATA", raising=False)
    monkeypatch.setenv("MLREF_HOME", str(tmp_path / "home"))
    assert runs.runs_root() == tmp_path / "home" / "runs" and runs.data_root() == tmp_path / "home" / "data"
    recipe = tmp_path / "toy.yaml"
    recipe.write_text("name: toy\n")
    tasks = {"toy": Task(config=Toy, help="toy", train=lambda cfg, run: {"test/score": 1.0})}
    assert run_app("app", tasks, argv=["train", "--config", str(recipe)]) == 0
    assert (tmp_path / "home" / "runs" / "app" / "toy" / "latest" / "metrics.json").exists()
    monkeypatch.setenv("MLREF_RUNS", str(tmp_path / "elsewhere"))  # the finer override still wins
    assert runs.runs_root() == tmp_path / "elsewhere" and runs.data_root() == tmp_path / "home" / "data"


def test_installed_mlref_script_answers_help():
    script = Path(sys.executable).parent / "mlref"
    if not script.exists():
        pytest.skip("mlref is not installed in this environment (pip install -e .)")
    done = subprocess.run([str(script), "--help"], check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "usage: mlref <app> <stage>" in done.stdout
