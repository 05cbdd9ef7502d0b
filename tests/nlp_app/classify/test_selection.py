"""``model.name: all`` (the recipes' default): the baseline and the BERT on one split, the better on
the validation split served, evaluated and exported; ``serve.model`` picks the other; the table in
the run and its card."""
import json
import shutil

import pytest
from fastapi.testclient import TestClient

from nlp_app.classify.model import load_classifier, model_dir
from nlp_app.classify.selection import pick_best
from nlp_app.tasks import TASKS
from shared import runs
from shared.cli import run_config
from shared.serving import create_app

QUICK = "configs/nlp_app/sentiment-quick.yaml"
TINY = ["data.max_examples=300", "model.hidden_size=32", "model.num_layers=1", "model.num_heads=2",
        "model.intermediate_size=64", "model.max_length=48", "train.batch_size=16", "train.max_steps=4",
        "train.device=cpu", "train.progress=false"]


@pytest.fixture(scope="module")
def both_run(cli):
    assert cli("train", "--config", QUICK, *TINY) == 0  # model.name: all, from the recipe
    return runs.latest_run("nlp_app", "sentiment")


@pytest.fixture(scope="module")
def bert_served_run(cli):
    """A run of both models where the BERT is the one selected (selection forced: a tiny BERT trained
    for 4 steps never wins on merit), to check everything after train follows ``selection.json``."""
    patch = pytest.MonkeyPatch()
    patch.setattr("nlp_app.classify.train.pick_best", lambda scores, metric: "bert")
    try:
        assert cli("train", "--config", QUICK, *TINY, "train.seed=1") == 0
    finally:
        patch.undo()
    return runs.latest_run("nlp_app", "sentiment")


def _served(run):
    return runs.read_json(run / "selection.json")["served"]


def test_both_models_are_trained_and_the_better_on_validation_is_served(both_run):
    selection = runs.read_json(both_run / "selection.json")
    assert selection["models"] == ["baseline", "bert"] and selection["by"] == "valid/accuracy"
    assert selection["served"] == pick_best({m: {"valid/accuracy": v} for m, v in selection["valid"].items()},
                                            "accuracy")
    metrics = runs.load_metrics(both_run)
    served = selection["served"]
    for name in ("baseline", "bert"):
        assert (both_run / "models" / name).is_dir()
        assert {f"valid/accuracy_{name}", f"test/accuracy_{name}", f"train/wall_seconds_{name}"} <= set(metrics)
    assert metrics["test/accuracy"] == metrics[f"test/accuracy_{served}"]  # the headline is the served model's
    assert metrics["valid/accuracy"] == selection["valid"][served]
    rows = runs.read_json(both_run / "comparison.json")
    assert [r["model"] for r in rows] == ["baseline", "bert"] and [r["served"] for r in rows].count(True) == 1
    table = (both_run / "comparison.md").read_text(encoding="utf-8")
    assert f"**{served}** (served)" in table
    assert "## Models trained on this split" in (both_run / "README.md").read_text(encoding="utf-8")
    assert (both_run / "confusion_test.png").exists()


def test_evaluate_gives_back_the_score_train_wrote_for_the_served_model(both_run, cli, capsys):
    capsys.readouterr()
    assert cli("evaluate", "--run", both_run) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["model"] == _served(both_run)
    written = runs.read_json(both_run / "evaluations" / "test-split" / "metrics.json")
    assert written["test/accuracy"] == pytest.approx(runs.load_metrics(both_run)["test/accuracy"])


def test_serve_model_scores_the_other_model(both_run, cli, capsys):
    other = "bert" if _served(both_run) == "baseline" else "baseline"
    capsys.readouterr()
    assert cli("evaluate", "--run", both_run, f"serve.model={other}") == 0
    assert json.loads(capsys.readouterr().out)["model"] == other
    written = runs.read_json(both_run / "evaluations" / "test-split" / "metrics.json")
    assert written[f"test/accuracy_{other}"] == pytest.approx(runs.load_metrics(both_run)[f"test/accuracy_{other}"])
    assert "test/accuracy" in written  # the served model's keys stay beside them


def test_serving_follows_the_selection_and_serve_model(bert_served_run):
    assert _served(bert_served_run) == "bert"
    for override, expected in (([], "bert"), (["serve.model=baseline"], "baseline")):
        _, task, cfg = run_config("nlp_app", TASKS, bert_served_run, [*override, "serve.load_in_background=false"])
        predictor = task.predictor(cfg, bert_served_run)
        with TestClient(create_app(lambda p=predictor: p, cfg.serve)) as client:
            assert client.get("/metadata").json()["model"] == expected
            assert client.post("/predict", json={"instances": ["很好"]}).status_code == 200


def test_export_writes_the_served_bert_and_refuses_a_served_baseline(both_run, bert_served_run, cli, capsys):
    assert cli("export", "--run", bert_served_run) == 0
    assert (bert_served_run / "models" / "bert" / "model.onnx").exists()
    assert runs.read_json(bert_served_run / "export.json")["folder"] == "models/bert"
    if _served(both_run) == "baseline":
        capsys.readouterr()
        assert cli("export", "--run", both_run) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "TF-IDF baseline" in err[0] and "serve.model=bert" in err[0]
        assert cli("export", "--run", both_run, "serve.model=bert", "export.quantize=false") == 0
        assert (both_run / "models" / "bert" / "model.onnx").exists()


def test_a_classify_run_is_a_pretrained_start(bert_served_run, cli):
    """``model.pretrained`` may name a classification run: its BERT folder is the model directory."""
    assert cli("train", "--config", QUICK, *TINY, "model.name=bert", f"model.pretrained={bert_served_run}") == 0
    run = runs.latest_run("nlp_app", "sentiment")
    assert json.loads((run / "models/bert/tokenizer.json").read_text())["model"]["vocab"] == \
        json.loads((bert_served_run / "models/bert/tokenizer.json").read_text())["model"]["vocab"]


def test_a_run_of_the_older_one_model_layout_still_loads(both_run, tmp_path):
    old = tmp_path / "old-run"
    shutil.copytree(both_run / "models" / "baseline", old)
    shutil.copy(both_run / "config.yaml", old / "config.yaml")
    assert model_dir(old) == old.resolve()
    clf = load_classifier(old)
    assert clf.name == "baseline" and clf.predict_proba(["很好"]).shape == (1, 2)


def test_pick_best():
    scores = {"baseline": {"valid/accuracy": 0.8, "valid/log_loss": 0.5},
              "bert": {"valid/accuracy": 0.8, "valid/log_loss": 0.4}}
    assert pick_best(scores, "accuracy") == "baseline"  # a tie: the first listed
    assert pick_best(scores, "log_loss") == "bert"  # lower is better
    scores["bert"]["valid/accuracy"] = 0.81
    assert pick_best(scores, "accuracy") == "bert"
