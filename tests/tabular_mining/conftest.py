"""Small trained runs of every tabular_mining task, made once per session through the CLI
(``run_app``), and helpers to call the CLI and catch the server it would start."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from shared.cli import run_app
from shared.runs import latest_run
from tabular_mining.tasks import TASKS

APP = "tabular_mining"
CONFIGS = Path("configs/tabular_mining")
CHURN = str(CONFIGS / "churn-quick.yaml")
SEGMENTS = str(CONFIGS / "segments-quick.yaml")
RULES = str(CONFIGS / "rules-quick.yaml")
HOUSES = str(CONFIGS / "house_prices-quick.yaml")
# small enough for seconds on a shared CPU, large enough to learn something
CHURN_SMALL = ["name=churn-smoke", "data.sample=800", "eval.cv_folds=2",
               "model.xgboost.n_estimators=60", "model.lightgbm.n_estimators=60"]
SEGMENTS_SMALL = ["name=segments-smoke", "data.sample=600", "model.k_max=4", "model.n_init=1",
                  "eval.silhouette_sample=300"]
RULES_SMALL = ["name=rules-smoke"]
HOUSES_SMALL = ["name=house-prices-smoke", "data.sample=600", "model.xgboost.n_estimators=60",
                "model.lightgbm.n_estimators=60"]


def run_cli(*argv) -> int:
    """``python -m tabular_mining <argv>`` in this process; returns the exit status."""
    return run_app(APP, TASKS, default_config=CHURN, argv=[str(a) for a in argv])


def train(recipe: str, overrides: list[str]) -> Path:
    assert run_cli("train", "--config", recipe, *overrides) == 0
    name = next(o.split("=", 1)[1] for o in overrides if o.startswith("name="))
    return latest_run(APP, name)


@pytest.fixture(scope="session")
def cli():
    """``cli(*argv) -> exit status``: the app's command line, in this process."""
    return run_cli


@pytest.fixture
def cli_json(capsys):
    """``cli_json(*argv) -> dict``: run the command line, assert it succeeded, return its JSON summary."""
    def run(*argv) -> dict:
        capsys.readouterr()
        status = run_cli(*argv)
        captured = capsys.readouterr()
        assert status == 0, captured.err
        return json.loads(captured.out)

    return run


@pytest.fixture(scope="session")
def churn_run() -> Path:
    return train(CHURN, CHURN_SMALL)


@pytest.fixture(scope="session")
def segment_run() -> Path:
    return train(SEGMENTS, SEGMENTS_SMALL)


@pytest.fixture(scope="session")
def rules_run() -> Path:
    return train(RULES, RULES_SMALL)


@pytest.fixture(scope="session")
def regress_run() -> Path:
    return train(HOUSES, HOUSES_SMALL)


@pytest.fixture(scope="session")
def csv_files(tmp_path_factory):
    """``csv_files(folder, {file name: frame})``: the frames written as CSV files (a header, no
    index) into a new temporary folder, which it returns."""
    def write(folder: str, tables: dict[str, pd.DataFrame]) -> Path:
        root = tmp_path_factory.mktemp(folder)
        for name, frame in tables.items():
            frame.to_csv(root / name, index=False)
        return root

    return write


@pytest.fixture
def nothing_held_out(cli, capsys):
    """``nothing_held_out(run, key)``: a run trained with ``data.test_size=0`` reports ``key`` and
    no ``test/`` metric, and ``evaluate`` without ``--data`` stops with the one-line error."""
    def check(run: Path, key: str) -> None:
        metrics = json.loads((run / "metrics.json").read_text())
        assert key in metrics and not any(k.startswith("test/") for k in metrics)
        capsys.readouterr()
        assert cli("evaluate", "--run", run) == 2
        assert "has no test split (data.test_size=0)" in capsys.readouterr().err

    return check


@pytest.fixture
def served(monkeypatch):
    """``served(*argv)``: run the ``serve`` stage through the CLI, but hand back the FastAPI app
    the app factory built instead of starting a server (with the ``host``/``port`` it would use)."""
    from shared.serving.testing import intercept_serve

    def run(*argv: str) -> dict:
        caught = intercept_serve(monkeypatch)
        assert run_cli("serve", *argv, "serve.load_in_background=false") == 0
        return caught

    return run
