"""Detection end to end on a handful of tiny generated images, per detector (trained a few steps by
the session's ``trained`` fixture): evaluate → predict → (export) → serve, served == offline, HTTP
tests with good and bad uploads, recipes and Faster R-CNN backbones."""
import base64
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image

from shared.config import load_config, validate
from shared.errors import UserError
from shared.serving import create_app
from vision_app.detect import data, evaluate, export, predict, serve
from vision_app.detect.config import DetectConfig


def _cfg(arch: str, **model) -> DetectConfig:
    return validate(DetectConfig, {
        "name": f"detect-test-{arch}", "task": "detect",
        "data": {"format": "shapes", "shapes_images": 12, "shapes_size": 64, "seed": 1},
        "model": {"arch": arch, "backbone": "csp" if arch == "yolo" else "resnet18", "input_size": 64,
                  "width": 8, "neck_width": 16, **model},
    })


@pytest.fixture(params=["yolo", "fasterrcnn"])
def trained_detector(request, trained):
    run = trained[request.param]
    return load_config(DetectConfig, run / "config.yaml"), run


def test_train_writes_a_complete_run(trained_detector):
    cfg, run = trained_detector
    assert data.load_processed(cfg)[0] == ["circle", "rectangle", "triangle"]
    metrics = json.loads(Path(run, "metrics.json").read_text())
    for key in ("test/map_50", "test/map", "valid/map_50", "test/circle/ap50", "test/triangle/recall50"):
        assert key in metrics and 0.0 <= metrics[key] <= 1.0
    for name in ("model.safetensors", "labels.json", "config.yaml", "pr_curve.png", "README.md"):
        assert Path(run, name).exists(), name
    assert len(list(Path(run, "detections").glob("*.png"))) == 2


def test_evaluate_and_predict_agree_with_serving(trained_detector, tmp_path):
    cfg, run = trained_detector
    assert "test/map_50" in evaluate.evaluate(cfg, run)
    classes, sets = data.load_processed(cfg)
    test = sets["test"]
    files = [f"{test.images_dir}/{r.file}" for r in test.images[:2]]
    out = tmp_path / "pred.jsonl"
    summary = predict.predict(cfg, run, Path(files[0]), out)
    offline = json.loads(out.read_text().splitlines()[0])["detections"]
    assert summary["images"] == 1
    with pytest.raises(UserError, match=r"dets.csv: predict writes JSON lines .*name it .jsonl"):
        predict.predict(cfg, run, Path(files[0]), tmp_path / "dets.csv")

    cfg.model.score_thresh = 0.0  # the untrained model's scores are low: let every box through
    with TestClient(create_app(lambda: serve.DetectPredictor(cfg, run), cfg.serve)) as client:
        raw = Path(files[0]).read_bytes()
        r = client.post("/predict", files=[("file", ("a.png", raw, "image/png"))],
                        data={"score_threshold": "0.05", "max_detections": "100"})
        assert r.status_code == 200, r.text
        pred = r.json()["predictions"][0]
        assert (pred["width"], pred["height"]) == (64, 64)
        served = [d for d in pred["detections"]]
        want = [d for d in offline if d["score"] >= 0.05]
        assert [d["label"] for d in served] == [d["label"] for d in want]
        assert np.allclose([d["box"] for d in served], [d["box"] for d in want], atol=0.05) if want else True
        for d in served:
            x1, y1, x2, y2 = d["box"]
            assert 0 <= x1 <= x2 <= 64 and 0 <= y1 <= y2 <= 64 and d["label"] in classes

        body = {"instances": [{"image_base64": base64.b64encode(raw).decode()}], "score_threshold": 0.0,
                "max_detections": 2, "annotated": True}
        r = client.post("/predict", json=body)
        assert r.status_code == 200, r.text
        pred = r.json()["predictions"][0]
        assert len(pred["detections"]) <= 2
        drawn = Image.open(io.BytesIO(base64.b64decode(pred["annotated_png_base64"])))
        assert drawn.size == (64, 64)
        assert client.get("/metadata").json()["classes"] == classes


