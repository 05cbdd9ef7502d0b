"""Vision: image classification and semantic segmentation (detection: ``task: detect``).

The recipe's ``task:`` key picks the task (:data:`vision_app.tasks.TASKS`)::

    python -m vision_app preprocess --config configs/vision_app/classify.yaml
    python -m vision_app train      --config configs/vision_app/classify-quick.yaml   # ~1 min on 2 CPU cores
    python -m vision_app train      --config configs/vision_app/segment.yaml train.epochs=5
    python -m vision_app evaluate   --config configs/vision_app/segment.yaml [--run DIR] [--data FOLDER]
    python -m vision_app predict    --config configs/vision_app/classify.yaml --input img_or_folder --output out.jsonl
    python -m vision_app export     --config configs/vision_app/classify.yaml        # model.onnx + model.int8.onnx
    python -m vision_app serve      --config configs/vision_app/segment.yaml serve.backend=onnx

``evaluate``/``predict``/``export``/``serve`` use the run's saved config (``--run``, default
``runs/vision_app/<name>/latest``) with any ``key=value`` overrides on top.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from shared.cli import Stage, legacy_main as main
from shared.config import apply_overrides, read_yaml, validate
from shared.errors import UserError
from shared.runs import load_run_config, task_dir
from shared.serving import create_app, serve
from vision_app.stages import APP
from vision_app.tasks import TASKS


def _task_config(data: dict, source: str):
    task = data.get("task")
    if task not in TASKS:
        raise UserError(f"{source}: task must be one of {sorted(TASKS)}, got {task!r}")
    return TASKS[task], validate(TASKS[task].config, data, source)


def recipe(args: argparse.Namespace):
    """The recipe from ``--config`` with overrides: ``(task, cfg)``."""
    return _task_config(apply_overrides(read_yaml(args.config), args.overrides), args.config)


def trained(args: argparse.Namespace):
    """The config a run was trained with (``--run`` or the recipe's latest), overrides on top."""
    run = args.run
    if run is None:
        _, cfg = recipe(args)
        run = str(task_dir(APP, cfg.name) / "latest")
    data = apply_overrides(load_run_config(run), args.overrides)
    task, cfg = _task_config(data, str(Path(run) / "config.yaml"))
    return task, cfg, run


def preprocess(args):
    task, cfg = recipe(args)
    return task.preprocess(cfg)


def train(args):
    task, cfg = recipe(args)
    return task.train(cfg)


def evaluate(args):
    task, cfg, run = trained(args)
    return task.evaluate(cfg, run, args.data)


def predict(args):
    task, cfg, run = trained(args)
    return task.predict(cfg, run, args.input, args.output)


def export(args):
    task, cfg, run = trained(args)
    return task.export(cfg, run)


def serve_stage(args):
    task, cfg, run = trained(args)
    app = create_app(lambda: task.predictor(cfg, run), cfg.serve, title=f"mlref vision: {cfg.name}")
    serve(app, args.host, args.port)


STAGES = {
    "preprocess": Stage(preprocess, "validate the images (and masks), split, cache the manifest"),
    "train": Stage(train, "train (preprocesses first if needed); writes runs/vision_app/<name>/latest"),
    "evaluate": Stage(evaluate, "score a run on its test split or on --data (same layout as training data)"),
    "predict": Stage(predict, "predict every image of --input (file, folder or CSV) to --output"),
    "export": Stage(export, "write model.onnx (+ model.int8.onnx) into the run"),
    "serve": Stage(serve_stage, "REST API: POST /predict with image uploads or base64 JSON"),
}

if __name__ == "__main__":
    main("vision_app", STAGES, default_config="configs/vision_app/classify.yaml")
