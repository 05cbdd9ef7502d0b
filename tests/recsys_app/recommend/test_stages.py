"""The recommend task × every stage, on the quick recipe (embedded MovieLens, EASE): each stage
works through ``run_app`` (stages after train with ``--run`` and no ``--config``), and a stage the
task lacks is one line on stderr with exit status 2."""
import json

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from recsys_app.tasks import TASKS
from shared.cli import run_app
from shared.runs import read_json, run_status, runs_root

from .conftest import served_app

QUICK = "configs/recsys_app/movielens-quick.yaml"


def cli(*argv: str) -> int:
    return run_app("recsys_app", TASKS, "configs/recsys_app/movielens.yaml", list(argv))


@pytest.fixture(scope="module")
def run():
    assert cli("preprocess", "--config", QUICK) == 0
    assert cli("train", "--config", QUICK, "eval.plot=false") == 0
    return (runs_root() / "recsys_app" / "movielens" / "latest").resolve()


def test_every_stage_is_declared_or_refused():
    assert TASKS["recommend"].stages() == ["preprocess", "train", "evaluate", "predict", "export", "serve",
                                           "compare", "tune"]


def test_train_finished_a_run(run):
    assert run_status(run)["status"] == "finished" and run_status(run)["recipe"] == "movielens"
    metrics = read_json(run / "metrics.json")
    assert metrics["test/users"] == 671 and 0.03 < metrics["test/ndcg@10"] < 0.06


def test_evaluate_with_run_only(run):
    before = read_json(run / "metrics.json")["test/ndcg@10"]
    assert cli("evaluate", "--run", str(run)) == 0
    assert read_json(run / "metrics.json")["test/ndcg@10"] == pytest.approx(before, abs=1e-9)


def test_predict_with_run_only(run, tmp_path):
    pd.DataFrame({"userId": [1, 2, 999999]}).to_csv(tmp_path / "users.csv", index=False)
    assert cli("predict", "--run", str(run), "--input", str(tmp_path / "users.csv"),
               "--output", str(tmp_path / "recs.csv"), "serve.default_k=3") == 0
    recs = pd.read_csv(tmp_path / "recs.csv")
    assert len(recs) == 9 and recs.groupby("user")["fallback"].first().to_dict() == {1: False, 2: False, 999999: True}


def test_serve_with_run_only(run, monkeypatch):
    caught = served_app(monkeypatch, cli, "--run", str(run), "serve.load_in_background=false")
    with TestClient(caught["app"]) as client:
        assert client.get("/readyz").status_code == 200
        r = client.post("/predict", json={"instances": [{"user": 1, "k": 3}]})
        assert r.status_code == 200 and len(r.json()["predictions"][0]["items"]) == 3
        assert client.get("/metadata").json()["task"] == "recommend"


def test_compare_gets_its_own_run(run):
    assert cli("compare", "--config", QUICK, "eval.compare_models=[popularity,ease]", "eval.plot=false") == 0
    compare = (runs_root() / "recsys_app" / "movielens-compare" / "latest").resolve()
    assert run_status(compare)["status"] == "finished"
    assert read_json(compare / "metrics.json")["test/ease/ndcg@10"] == pytest.approx(
        read_json(run / "metrics.json")["test/ndcg@10"])


def test_tune_gets_its_own_run(run):
    assert cli("tune", "--config", QUICK, "tune.models=[ease]", "tune.n_trials=2", "eval.plot=false") == 0
    tune_run = (runs_root() / "recsys_app" / "movielens-tune" / "latest").resolve()
    best = read_json(tune_run / "best_params.json")["models"]["ease"]
    assert 0 < best["recipe_value"] <= best["value"] < 1 and best["trials"] == 2


def test_export_with_run_only(run):
    assert cli("export", "--run", str(run)) == 0
    assert (run / "export" / "model.safetensors").exists() and (run / "export" / "items.json").exists()


def test_a_stage_the_task_lacks_is_a_one_line_error(run, capsys, monkeypatch):
    import dataclasses

    lacking = {"recommend": dataclasses.replace(TASKS["recommend"], export=None)}
    assert run_app("recsys_app", lacking, argv=["export", "--run", str(run)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    expected = ("recsys_app export: error: the recommend task has no export stage; it has: "
                "preprocess, train, evaluate, predict, serve, compare, tune")
    assert err == [expected]


def test_a_run_of_another_app_is_refused(run, tmp_path, capsys):
    other = tmp_path / "other-run"
    other.mkdir()
    (other / "config.yaml").write_text("name: x\ntask: classify\n")
    (other / "run.json").write_text(json.dumps({"app": "vision_app", "status": "finished"}))
    assert cli("evaluate", "--run", str(other)) == 2
    assert "is a vision_app run" in capsys.readouterr().err


def test_a_run_saved_under_the_old_task_name_says_to_train_again(run, tmp_path, capsys):
    import shutil

    import yaml

    old = tmp_path / "old-topk-run"
    shutil.copytree(run, old, ignore=shutil.ignore_patterns("checkpoints", "export", "*.onnx"))
    config = yaml.safe_load((old / "config.yaml").read_text())
    assert config["task"] == "recommend"
    (old / "config.yaml").write_text(yaml.safe_dump({**config, "task": "topk"}))
    for argv in (["evaluate", "--run", str(old)], ["serve", "--run", str(old)]):
        capsys.readouterr()
        assert cli(*argv) == 2
        err = capsys.readouterr().err.strip()
        assert "trained as task 'topk'" in err and "train it again" in err and "\n" not in err, err
