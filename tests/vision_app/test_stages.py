"""The task × stage matrix through the command line (``shared.cli.run_app``): every stage of every
task works on a run trained a few steps, with ``--run`` and no ``--config`` for the stages after
``train``, or answers with one line and exit status 2; ``evaluate --data`` writes
``evaluations/<stem>/``; overrides are honoured; a finished run is never trained over, an
unfinished one is resumed."""
import json

import pytest
import yaml
from fastapi.testclient import TestClient

from shared.runs import RUN_FILE, latest_run, read_json, write_json
from shared.serving.testing import intercept_serve
from shared.tasks import STAGES

KEYS = ("classify", "segment", "yolo", "fasterrcnn")
TEST_METRIC = {"classify": "test/accuracy", "segment": "test/mean_iou", "yolo": "test/map_50",
               "fasterrcnn": "test/map_50"}


def _input(key, data_dir, trained):
    if key == "classify":
        return data_dir / "imgs" / "a" / "1.png"
    cfg = yaml.safe_load((trained[key] / "config.yaml").read_text())
    source = "shapes-32px-24-s2" if key == "segment" else f"shapes-detect-n12-s64-seed{cfg['data']['seed']}"
    images = sorted((trained[key].parents[3] / "data" / "generated" / source / "images").glob("*.png"))
    return images[0] if images else None


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("key", KEYS)
def test_stage(key, stage, trained, recipes, data_dir, cli, capsys, monkeypatch, tmp_path):
    run = trained[key]
    if stage == "preprocess":
        assert cli("preprocess", "--config", recipes[key]) == 0
    elif stage == "train":
        assert json.loads((run / "metrics.json").read_text())[TEST_METRIC[key]] >= 0
        assert read_json(run / RUN_FILE)["status"] == "finished"
    elif stage == "evaluate":  # gives back the score train wrote, in evaluations/test-split/
        before = read_json(run / "metrics.json")
        assert cli("evaluate", "--run", run) == 0
        again = read_json(run / "evaluations" / "test-split" / "metrics.json")
        assert again[TEST_METRIC[key]] == pytest.approx(before[TEST_METRIC[key]], abs=1e-6)
        assert read_json(run / "metrics.json") == before  # train's record is never rewritten
    elif stage == "predict":
        out = tmp_path / "out"
        image = _input(key, data_dir, trained)
        assert cli("predict", "--run", run, "--input", image, "--output", out) == 0
        assert out.exists()
    elif stage == "export":
        code = cli("export", "--run", run)
        if key == "fasterrcnn":
            err = capsys.readouterr().err.strip().splitlines()
            assert code == 2 and len(err) == 1 and "yolo detector only" in err[0]
        else:
            assert code == 0 and (run / "model.onnx").exists()
    else:
        _serve(run, cli, monkeypatch, image=_input(key, data_dir, trained), documented=RESPONSE_FIELD[key])


RESPONSE_FIELD = {"classify": "probability", "segment": "mask_png_base64", "yolo": "detections",
                  "fasterrcnn": "detections"}


def _serve(run, cli, monkeypatch, image, documented):
    """``serve --run DIR``: the app the command line would start, asked over HTTP."""
    started = intercept_serve(monkeypatch)
    assert cli("serve", "--run", run, "--port", 8123) == 0
    with TestClient(started["app"]) as client:
        assert client.get("/readyz").status_code == 200
        assert client.get("/metadata").json()["run"] == run.name
        r = client.post("/predict", files={"file": ("x.png", image.read_bytes(), "image/png")})
        assert r.status_code == 200 and len(r.json()["predictions"]) == 1, r.text
        assert documented in r.json()["predictions"][0] and documented in client.get("/openapi.json").text
    assert started["port"] == 8123


def test_evaluate_data_writes_evaluations_stem(trained, data_dir, cli):
    run = trained["classify"]
    before = json.loads((run / "metrics.json").read_text())
    assert cli("evaluate", "--run", run, "--data", data_dir / "imgs") == 0
    out = run / "evaluations" / "imgs"
    metrics = json.loads((out / "metrics.json").read_text())
    assert "data/accuracy" in metrics and (out / "confusion_data.png").exists() and (out / "mistakes_data.png").exists()
    assert metrics["data/images"] == 36
    assert json.loads((run / "metrics.json").read_text()) == before  # the run's own metrics untouched


def test_detect_evaluate_data_coco_file(trained, cli):
    run = trained["yolo"]
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    coco = (run.parents[3] / "data" / "generated" / f"shapes-detect-n12-s64-seed{cfg['data']['seed']}"
            / "annotations.json")
    assert cli("evaluate", "--run", run, "--data", coco) == 0
    metrics = json.loads((run / "evaluations" / "annotations" / "metrics.json").read_text())
    assert 0 <= metrics["data/map_50"] <= 1 and (run / "evaluations" / "annotations" / "pr_curve.png").exists()


def test_backend_override_is_honoured_without_touching_the_reference(trained, cli):
    run = trained["classify"]
    before = read_json(run / "metrics.json")
    assert cli("evaluate", "--run", run, "serve.backend=onnx") == 0
    assert cli("evaluate", "--run", run) == 0  # the reference beside it, not over it
    scored = read_json(run / "evaluations" / "test-split" / "metrics.json")
    assert scored["test-onnx/accuracy"] == pytest.approx(before["test/accuracy"])
    assert scored["test/accuracy"] == pytest.approx(before["test/accuracy"])
    assert scored["test/images"] == before["test/images"] > 0
    assert read_json(run / "metrics.json") == before


def test_one_line_errors(trained, recipes, cli, capsys):
    cases = [
        ("evaluate", "--config", recipes["segment"], "--run", trained["classify"]),  # another task's recipe
        ("train", "--run", trained["classify"]),  # a finished run is never trained over
        ("evaluate", "--run", trained["classify"], "train.batch_size=oops"),  # a bad override
        ("predict", "--run", trained["classify"], "--input", "nowhere.png", "--output", "x.jsonl"),
    ]
    for argv in cases:
        assert cli(*argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "error" in err[0], (argv, err)


def test_same_command_and_run_resume_an_unfinished_run(recipes, cli):
    """A run that did not finish (here: marked so) is resumed by the same command, in its own
    directory, and by ``train --run DIR``; no second run directory appears."""
    name = yaml.safe_load(recipes["segment"].read_text())["name"]
    run = latest_run("vision_app", name)
    runs_before = sorted(p for p in run.parent.iterdir() if not p.is_symlink())
    for argv in (("train", "--config", recipes["segment"]), ("train", "--run", run)):
        status = read_json(run / RUN_FILE)
        write_json(run / RUN_FILE, {**status, "status": "running", "pid": None})
        assert cli(*argv) == 0
        assert read_json(run / RUN_FILE)["status"] == "finished"
    assert sorted(p for p in run.parent.iterdir() if not p.is_symlink()) == runs_before
    assert read_json(run / RUN_FILE)["resumed"] == 2


def test_serve_help_names_the_real_default_run(tmp_path, monkeypatch, capsys):
    """``python -m vision_app serve --help`` (the entry module itself, in-process) names the run that
    ``serve`` takes without ``--run`` or ``--config``: the default recipe's latest, under $MLREF_RUNS."""
    import runpy
    import sys

    monkeypatch.setenv("MLREF_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("COLUMNS", "500")
    monkeypatch.setattr(sys, "argv", ["vision_app", "serve", "--help"])
    with pytest.raises(SystemExit) as done:
        runpy.run_module("vision_app", run_name="__main__")
    assert done.value.code == 0
    assert f"{tmp_path}/runs/vision_app/classify/latest" in capsys.readouterr().out
