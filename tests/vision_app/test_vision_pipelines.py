"""Vision pipelines end to end on a few dozen tiny images: data errors, preprocess → train a few
steps → evaluate → predict → export → serve (good and bad uploads; served == offline)."""
import base64
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
import yaml
from fastapi.testclient import TestClient
from PIL import Image

from shared.cli import run_cli
from shared.config import load_config
from shared.errors import UserError
from shared.serving import create_app
from vision_app.__main__ import STAGES
from vision_app.config import ClassifyConfig, SegmentConfig
from vision_app.shapes import generate_shapes
from vision_app.tasks import TASKS

CONFIGS = sorted(Path("configs/vision_app").glob("*.yaml"))


def cli(*argv):
    return run_cli("vision_app", STAGES, argv=[str(a) for a in argv])


def png(arr) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize("path", [p for p in CONFIGS if not p.name.startswith("detect")], ids=lambda p: p.name)
def test_recipes_load(path):
    data = yaml.safe_load(path.read_text())
    cfg = load_config(TASKS[data["task"]].config, path)
    assert cfg.name in ("classify", "segment")


def make_folder(root: Path, per_class: int = 12) -> Path:
    """Three classes of 12x12 images: a bright square top-left, bottom-right, or none."""
    rng = np.random.default_rng(0)
    for c in ("a", "b", "c"):
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            img = rng.integers(0, 60, (12, 12, 3), dtype=np.uint8)
            if c == "a":
                img[1:6, 1:6] = 230
            elif c == "b":
                img[6:11, 6:11] = 230
            (root / c / f"{i}.png").write_bytes(png(img))
    return root


def write_cfg(tmp: Path, name: str, data: dict) -> Path:
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def classify_recipe(tmp: Path, root: Path, **data) -> Path:
    return write_cfg(tmp, "cls", {
        "name": f"cls-{tmp.name}", "task": "classify",
        "data": {"source": "folder", "path": str(root), "test_fraction": 0.25, "valid_fraction": 0.2, **data},
        "model": {"arch": "resnet18", "small_input": True},
        "augment": {"size": 8, "hflip": 0.0},
        "train": {"max_steps": 2, "batch_size": 8, "progress": False, "monitor": "accuracy"},
        "eval": {"worst": 4, "svm_baseline": True, "top_k": [2]},
        "serve": {"max_images": 3, "max_image_pixels": 10_000, "load_in_background": False},
    })


