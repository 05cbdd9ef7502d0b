"""The CLI stages of tabular_mining: load the recipe, dispatch on its ``task`` through explicit
dicts, call the stage function. ``__main__`` only parses and calls these."""
from __future__ import annotations

import argparse
from pathlib import Path

from shared.config import apply_overrides, load_config, read_yaml, validate
from shared.errors import UserError
from shared.runs import load_run_config, resolve_run, task_dir
from shared.serving import create_app, serve as serve_app
from tabular_mining import evaluate as classify_eval
from tabular_mining import predict as classify_predict
from tabular_mining import serve as classify_serve
from tabular_mining import train as classify_train
from tabular_mining.config import ClassifyConfig
from tabular_mining.preprocess import APP, cache_path, preprocess as classify_preprocess
from tabular_mining import rules_serve, rules_task
from tabular_mining.rules_config import RulesConfig
from tabular_mining import segments_serve, segments_task
from tabular_mining.segments_config import SegmentConfig
from tabular_mining.stream import stream_stage
from tabular_mining import tune as classify_tune
from tabular_mining import distributed as classify_dask

TASK_CONFIGS = {"classify": ClassifyConfig, "segment": SegmentConfig, "rules": RulesConfig}


def load_recipe(args: argparse.Namespace):
    """The typed config of ``--config`` with its overrides, chosen by its ``task`` key."""
    task = read_yaml(args.config).get("task", "classify")
    if task not in TASK_CONFIGS:
        raise UserError(f"{args.config}: unknown task {task!r}; one of {', '.join(TASK_CONFIGS)}")
    return load_config(TASK_CONFIGS[task], args.config, args.overrides)


def run_of(args: argparse.Namespace) -> tuple[Path, object]:
    """The run directory (``--run`` or the recipe's ``latest``) and its saved config, with any
    ``key=value`` overrides applied (e.g. ``serve.batching=false``, ``eval.threshold=0.3``)."""
    if args.run:
        run = resolve_run(args.run)
    else:
        name = read_yaml(args.config).get("name", "churn") if args.config else "churn"
        run = resolve_run(task_dir(APP, name) / "latest")
    data = apply_overrides(load_run_config(run), args.overrides)
    task = data.get("task", "classify")
    return run, validate(TASK_CONFIGS[task], data, source=f"{run}/config.yaml")


def preprocess(args):
    cfg = load_recipe(args)
    return PREPROCESS[cfg.task](cfg)


def _preprocess_classify(cfg) -> dict:
    if cfg.distributed == "dask":
        with classify_dask.dask_client(cfg.dask):
            return {"cache": str(cache_path(cfg.name, cfg.data)), **classify_dask.preprocess_dask(cfg)["rows"]}
    splits = classify_preprocess(cfg.name, cfg.data)
    return {"cache": str(cache_path(cfg.name, cfg.data)), **splits.manifest["rows"]}


def train(args):
    cfg = load_recipe(args)
    return TRAIN[cfg.task](cfg)


def evaluate(args):
    run, cfg = run_of(args)
    return EVALUATE[cfg.task](run, args.data)


def predict(args):
    if not args.input or not args.output:
        raise UserError("predict needs --input FILE and --output FILE (.csv or .parquet)")
    run, cfg = run_of(args)
    return PREDICT[cfg.task](run, args.input, args.output)


def serve(args):
    run, cfg = run_of(args)
    serve_cfg = cfg.serve.model_copy(update={"host": args.host, "port": args.port})
    app = create_app(lambda: LOADERS[cfg.task](run), serve_cfg, title=f"tabular_mining · {cfg.name}")
    serve_app(app, serve_cfg.host, serve_cfg.port)


def tune(args):
    """Optuna search for one classify model on inner CV of the training rows; see tabular_mining.tune."""
    cfg = load_recipe(args)
    if cfg.task != "classify":
        raise UserError(f"tune works on task: classify recipes, not {cfg.task!r}")
    return classify_tune.tune(cfg)


def stream(args):
    """Score JSON lines (stdin, a file or Kafka) with a run, in micro-batches; see tabular_mining.stream."""
    run, cfg = run_of(args)
    return stream_stage(LOADERS[cfg.task](run), cfg.stream, args.input, args.output)


PREPROCESS = {"classify": _preprocess_classify, "segment": segments_task.preprocess, "rules": rules_task.preprocess}
TRAIN = {"classify": lambda cfg: (classify_dask.train_dask if cfg.distributed == "dask" else classify_train.train)(cfg),
         "segment": segments_task.train, "rules": rules_task.train}
EVALUATE = {"classify": lambda run, data: classify_eval.evaluate_run(run, data=data), "segment": segments_task.evaluate,
            "rules": rules_task.evaluate}
PREDICT = {"classify": lambda run, i, o: classify_predict.predict_file(classify_eval.load_classify_run(run, True), i, o),
           "segment": segments_task.predict, "rules": rules_task.predict}
LOADERS = {"classify": classify_serve.load_predictor, "segment": segments_serve.load_predictor,
           "rules": rules_serve.load_predictor}