def test_bad_uploads_get_clear_errors(trained_detector, make):
    cfg, run = trained_detector
    good = make.png(np.zeros((20, 30, 3), np.uint8))
    noisy = make.png(np.random.default_rng(0).integers(0, 255, (40, 40, 3), dtype=np.uint8))
    with TestClient(create_app(lambda: serve.DetectPredictor(cfg, run), cfg.serve)) as client:
        cases = [
            ({"files": [("file", ("x.txt", b"not an image", "text/plain"))]}, 415),
            ({"files": [("file", ("x.png", noisy[: len(noisy) // 2], "image/png"))]}, 422),
            ({"files": [("file", ("x.png", good, "image/png"))] * 4}, 413),
            ({"files": [("file", ("x.png", b"\0" * 300_000, "image/png"))]}, 413),
            ({"files": [("file", ("x.png", good, "image/png"))], "data": {"score_threshold": "1.5"}}, 422),
            ({"files": [("file", ("x.png", good, "image/png"))], "data": {"max_detections": "0"}}, 422),
            ({"json": {"instances": [{"image_base64": "%%%"}]}}, 422),
            ({"json": {"instances": [{"image_base64": base64.b64encode(good).decode()}], "max_detections": 5000}},
             422),
            ({"json": {"instances": []}}, 422),
        ]
        for kwargs, status in cases:
            r = client.post("/predict", **kwargs)
            assert r.status_code == status, (kwargs.get("data") or kwargs.get("json") or "file", r.text)
            assert "error" in r.json()
        assert client.post("/predict", files=[("file", ("x.png", good, "image/png"))]).status_code == 200


def test_export_onnx_matches_torch(trained_detector):
    cfg, run = trained_detector
    if cfg.model.arch != "yolo":
        with pytest.raises(UserError, match="yolo detector only"):
            export.export(cfg, run)
        return
    result = export.export(cfg, run)
    assert result["max_abs_diff_vs_torch"] < 1e-3
    cfg.model.score_thresh = 0.0
    image = np.asarray(Image.open(f"{data.load_processed(cfg)[1]['test'].images_dir}/00000.png"))
    onnx = cfg.model_copy(update={"serve": cfg.serve.model_copy(update={"backend": "onnx"})})
    a = predict.Detector.for_run(cfg, run)([image])[0]
    b = predict.Detector.for_run(onnx, run)([image])[0]
    # an untrained model ties many scores, so compare what does not depend on the order of ties
    assert len(a["scores"]) == len(b["scores"]) > 0
    assert torch.allclose(a["scores"].sort().values, b["scores"].sort().values, atol=1e-4)


@pytest.mark.parametrize("recipe", ["detect", "detect_fasterrcnn"])
def test_recipes_refuse_what_the_detectors_cannot_do(recipe):
    full = load_config(DetectConfig, f"configs/vision_app/{recipe}.yaml")
    quick = load_config(DetectConfig, f"configs/vision_app/{recipe}-quick.yaml")
    assert full.name == quick.name == recipe and full.model.arch == quick.model.arch
    with pytest.raises(UserError, match="model.input_size"):
        load_config(DetectConfig, f"configs/vision_app/{recipe}.yaml", ["model.input_size=100"])
    with pytest.raises(UserError, match="serve.backend"):  # no int8 detector
        load_config(DetectConfig, f"configs/vision_app/{recipe}.yaml", ["serve.backend=onnx-int8"])


@pytest.mark.parametrize("backbone, anchors", [("resnet18", [16, 32, 64, 128]),
                                               ("mobilenet_v3", [16, 32, 64, 128, 256])])
def test_fasterrcnn_backbones_build_with_recipe_anchors(backbone, anchors):
    from vision_app.detect.models import build_detector

    model_cfg = _cfg("fasterrcnn", backbone=backbone, anchor_sizes=anchors).model
    model = build_detector(model_cfg, 3).eval()
    assert model.net.rpn.anchor_generator.sizes[0] == ((16,) if backbone == "resnet18" else tuple(anchors))
    with torch.no_grad():
        out = model(torch.rand(1, 3, 64, 64))
    assert set(out[0]) == {"boxes", "labels", "scores"}
    with pytest.raises(UserError, match=f"model.anchor_sizes needs {len(anchors)} sizes"):
        build_detector(_cfg("fasterrcnn", backbone=backbone, anchor_sizes=anchors[:-1]).model, 3)