# ---------------------------------------------------------------- data errors
def test_truncated_image_in_training_data(tmp_path):
    root = make_folder(tmp_path / "imgs", per_class=4)
    good = (root / "a" / "0.png").read_bytes()
    (root / "a" / "bad.png").write_bytes(good[: len(good) // 2])
    cfg = load_config(ClassifyConfig, classify_recipe(tmp_path, root))
    with pytest.raises(UserError, match=r"1 bad file\(s\).*bad.png.*truncated"):
        TASKS["classify"].preprocess(cfg)


def test_csv_label_outside_class_list_and_empty_split(tmp_path):
    make_folder(tmp_path / "imgs", per_class=4)
    csv = tmp_path / "labels.csv"
    csv.write_text("path,label\n" + "".join(f"imgs/{c}/{i}.png,{c}\n" for c in "abc" for i in range(4)))
    cfg = load_config(ClassifyConfig, classify_recipe(tmp_path, csv, source="csv", classes=["a", "b"]))
    with pytest.raises(UserError, match=r"label\(s\) \['c'\] are not in the class list"):
        TASKS["classify"].preprocess(cfg)
    cfg = load_config(ClassifyConfig, classify_recipe(tmp_path, csv, source="csv", valid_fraction=0.0,
                                                      test_fraction=0.05))
    with pytest.raises(UserError, match="split is empty|cannot split"):
        TASKS["classify"].preprocess(cfg)


def test_segmentation_mask_errors(tmp_path):
    root = generate_shapes(tmp_path / "shapes", 6, image_size=24, seed=1)
    seg = {"name": "seg-bad", "task": "segment", "data": {"source": "folder", "path": str(root)}}
    cfg = load_config(SegmentConfig, write_cfg(tmp_path, "seg", seg))
    mask = root / "masks" / "00002.png"
    Image.fromarray(np.zeros((20, 24), np.uint8)).save(mask)
    with pytest.raises(UserError, match="00002.png: mask is 24x20 but its image is 24x24"):
        TASKS["segment"].preprocess(cfg)
    Image.fromarray(np.full((24, 24), 9, np.uint8)).save(mask)
    with pytest.raises(UserError, match=r"class id\(s\) \[9\] outside the class list"):
        TASKS["segment"].preprocess(cfg)


# ---------------------------------------------------------------- classification end to end
@pytest.fixture(scope="module")
def classify_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cls")
    recipe = classify_recipe(tmp, make_folder(tmp / "imgs"))
    assert cli("train", "--config", recipe) == 0
    cfg = load_config(ClassifyConfig, recipe)
    run = Path(os.environ["MLREF_RUNS"]) / "vision_app" / cfg.name / "latest"
    return recipe, cfg, run, tmp


def test_classify_pipeline_artifacts(classify_run):
    recipe, cfg, run, tmp = classify_run
    metrics = json.loads((run / "metrics.json").read_text())
    for key in ("test/accuracy", "test/top2_accuracy", "test/a/f1", "test/baseline_svm_accuracy", "valid/accuracy"):
        assert key in metrics
    for f in ("model.safetensors", "labels.json", "confusion_test.png", "mistakes_test.png", "MODEL_CARD.md"):
        assert (run / f).exists(), f
    assert cli("evaluate", "--config", recipe, "--data", tmp / "imgs") == 0
    assert "data/accuracy" in json.loads((run / "metrics.json").read_text())



def test_classify_without_a_validation_split_trains_exports_and_scores(tmp_path):
    """The digits default: every non-test image trains (no validation split), a fixed budget,
    the int8 export calibrated on training images instead."""
    recipe = classify_recipe(tmp_path, make_folder(tmp_path / "imgs"), valid_fraction=0.0)
    cfg_dict = yaml.safe_load(recipe.read_text())
    cfg_dict["model"] = {"arch": "smallcnn"}
    recipe.write_text(yaml.safe_dump(cfg_dict))
    assert cli("train", "--config", recipe) == 0
    run = Path(os.environ["MLREF_RUNS"]) / "vision_app" / cfg_dict["name"] / "latest"
    metrics = json.loads((run / "metrics.json").read_text())
    assert 0.0 <= metrics["test/accuracy"] <= 1.0 and not any(k.startswith("valid/") for k in metrics)
    cfg = load_config(ClassifyConfig, recipe, ["serve.backend=onnx-int8"])
    assert not (run / "model.int8.onnx").exists()
    TASKS["classify"].predictor(cfg, run.resolve())  # serving int8 exports (and calibrates) on first use
    assert (run / "model.int8.onnx").exists()
    assert cli("export", "--config", recipe) == 0
    raw = (tmp_path / "imgs" / "a" / "0.png").read_bytes()
    with TestClient(create_app(lambda: TASKS["classify"].predictor(cfg, run.resolve()), cfg.serve)) as c:
        r = c.post("/predict", files={"file": ("a0.png", raw, "image/png")})
        assert r.status_code == 200 and c.get("/metadata").json()["backend"] == "onnx-int8"

def test_classify_http_and_served_equals_offline(classify_run):
    recipe, cfg, run, tmp = classify_run
    img_path = tmp / "imgs" / "b" / "3.png"
    out = tmp / "pred.jsonl"
    assert cli("predict", "--config", recipe, "--input", img_path, "--output", out) == 0
    offline = json.loads(out.read_text().splitlines()[0])
    app = create_app(lambda: TASKS["classify"].predictor(cfg, run), cfg.serve)
    raw = img_path.read_bytes()
    with TestClient(app) as c:
        r = c.post("/predict", files=[("file", ("b3.png", raw, "image/png")), ("file", ("again.png", raw, "image/png"))])
        assert r.status_code == 200, r.text
        served = r.json()["predictions"]
        assert len(served) == 2 and served[0]["label"] == offline["label"]
        assert served[0]["probability"] == pytest.approx(offline["probability"], abs=1e-5)
        r = c.post("/predict", json={"instances": [{"image_base64": base64.b64encode(raw).decode()}]})
        assert r.json()["predictions"][0]["label"] == offline["label"]
        bad = {
            "text": (c.post("/predict", files={"file": ("x.txt", b"not an image", "text/plain")}), 415, "not an image"),
            "cut": (c.post("/predict", files={"file": ("cut.png", raw[: len(raw) // 2])}), 422, "truncated"),
            "many": (c.post("/predict", files=[("file", (f"{i}.png", raw)) for i in range(4)]), 413, "limit is 3"),
            "pixels": (c.post("/predict", files={"file": ("big.png", png(np.zeros((200, 200, 3), np.uint8)))}), 413,
                       "pixels"),
            "b64": (c.post("/predict", json={"instances": [{"image_base64": "@@@"}]}), 422, "base64"),
            "none": (c.post("/predict", json={"instances": []}), 422, "schema"),
        }
        for what, (resp, status, words) in bad.items():
            assert resp.status_code == status and words in resp.json()["error"], (what, resp.text)
        assert c.post("/predict", files={"file": ("ok.png", raw)}).status_code == 200  # still serving
        meta = c.get("/metadata").json()
        assert meta["classes"] == ["a", "b", "c"] and meta["max_images"] == 3


# ---------------------------------------------------------------- segmentation end to end
@pytest.fixture(scope="module")
def segment_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("seg")
    recipe = write_cfg(tmp, "seg", {
        "name": f"seg-{tmp.name}", "task": "segment",
        "data": {"source": "shapes", "n_images": 24, "image_size": 32, "seed": 2},
        "model": {"arch": "unet", "depth": 2, "width": 4},
        "augment": {"size": 32, "rotation": 20},
        "train": {"max_steps": 2, "batch_size": 8, "progress": False, "monitor": "mean_iou"},
        "eval": {"overlays": 2},
        "serve": {"load_in_background": False},
    })
    assert cli("train", "--config", recipe) == 0
    cfg = load_config(SegmentConfig, recipe)
    run = Path(os.environ["MLREF_RUNS"]) / "vision_app" / cfg.name / "latest"
    return recipe, cfg, run, tmp


def test_segment_pipeline_export_and_served_equals_offline(segment_run):
    recipe, cfg, run, tmp = segment_run
    metrics = json.loads((run / "metrics.json").read_text())
    for key in ("test/mean_iou", "test/dice", "test/circle/iou", "valid/mean_iou"):
        assert 0 <= metrics[key] <= 1
    assert (run / "overlays_test.png").exists()
    assert cli("export", "--config", recipe) == 0
    assert (run / "model.onnx").exists() and (run / "model.int8.onnx").exists()
    # an image of another size than the model's input: the mask comes back at the image's size
    img = np.random.default_rng(0).integers(0, 255, (40, 50, 3), np.uint8)
    img_path = tmp / "in.png"
    img_path.write_bytes(png(img))
    for backend in ("torch", "onnx"):
        out = tmp / f"pred-{backend}"
        assert cli("predict", "--config", recipe, "--input", img_path, "--output", out, f"serve.backend={backend}") == 0
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
