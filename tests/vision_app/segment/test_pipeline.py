"""Segmentation end to end on a couple dozen generated 32 px images: mask errors, a trained run's
files, export, and served == offline on both backends (masks at the image's own size)."""
import base64
import io
import json

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from shared.config import load_config
from shared.errors import UserError
from shared.serving import create_app
from vision_app.common.shapes import generate_shapes
from vision_app.segment.config import SegmentConfig
from vision_app.tasks import TASKS


def test_segmentation_mask_errors(tmp_path, make):
    root = generate_shapes(tmp_path / "shapes", 6, image_size=24, seed=1)
    recipe = make.recipe(tmp_path / "seg.yaml", {"name": "seg-bad", "task": "segment",
                                                 "data": {"source": "folder", "path": str(root)}})
    cfg = load_config(SegmentConfig, recipe)
    mask = root / "masks" / "00002.png"
    Image.fromarray(np.zeros((20, 24), np.uint8)).save(mask)
    with pytest.raises(UserError, match="masks/00002.png: mask is 24x20 but its image .*images/00002.png is 24x24"):
        TASKS["segment"].preprocess(cfg)
    Image.fromarray(np.full((24, 24), 9, np.uint8)).save(mask)
    with pytest.raises(UserError, match=r"class id\(s\) \[9\] outside the class list"):
        TASKS["segment"].preprocess(cfg)


def test_trained_run_and_served_equals_offline(trained, tmp_path, cli, make):
    run = trained["segment"]
    cfg = load_config(SegmentConfig, run / "config.yaml")
    metrics = json.loads((run / "metrics.json").read_text())
    for key in ("test/mean_iou", "test/dice", "test/circle/iou", "valid/mean_iou"):
        assert 0 <= metrics[key] <= 1
    assert (run / "overlays_test.png").exists()
    # an image of another size than the model's input: the mask comes back at the image's size
    img_path = tmp_path / "in.png"
    img_path.write_bytes(make.png(np.random.default_rng(0).integers(0, 255, (40, 50, 3), np.uint8)))
    for backend in ("torch", "onnx"):
        out = tmp_path / f"pred-{backend}"
        assert cli("predict", "--run", run, "--input", img_path, "--output", out, f"serve.backend={backend}") == 0
        offline_mask = np.asarray(Image.open(out / "in.png"))
        offline = json.loads((out / "predictions.jsonl").read_text())
        scfg = cfg.model_copy(update={"serve": cfg.serve.model_copy(update={"backend": backend})})
        with TestClient(create_app(lambda c=scfg: TASKS["segment"].predictor(c, run), scfg.serve)) as c:
            r = c.post("/predict", files={"file": ("in.png", img_path.read_bytes())})
            assert r.status_code == 200, r.text
            pred = r.json()["predictions"][0]
        mask = np.asarray(Image.open(io.BytesIO(base64.b64decode(pred["mask_png_base64"]))))
        assert mask.shape == (40, 50) and (pred["width"], pred["height"]) == (50, 40)
        assert np.array_equal(mask, offline_mask)
        assert pred["fractions"] == pytest.approx(offline["fractions"])
        assert sum(pred["fractions"].values()) == pytest.approx(1.0)
    assert (run / "model.onnx").exists() and (run / "model.int8.onnx").exists()  # onnx exported on first use
