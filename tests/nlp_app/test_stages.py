"""The task × stage matrix through the real CLI: every stage of every task either works on a tiny
run (with ``--run`` and no ``--config``: the task comes from the run) or is a one-line error with
exit status 2. Every recipe under configs/nlp_app loads into its task's config."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from nlp_app.ner.data import write_bio
from nlp_app.tasks import TASKS
from shared import runs
from shared.config import read_recipe, read_yaml, validate
from shared.serving.testing import intercept_serve

HAS = {task: set(t.stages()) for task, t in TASKS.items()}
PREDICT_INPUT = {
    "classify": "这本书写得很好，值得一读。\n质量太差了，再也不买了。\n",
    "qa": json.dumps({"question": "张伟出生于哪里？", "context": "张伟出生于北京。他是工程师。"}, ensure_ascii=False) + "\n",
    "ner": "张伟在北京接受了新华社的采访。\n王芳\n",
}


def _one_line_error(capsys, *expected: str) -> None:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0], err
    for text in expected:
        assert text in err[0], err[0]


@pytest.mark.parametrize("path", sorted(Path("configs/nlp_app").glob("*.yaml")), ids=lambda p: p.name)
def test_every_recipe_loads_into_its_task_config(path):
    data = read_recipe(path)
    cfg = validate(TASKS[data["task"]].config, data, source=str(path))
    assert cfg.name and cfg.task == data["task"]


@pytest.mark.parametrize("quick", sorted(Path("configs/nlp_app").glob("*-quick.yaml")), ids=lambda p: p.name)
def test_quick_twins_are_their_recipe_plus_a_few_overrides(quick):
    base = read_yaml(quick).get("base")
    assert base == quick.name.replace("-quick", "")
    assert read_recipe(quick)["name"] == read_recipe(quick.parent / base)["name"]  # same runs folder


def test_runs_saved_with_the_old_serve_limit_names_still_load():
    from nlp_app.classify.config import ClassifyConfig

    cfg = ClassifyConfig.model_validate({"serve": {"max_texts": 3, "max_chars": 10}})
    assert (cfg.serve.max_instances, cfg.serve.max_item_cost) == (3, 10)


def test_the_tasks_have_the_stages_the_guide_promises():
    assert HAS["classify"] == {"preprocess", "train", "evaluate", "predict", "export", "serve", "compare"}
    assert HAS["qa"] == HAS["ner"] == {"preprocess", "train", "evaluate", "predict", "export", "serve"}
    assert HAS["pretrain"] == {"preprocess", "train", "evaluate"}


@pytest.mark.parametrize("task", list(TASKS))
def test_preprocess(task, recipes, cli):
    path, overrides = recipes[task]
    assert cli("preprocess", "--config", path, *overrides) == 0


@pytest.mark.parametrize("task", list(TASKS))
def test_evaluate_with_the_run_only(task, trained, capsys, cli):
    run = trained(task)
    capsys.readouterr()  # training's own output
    before = runs.load_metrics(run)
    assert cli("evaluate", "--run", run) == 0
    summary = json.loads(capsys.readouterr().out)
    written = run / "evaluations" / "test-split" / "metrics.json"
    assert summary["run"] == str(run) and Path(summary["written"]) == written
    assert written.exists() and all(k.startswith("test/") for k in runs.read_json(written))
    assert runs.load_metrics(run) == before  # train's record is left alone


@pytest.mark.parametrize("task", list(TASKS))
def test_predict_with_the_run_only(task, trained, tmp_path, capsys, cli):
    run = trained(task)
    capsys.readouterr()  # training's own output
    source, out = tmp_path / "in.txt", tmp_path / "out.jsonl"
    if task not in PREDICT_INPUT:
        assert cli("predict", "--run", run, "--input", source, "--output", out) == 2
        return _one_line_error(capsys, f"the {task} task has no predict stage")
    source.write_text(PREDICT_INPUT[task], encoding="utf-8")
    assert cli("predict", "--run", run, "--input", source, "--output", out) == 0
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == PREDICT_INPUT[task].count("\n")


@pytest.mark.parametrize("task", ["classify", "ner"])
def test_predict_to_stdout_prints_only_the_lines(task, trained, tmp_path, capsys, cli):
    run = trained(task)
    capsys.readouterr()
    source = tmp_path / "in.txt"
    source.write_text("张伟在北京。\n", encoding="utf-8")
    assert cli("predict", "--run", run, "--input", source, "--output", "-") == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["text"] == "张伟在北京。"


@pytest.mark.parametrize("task", list(TASKS))
def test_export_with_the_run_only(task, trained, capsys, cli):
    run = trained(task)
    capsys.readouterr()  # training's own output
    if "export" not in HAS[task]:
        assert cli("export", "--run", run) == 2
        return _one_line_error(capsys, f"the {task} task has no export stage")
    if task == "classify":  # the tiny run serves its baseline (no ONNX form): export its BERT
        assert cli("export", "--run", run, "serve.model=bert") == 0
        assert (run / "models" / "bert" / "model.onnx").exists()
        return
    assert cli("export", "--run", run) == 0
    assert (run / "model.onnx").exists()


@pytest.mark.parametrize("task", list(TASKS))
def test_serve_with_the_run_only(task, trained, monkeypatch, capsys, cli):
    """``serve --run DIR`` serves the run's own task (the NER bug: it used to load a classifier)."""
    run = trained(task)
    capsys.readouterr()
    caught = intercept_serve(monkeypatch)
    quick = ["serve.load_in_background=false"] if "serve" in HAS[task] else []  # a pretrain run has no serve: section
    code = cli("serve", "--run", run, *quick)
    if "serve" not in HAS[task]:
        assert code == 2
        return _one_line_error(capsys, f"the {task} task has no serve stage")
    assert code == 0
    with TestClient(caught["app"]) as client:
        assert client.get("/readyz").status_code == 200
        metadata = client.get("/metadata").json()
        assert metadata["task"] == task and metadata["run"] == run.name
        r = client.post("/predict", json=_example(task))
        assert r.status_code == 200, r.text
        assert len(r.json()["predictions"]) == len(_example(task)["instances"])
        assert "/predict" in client.get("/openapi.json").json()["paths"]


