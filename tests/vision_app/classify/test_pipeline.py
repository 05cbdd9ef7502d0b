"""Classification end to end on a few dozen tiny images: data errors, a trained run's files,
export and int8 on first use, served == offline, and HTTP answers to bad uploads."""
import base64
import json

import numpy as np
import pytest
import yaml
from fastapi.testclient import TestClient

from shared.config import load_config
from shared.errors import UserError
from shared.runs import latest_run
from shared.serving import create_app
from vision_app.classify.config import ClassifyConfig
from vision_app.tasks import TASKS


def test_truncated_image_in_training_data(tmp_path, make):
    root = make.class_folder(tmp_path / "imgs", per_class=4)
    good = (root / "a" / "0.png").read_bytes()
    (root / "a" / "bad.png").write_bytes(good[: len(good) // 2])
    cfg = load_config(ClassifyConfig, make.classify_recipe(tmp_path, root))
    with pytest.raises(UserError, match=r"1 bad file\(s\).*bad.png.*truncated"):
        TASKS["classify"].preprocess(cfg)


def test_csv_label_outside_class_list_and_empty_split(tmp_path, make):
    make.class_folder(tmp_path / "imgs", per_class=4)
    csv = tmp_path / "labels.csv"
    csv.write_text("path,label\n" + "".join(f"imgs/{c}/{i}.png,{c}\n" for c in "abc" for i in range(4)))
    cfg = load_config(ClassifyConfig, make.classify_recipe(tmp_path, csv, source="csv", classes=["a", "b"]))
    with pytest.raises(UserError, match=r"label\(s\) \['c'\] are not in the class list"):
        TASKS["classify"].preprocess(cfg)
    cfg = load_config(ClassifyConfig, make.classify_recipe(tmp_path, csv, source="csv", valid_fraction=0.0,
                                                           test_fraction=0.05))
    with pytest.raises(UserError, match="split is empty|cannot split"):
        TASKS["classify"].preprocess(cfg)


def test_trained_run_holds_metrics_plots_and_card(trained):
    run = trained["classify"]
    metrics = json.loads((run / "metrics.json").read_text())
    for key in ("test/accuracy", "test/top2_accuracy", "test/a/f1", "test/baseline_svm_accuracy", "valid/accuracy",
                "train/steps"):
        assert key in metrics, key
    for f in ("model.safetensors", "labels.json", "confusion_test.png", "mistakes_test.png", "README.md",
              "config.yaml", "checkpoints/last.pt"):
        assert (run / f).exists(), f
    assert "## Image classifier" in (run / "README.md").read_text()
    assert json.loads((run / "run.json").read_text())["status"] == "finished"


def test_without_a_validation_split_it_trains_and_serves_int8_exported_on_first_use(tmp_path, make, cli):
    """The digits default: every non-test image trains (no validation split), a fixed budget,
    the int8 export calibrated on training images instead."""
    recipe = make.classify_recipe(tmp_path, make.class_folder(tmp_path / "imgs"), name="t-classify-novalid",
                                  valid_fraction=0.0)
    data = yaml.safe_load(recipe.read_text())
    data["model"] = {"arch": "smallcnn"}
    recipe.write_text(yaml.safe_dump(data))
    assert cli("train", "--config", recipe) == 0
    run = latest_run("vision_app", data["name"])
    metrics = json.loads((run / "metrics.json").read_text())
    assert 0.0 <= metrics["test/accuracy"] <= 1.0 and not any(k.startswith("valid/") for k in metrics)
    cfg = load_config(ClassifyConfig, run / "config.yaml", ["serve.backend=onnx-int8"])
    assert not (run / "model.int8.onnx").exists()
    raw = (tmp_path / "imgs" / "a" / "0.png").read_bytes()
    with TestClient(create_app(lambda: TASKS["classify"].predictor(cfg, run), cfg.serve)) as c:
        r = c.post("/predict", files={"file": ("a0.png", raw, "image/png")})
        assert r.status_code == 200 and c.get("/metadata").json()["backend"] == "onnx-int8"
    assert (run / "model.int8.onnx").exists()  # serving int8 exported (and calibrated) it


def test_without_progress_or_validation_each_epoch_logs_one_line(tmp_path, make, cli, caplog):
    """``train.progress=false`` and no validation split: still one line per epoch (issue 19.6: a run
    was silent for minutes), and no more than one."""
    recipe = make.classify_recipe(tmp_path, make.class_folder(tmp_path / "imgs"), name="t-classify-quiet",
                                  valid_fraction=0.0)
    data = yaml.safe_load(recipe.read_text())
    data["model"] = {"arch": "smallcnn"}
    data["train"] = {**data["train"], "max_steps": None, "epochs": 2, "log_every_steps": 1}
    recipe.write_text(yaml.safe_dump(data))
    with caplog.at_level("INFO", logger="shared.training"):
        assert cli("train", "--config", recipe) == 0
    lines = [r.getMessage() for r in caplog.records if r.name == "shared.training"]
    epochs = [line for line in lines if line.startswith("epoch ")]
    assert [line.split(" step")[0] for line in epochs] == ["epoch 1/2", "epoch 2/2"], lines
    assert all("train loss=" in line for line in epochs)


def test_served_equals_offline_and_bad_uploads_get_clear_errors(trained, data_dir, cli, make, tmp_path, capsys):
    run = trained["classify"]
    cfg = load_config(ClassifyConfig, run / "config.yaml")
    img_path = data_dir / "imgs" / "b" / "3.png"
    out = data_dir / "pred-classify.jsonl"
    assert cli("predict", "--run", run, "--input", img_path, "--output", out) == 0
    offline = json.loads(out.read_text().splitlines()[0])
    folder = tmp_path / "to label"  # a user's folder: an image, a note beside it
    folder.mkdir()
    (folder / "b3.png").write_bytes(img_path.read_bytes())
    (folder / "notes.txt").write_text("shot on 2026-11-30")
    assert cli("predict", "--run", run, "--input", folder, "--output", tmp_path / "preds.jsonl") == 0
    assert [json.loads(line)["label"] for line in (tmp_path / "preds.jsonl").read_text().splitlines()] == [offline["label"]]
    capsys.readouterr()
    assert cli("predict", "--run", run, "--input", folder, "--output", tmp_path / "preds.csv") == 2
    assert "preds.csv: predict writes JSON lines (one object per image), not a csv table; name it .jsonl" in \
        capsys.readouterr().err
    assert not (tmp_path / "preds.csv").exists()
    raw = img_path.read_bytes()
    with TestClient(create_app(lambda: TASKS["classify"].predictor(cfg, run), cfg.serve)) as c:
        r = c.post("/predict", files=[("file", ("b3.png", raw, "image/png")), ("file", ("again.png", raw, "image/png"))])
        assert r.status_code == 200, r.text
        served = r.json()["predictions"]
        assert len(served) == 2 and served[0]["label"] == offline["label"]
        assert served[0]["probability"] == pytest.approx(offline["probability"], abs=1e-5)
        r = c.post("/predict", json={"instances": [{"image_base64": base64.b64encode(raw).decode()}]})
        assert r.json()["predictions"][0]["label"] == offline["label"]
        big = make.png(np.zeros((200, 200, 3), np.uint8))
        bad = {
            "text": (c.post("/predict", files={"file": ("x.txt", b"not an image", "text/plain")}), 415, "not an image"),
            "cut": (c.post("/predict", files={"file": ("cut.png", raw[: len(raw) // 2])}), 422, "truncated"),
            "many": (c.post("/predict", files=[("file", (f"{i}.png", raw)) for i in range(4)]), 413, "limit is 3"),
            "pixels": (c.post("/predict", files={"file": ("big.png", big)}), 413, "pixels"),
            "b64": (c.post("/predict", json={"instances": [{"image_base64": "@@@"}]}), 422, "base64"),
            "none": (c.post("/predict", json={"instances": []}), 422, "schema"),
        }
        for what, (resp, status, words) in bad.items():
            assert resp.status_code == status and words in resp.json()["error"], (what, resp.text)
        assert c.post("/predict", files={"file": ("ok.png", raw)}).status_code == 200  # still serving
        meta = c.get("/metadata").json()
        assert meta["classes"] == ["a", "b", "c"] and meta["max_instances"] == 3
