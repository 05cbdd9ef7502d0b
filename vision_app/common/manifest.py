"""Stage plumbing every vision task shares: the preprocess cache, run directories, model cards,
and the list of images a ``predict`` call reads."""
from __future__ import annotations

import csv
import hashlib
import logging
import platform
import time
from pathlib import Path
from typing import Callable

import torch

from shared.config import to_dict
from shared.errors import UserError
from shared.runs import cache_dir, create_run, read_json, resolve_run, task_dir, write_json, write_text, write_yaml
from vision_app.images import IMAGE_SUFFIXES

APP = "vision_app"
log = logging.getLogger(__name__)


def manifest_path(cfg) -> Path:
    return cache_dir(APP, cfg.name, {"task": cfg.task, **to_dict(cfg.data)}) / "manifest.json"


def write_manifest(cfg, classes: list[str], splits: dict[str, list[dict]], extra: dict, hashes: list[str]) -> dict:
    manifest = {
        "task": cfg.task, "classes": classes, "splits": splits,
        "counts": {s: len(v) for s, v in splits.items()},
        "data_sha256": hashlib.sha256("".join(hashes).encode()).hexdigest(),
        "data_config": to_dict(cfg.data), **extra,
    }
    write_json(manifest_path(cfg), manifest)
    return manifest


def load_manifest(cfg, preprocess: Callable) -> dict:
    """The processed data for ``cfg``; runs ``preprocess(cfg)`` first when the cache is missing."""
    path = manifest_path(cfg)
    if not path.exists():
        preprocess(cfg)
    return read_json(path)


def start_run(cfg) -> Path:
    run = create_run(APP, cfg.name)
    write_yaml(run / "config.yaml", to_dict(cfg))
    return run


def resolve(cfg, run: str | None) -> Path:
    """``--run`` or ``runs/vision_app/<name>/latest``."""
    return resolve_run(run or task_dir(APP, cfg.name) / "latest")


def write_model_card(run: Path, cfg, title: str, metrics: dict, n_params: int, notes: str = "") -> None:
    shown = "\n".join(f"| {k} | {v:.4f} |" for k, v in metrics.items()
                      if isinstance(v, float) and k.startswith("test/") and k.count("/") == 1)
    write_text(run / "MODEL_CARD.md", f"""# {title}

- recipe: `{cfg.name}` (task `{cfg.task}`), run `{run.name}`
- model: `{cfg.model.arch}`, {n_params:,} parameters, weights init `{cfg.model.weights}`
- data: `{cfg.data.source}` {cfg.data.path or ''}; input {cfg.augment.size}×{cfg.augment.size}
- trained on: torch {torch.__version__}, {platform.machine()}, device `{cfg.train.device}`
{notes}
| metric | value |
|---|---|
{shown}

Limits: trained on the data above only; check it on your own images (`evaluate --data`) before use.
""")


def list_inputs(input_path: str | None) -> list[Path]:
    """Image files from one image, a folder (recursively) or a CSV with a ``path`` column."""
    if not input_path:
        raise UserError("predict needs --input: an image, a folder of images, or a CSV with a path column")
    p = Path(input_path)
    if p.is_dir():
        files = sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES)
    elif p.suffix.lower() == ".csv":
        with open(p, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if not reader.fieldnames or "path" not in reader.fieldnames:
                raise UserError(f"{p}: needs a 'path' column")
            files = [Path(r["path"]) if Path(r["path"]).is_absolute() else p.parent / r["path"] for r in reader]
    elif p.exists():
        files = [p]
    else:
        raise UserError(f"--input {p} not found")
    if not files:
        raise UserError(f"no images found in {p}")
    return files


def train_run(cfg, manifest: dict, model: torch.nn.Module, task, train_preset, eval_preset,
              evaluate: Callable, title: str) -> dict:
    """The train stage both tasks share: fit on train (best by ``train.monitor`` on valid), score
    the test split with ``evaluate(cfg, run, model=model)``, write the model card, mark latest."""
    from shared.runs import mark_latest, update_metrics
    from shared.training import fit
    from vision_app.data import ImageDataset
    from vision_app.models import count_parameters

    run = start_run(cfg)
    write_json(run / "labels.json", manifest["classes"])
    splits, limits = manifest["splits"], cfg.data.limits()
    valid = ImageDataset(splits["valid"], eval_preset, limits) if splits["valid"] else None
    t0 = time.perf_counter()
    result = fit(model, task, ImageDataset(splits["train"], train_preset, limits), valid, cfg.train, run,
                 extra_state={"config": to_dict(cfg)})
    wall = time.perf_counter() - t0
    update_metrics(run, {"train/wall_seconds": wall, "train/samples_per_second": result.samples_per_second,
                         "train/steps": float(result.steps),
                         **{f"valid/{k}": v for k, v in result.best_metrics.items()}})
    metrics = evaluate(cfg, str(run), model=model)
    write_model_card(run, cfg, title, metrics, count_parameters(model))
    mark_latest(run)
    return {"run": str(run), "train_seconds": round(wall, 1), **{k: v for k, v in metrics.items() if k.count("/") == 1}}
