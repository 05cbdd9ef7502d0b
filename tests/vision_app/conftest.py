"""Tiny generated data, recipes and trained runs shared by the vision tests (trained once per session,
a few steps each); ``cli(...)``: the app's command line in-process (``shared.cli.run_app``);
``make``: the generators, for tests that need data of their own."""
import io
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import yaml
from PIL import Image

from shared.cli import run_app
from shared.runs import latest_run
from vision_app.tasks import TASKS


def vision(*argv) -> int:
    """``python -m vision_app …`` in-process; returns the exit status."""
    return run_app("vision_app", TASKS, argv=[str(a) for a in argv])


def png(arr) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def make_class_folder(root: Path, per_class: int = 12) -> Path:
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


def make_split_root(root: Path, counts: dict[str, int], classes=("cats", "dogs"), seed: int = 42) -> Path:
    """``root/<split folder>/<class>/<i>.jpg``, ``counts`` images per class in each split folder
    (the ImageFolder layout of sets shipped with their split); every image different."""
    rng = np.random.default_rng(seed)
    for split, n in counts.items():
        for c in classes:
            (root / split / c).mkdir(parents=True, exist_ok=True)
            for i in range(n):
                buf = io.BytesIO()
                Image.fromarray(rng.integers(0, 255, (10, 10, 3), dtype=np.uint8)).save(buf, format="JPEG")
                (root / split / c / f"{i}.jpg").write_bytes(buf.getvalue())
    return root


def write_recipe(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


TRAIN = {"max_steps": 2, "progress": False, "device": "cpu"}
SERVE = {"load_in_background": False}


def classify_recipe(tmp: Path, root: Path, name: str = "t-classify", **data) -> Path:
    return write_recipe(tmp / f"{name}.yaml", {
        "name": name, "task": "classify",
        "data": {"source": "folder", "path": str(root), "test_fraction": 0.25, "valid_fraction": 0.2, **data},
        "model": {"arch": "resnet18", "small_input": True},
        "augment": {"size": 8, "hflip": 0.0},
        "train": {**TRAIN, "batch_size": 8, "monitor": "accuracy"},
        "eval": {"worst": 4, "svm_baseline": True, "top_k": [2]},
        "serve": {**SERVE, "max_instances": 3, "max_item_cost": 10_000},
    })


def segment_recipe(tmp: Path, name: str = "t-segment") -> Path:
    return write_recipe(tmp / f"{name}.yaml", {
        "name": name, "task": "segment",
        "data": {"source": "shapes", "n_images": 24, "image_size": 32, "seed": 2},
        "model": {"arch": "unet", "depth": 2, "width": 4},
        "augment": {"size": 32, "rotation": 20},
        "train": {**TRAIN, "batch_size": 8, "monitor": "mean_iou"},
        "eval": {"overlays": 2},
        "serve": SERVE,
    })


def detect_recipe(tmp: Path, arch: str) -> Path:
    return write_recipe(tmp / f"t-detect-{arch}.yaml", {
        "name": f"t-detect-{arch}", "task": "detect",
        "data": {"format": "shapes", "shapes_images": 12, "shapes_size": 64, "seed": 1},
        "model": {"arch": arch, "backbone": "csp" if arch == "yolo" else "resnet18", "input_size": 64,
                  "width": 8, "neck_width": 16},
        "train": {**TRAIN, "epochs": 1, "batch_size": 4, "monitor": "map_50"},
        "eval": {"draw_images": 2},
        "serve": {**SERVE, "max_instances": 3, "max_image_bytes": 200_000},
    })


@pytest.fixture(scope="session")
def cli():
    return vision


@pytest.fixture(scope="session")
def make():
    return SimpleNamespace(png=png, class_folder=make_class_folder, split_root=make_split_root, recipe=write_recipe,
                           classify_recipe=classify_recipe, segment_recipe=segment_recipe,
                           detect_recipe=detect_recipe)


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("vision-data")
    make_class_folder(tmp / "imgs")
    return tmp


@pytest.fixture(scope="session")
def recipes(data_dir) -> dict[str, Path]:
    """One tiny recipe per task (and per detector): ``classify``, ``segment``, ``yolo``, ``fasterrcnn``."""
    return {"classify": classify_recipe(data_dir, data_dir / "imgs"), "segment": segment_recipe(data_dir),
            "yolo": detect_recipe(data_dir, "yolo"), "fasterrcnn": detect_recipe(data_dir, "fasterrcnn")}


@pytest.fixture(scope="session")
def trained(recipes) -> dict[str, Path]:
    """Each recipe trained a few steps by ``train --config``: its finished run directory."""
    runs = {}
    for key, recipe in recipes.items():
        assert vision("train", "--config", recipe) == 0, key
        runs[key] = latest_run("vision_app", yaml.safe_load(recipe.read_text())["name"])
    return runs