def _example(task: str) -> dict:
    return {"classify": {"instances": ["很好", "太差了"]},
            "qa": {"instances": [{"question": "张伟出生于哪里？", "context": "张伟出生于北京。"}]},
            "ner": {"instances": [{"text": "张伟在北京。"}]}}.get(task, {"instances": ["x"]})


@pytest.mark.parametrize("task", ["pretrain", "qa", "ner"])
def test_compare_is_a_one_line_error_for_the_other_tasks(task, recipes, capsys, cli):
    path, overrides = recipes[task]
    assert cli("compare", "--config", path, *overrides) == 2
    _one_line_error(capsys, f"the {task} task has no compare stage")


def test_evaluate_a_pretrain_recipe_never_trained_is_one_line(tmp_path, monkeypatch, capsys, cli):
    monkeypatch.setenv("MLREF_RUNS", str(tmp_path / "empty"))
    assert cli("evaluate", "--config", "configs/nlp_app/pretrain.yaml") == 2
    _one_line_error(capsys, "no finished run of recipe 'pretrain'")


def test_evaluate_a_pretrain_recipe_scores_its_latest_run(trained, recipes, capsys, cli):
    trained("pretrain")
    capsys.readouterr()
    run = runs.latest_run("nlp_app", "pretrain")  # other tests may have pre-trained since
    assert cli("evaluate", "--config", recipes["pretrain"][0]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["run"] == str(run) and 0 <= summary["test/masked_accuracy"] <= 1


def test_a_recipe_of_another_task_than_the_run_is_refused(trained, recipes, capsys, cli):
    run = trained("classify")
    capsys.readouterr()
    assert cli("evaluate", "--run", run, "--config", recipes["ner"][0]) == 2
    _one_line_error(capsys, "is a ner recipe but")


@pytest.mark.parametrize("task, suffix, make", [
    ("classify", ".csv", lambda: "review,stars\n很好,pos\n太差了,neg\n一般般吧,neg\n"),
    ("ner", ".bio", None),
    ("pretrain", ".txt", lambda: "这本书写得很好。\n质量太差了，再也不买了。\n"),
])
def test_evaluate_a_file_writes_evaluations_stem(task, suffix, make, trained, make_ner_sentences, tmp_path, capsys, cli):
    run = trained(task)
    capsys.readouterr()  # training's own output
    before = runs.load_metrics(run)
    data = tmp_path / f"mine{suffix}"
    if make is None:
        write_bio(make_ner_sentences(5, seed=7), data)
    else:
        data.write_text(make(), encoding="utf-8")
    columns = ["data.text_column=review", "data.label_column=stars"] if task == "classify" else []
    assert cli("evaluate", "--run", run, "--data", data, *columns) == 0
    out = run / "evaluations" / "mine"
    values = runs.read_json(out / "metrics.json")
    assert values and all(k.startswith("data/") for k in values)
    assert runs.load_metrics(run) == before  # the run's own metrics are left alone
    if task == "classify":
        assert (out / "confusion_data.png").exists() and values["data/accuracy"] in (0, 1 / 3, 2 / 3, 1)
        capsys.readouterr()
        assert cli("evaluate", "--run", run, "--data", data) == 2  # without the overrides: no 'text' column
        _one_line_error(capsys, "data.text_column")
