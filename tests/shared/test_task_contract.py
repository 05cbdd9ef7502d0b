"""The task contract end to end on a toy task: run lifecycle (start, resume, finish, never
overwrite), config from the run after train, overrides honoured and named, one-line errors."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared import runs
from shared.cli import run_app
from shared.config import StrictModel, load_config
from shared.errors import UserError
from shared.tasks import Extra, Task


class Data(StrictModel):
    label: str = "x"
    positive_class: str | None = None


class ToyConfig(StrictModel):
    name: str = "toy"
    task: str = "toy"
    data: Data = Data()
    crash: bool = False
    steps: int = 2


class OtherConfig(StrictModel):
    name: str = "other"
    task: str = "other"


CALLS: list[tuple[str, Path, object]] = []


def train(cfg, run):
    CALLS.append(("train", run, cfg))
    (run / "progress.txt").write_text(str(int((run / "progress.txt").read_text() if (run / "progress.txt").exists() else 0) + 1))
    if cfg.crash:
        raise KeyboardInterrupt  # stands in for a kill in the middle of training
    return {"test/accuracy": 0.75, "steps": cfg.steps, "card": "## Toy section\\nwritten by the task\\n"}


def evaluate(cfg, run, data):
    CALLS.append(("evaluate", run, cfg))
    out = runs.evaluation_dir(run, data) if data else run
    runs.write_json(out / "metrics.json", {"data/label": cfg.data.label} if data else {"test/label": cfg.data.label})
    return {"label": cfg.data.label, "out": str(out)}


TASKS = {
    "toy": Task(config=ToyConfig, help="a toy", train=train, evaluate=evaluate,
                extra={"compare": Extra(lambda cfg, run: {"compare/best": 1.0}, "compare things")}),
    "other": Task(config=OtherConfig, help="another", train=lambda cfg, run: {}),
}


@pytest.fixture
def recipe(tmp_path, monkeypatch):
    monkeypatch.setenv("MLREF_RUNS", str(tmp_path / "runs"))
    CALLS.clear()
    path = tmp_path / "toy.yaml"
    path.write_text("name: toy\ntask: toy\n")
    return path


def test_train_finishes_a_run_with_card_status_and_latest(recipe):
    assert run_app("app", TASKS, argv=["train", "--config", str(recipe)]) == 0
    run = CALLS[-1][1]
    assert runs.run_status(run)["status"] == "finished"
    assert runs.latest_run("app", "toy") == run.resolve()
    assert json.loads((run / "metrics.json").read_text()) == {"test/accuracy": 0.75}
    card = (run / "README.md").read_text()
    assert card.startswith("---\n") and "library_name: mlref" in card and "## Toy section" in card
    assert "test/accuracy | 0.7500" in card


def test_same_command_resumes_the_unfinished_run_and_never_touches_a_finished_one(recipe):
    assert run_app("app", TASKS, argv=["train", "--config", str(recipe)]) == 0
    finished = CALLS[-1][1]
    assert run_app("app", TASKS, argv=["train", "--config", str(recipe), "crash=true"]) == 130
    crashed = CALLS[-1][1]
    assert crashed != finished and runs.run_status(crashed)["status"] == "running"
    # the same command again resumes the same directory
    assert run_app("app", TASKS, argv=["train", "--config", str(recipe), "crash=true"]) == 130
    assert CALLS[-1][1] == crashed and (crashed / "progress.txt").read_text() == "2"
    # another config does not resume it
    assert run_app("app", TASKS, argv=["train", "--config", str(recipe), "steps=3"]) == 0
    assert CALLS[-1][1] not in (crashed, finished)
    # --run DIR resumes that run (with overrides) and finishes it
    assert run_app("app", TASKS, argv=["train", "--run", str(crashed), "crash=false"]) == 0
    assert CALLS[-1][1] == crashed and runs.run_status(crashed)["status"] == "finished"
    assert runs.run_status(crashed)["resumed"] == 2
    # a finished run is refused
    assert run_app("app", TASKS, argv=["train", "--run", str(finished)]) == 2
    assert (finished / "progress.txt").read_text() == "1"


def test_stages_after_train_take_the_runs_config_with_overrides(recipe, tmp_path, capsys):
    assert run_app("app", TASKS, argv=["train", "--config", str(recipe), "data.label=trained"]) == 0
    run = CALLS[-1][1]
    assert run_app("app", TASKS, argv=["evaluate", "--run", str(run)]) == 0
    assert CALLS[-1][2].data.label == "trained"
    assert run_app("app", TASKS, argv=["evaluate", "--run", str(run), "data.label=Yes"]) == 0
    assert CALLS[-1][2].data.label == "Yes"  # a string field keeps the raw text, not YAML's True
    # no --run: the recipe's latest
    assert run_app("app", TASKS, argv=["evaluate", "--config", str(recipe)]) == 0
    assert CALLS[-1][1] == run.resolve()


def test_evaluating_files_writes_one_folder_per_file(recipe, tmp_path):
    assert run_app("app", TASKS, argv=["train", "--config", str(recipe)]) == 0
    run = CALLS[-1][1]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for folder in ("a", "b"):
        (tmp_path / folder / "new.csv").write_text("x\n1\n")
        assert run_app("app", TASKS, argv=["evaluate", "--run", str(run), "--data", str(tmp_path / folder / "new.csv")]) == 0
    assert sorted(p.name for p in (run / "evaluations").iterdir()) == ["new", "new-2"]
    assert json.loads((run / "metrics.json").read_text()) == {"test/accuracy": 0.75}  # untouched


def test_one_line_errors(recipe, tmp_path, capsys):
    other = tmp_path / "other.yaml"
    other.write_text("name: other\ntask: other\n")
    assert run_app("app", TASKS, argv=["train", "--config", str(recipe)]) == 0
    run = CALLS[-1][1]
    cases = [
        (["predict", "--run", str(run), "--input", "a", "--output", "b"], "the toy task has no predict stage"),
        (["evaluate", "--run", str(run), "--config", str(other)], "is a other recipe but"),
        (["evaluate", "--config", str(other)], "no finished run of recipe 'other'"),
        (["train", "--config", str(recipe), "steps=abc"], "invalid command-line override steps=abc"),
        (["train", "--config", str(recipe), "nope=1"], "invalid command-line override nope=1: unknown key"),
        (["evaluate", "--run", str(tmp_path / "missing")], "run directory not found"),
    ]
    for argv, message in cases:
        capsys.readouterr()
        assert run_app("app", TASKS, argv=argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert message in err and "\n" not in err, err
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\ntask: unknown\n")
    assert run_app("app", TASKS, argv=["train", "--config", str(bad)]) == 2
    assert "task 'unknown' is not a app task" in capsys.readouterr().err


def test_recipe_stage_extra_gets_its_own_run(recipe):
    assert run_app("app", TASKS, argv=["compare", "--config", str(recipe)]) == 0
    assert runs.latest_run("app", "toy-compare").exists()


def test_print_config(recipe, capsys):
    assert run_app("app", TASKS, argv=["train", "--config", str(recipe), "steps=5", "--print-config"]) == 0
    assert json.loads(capsys.readouterr().out)["steps"] == 5
    assert not CALLS


def test_base_recipe_merges_sections(tmp_path):
    (tmp_path / "full.yaml").write_text("name: toy\ntask: toy\nsteps: 10\ndata:\n  label: full\n  positive_class: a\n")
    (tmp_path / "full-quick.yaml").write_text("base: full.yaml\nsteps: 1\ndata:\n  label: quick\n")
    cfg = load_config(ToyConfig, tmp_path / "full-quick.yaml")
    assert (cfg.steps, cfg.data.label, cfg.data.positive_class) == (1, "quick", "a")
    (tmp_path / "loop.yaml").write_text("base: loop.yaml\n")
    with pytest.raises(UserError, match="points at itself"):
        load_config(ToyConfig, tmp_path / "loop.yaml")


def test_run_held_by_a_live_process_is_refused(recipe):
    import os
    import platform
    import subprocess

    assert run_app("app", TASKS, argv=["train", "--config", str(recipe), "crash=true"]) == 130
    crashed = CALLS[-1][1]
    other = subprocess.Popen(["sleep", "30"])
    try:
        status = runs.run_status(crashed)
        runs.write_json(crashed / runs.RUN_FILE, {**status, "host": platform.node(), "pid": other.pid})
        assert run_app("app", TASKS, argv=["train", "--run", str(crashed)]) == 2
        # the automatic resume passes it by and starts a new run instead
        assert run_app("app", TASKS, argv=["train", "--config", str(recipe), "crash=true"]) == 130
        assert CALLS[-1][1] != crashed
    finally:
        other.kill()
        other.wait()
    assert os.path.exists(crashed)
