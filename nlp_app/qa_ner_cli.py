"""The ``qa`` and ``ner`` recipes' stages, for ``nlp_app/__main__.py`` to dispatch to by the
recipe's ``task:``::

    python -m nlp_app {preprocess,train,evaluate,predict,export,serve} --config configs/nlp_app/ner.yaml
"""
from __future__ import annotations

import argparse

from nlp_app import ner, ner_serve, qa, qa_serve
from nlp_app.ner_config import NERConfig
from nlp_app.qa_config import QAConfig
from shared.config import load_config
from shared.errors import UserError

TASKS = {"qa": (QAConfig, qa, qa_serve), "ner": (NERConfig, ner, ner_serve)}
STAGES = ("preprocess", "train", "evaluate", "predict", "export", "serve")


def run(task: str, stage: str, args: argparse.Namespace) -> dict | None:
    """Load the recipe as ``task``'s config and run ``stage`` with the CLI's arguments."""
    if task not in TASKS:
        raise UserError(f"unknown task {task!r}: qa or ner")
    if stage not in STAGES:
        raise UserError(f"the {task} recipes have no {stage!r} stage; they have {', '.join(STAGES)}")
    config_type, module, serve_module = TASKS[task]
    cfg = load_config(config_type, args.config, getattr(args, "overrides", None) or ())
    if stage == "preprocess":
        return module.preprocess(cfg)
    if stage == "train":
        return module.train(cfg)
    if stage == "evaluate":
        return module.evaluate(cfg, args.run, args.data)
    if stage == "predict":
        return module.predict(cfg, args.run, args.input, args.output)
    if stage == "export":
        return module.export(cfg, args.run)
    from shared.serving import serve

    host = args.host or cfg.serve.host
    port = args.port or cfg.serve.port
    serve(serve_module.build_app(cfg, args.run), host, port)
    return None


def route_tasks(stages: dict) -> dict:
    """Wrap ``nlp_app``'s stages so that a recipe with ``task: qa`` or ``task: ner`` runs here;
    every other recipe goes to the wrapped stage unchanged."""
    from shared.cli import Stage

    def routed(name: str, stage: Stage) -> Stage:
        def call(args):
            task = recipe_task(args.config, getattr(args, "overrides", None) or ())
            return run(task, name, args) if task in TASKS else stage.run(args)
        return Stage(call, stage.help)

    return {name: routed(name, stage) for name, stage in stages.items()}


def recipe_task(path: str | None, overrides=()) -> str | None:
    """The ``task:`` of a recipe file (a ``task=`` override wins)."""
    from shared.config import read_yaml

    task = read_yaml(path).get("task") if path else None
    for item in overrides:
        if item.startswith("task="):
            task = item.split("=", 1)[1].strip()
    return task
