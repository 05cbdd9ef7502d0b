"""The one command line of every app: ``run_app(app, TASKS)`` is all an ``__main__`` calls::

    python -m <app> preprocess --config RECIPE [key=value ...]
    python -m <app> train      --config RECIPE [--run DIR] [key=value ...]   # resumes an unfinished run
    python -m <app> evaluate   [--run DIR | --config RECIPE] [--data FILE] [key=value ...]
    python -m <app> predict    [--run DIR | --config RECIPE] --input FILE --output FILE
    python -m <app> export     [--run DIR | --config RECIPE]
    python -m <app> serve      [--run DIR | --config RECIPE] [--host H] [--port P]
    python -m <app> <extra>    ...                                           # compare, tune, stream …

The recipe's ``task:`` key picks the :class:`shared.tasks.Task`. Every stage after ``train`` takes
the task and config **from the run** (``--run``, else the recipe's ``latest``), with the
command-line overrides applied on top; a recipe of another task than the run's is refused. A
:class:`UserError` (and a stage the task lacks) is one line on stderr and exit status 2.
"""
from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from shared.config import apply_overrides, read_recipe, resolve_recipe, to_dict, validate
from shared.errors import UserError
from shared.runs import finish_run, latest_run, load_run_config, resolve_run, run_status, start_run, task_dir
from shared.tasks import STAGES, Task

HELP = {
    "preprocess": "validate, clean and split the recipe's data; cache it",
    "train": "train the recipe (resumes its newest unfinished run; --run DIR resumes that one)",
    "evaluate": "score a run on its test split, or on --data FILE (written to evaluations/<stem>/)",
    "predict": "batch-score --input FILE into --output FILE",
    "export": "write ONNX (+ int8 where the task has it) into the run",
    "serve": "REST API over a run: POST /predict, /readyz, /metadata, /metrics, a demo page at /",
}
# the options each stage takes, beyond --config, overrides, -v and --print-config
OPTIONS = {"preprocess": (), "train": ("run",), "evaluate": ("run", "data"), "predict": ("run", "input", "output"),
           "export": ("run",), "serve": ("run", "host", "port")}
OPTION_HELP = {
    "run": "run directory (default: the recipe's runs/<app>/<recipe>/latest)",
    "data": "a file or folder in the documented format to score instead of the test split",
    "input": "the file to score ('-' = stdin where the stage streams)",
    "output": "where to write the predictions ('-' = stdout where the stage streams)",
    "host": "bind address (default: the recipe's serve.host)",
    "port": "port (default: the recipe's serve.port)",
}


def build_parser(app: str, tasks: Mapping[str, Task], default_config: str | None,
                 prog: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog or f"python -m {app}", description=f"{app}: tasks " + ", ".join(tasks))
    sub = parser.add_subparsers(dest="stage", required=True, metavar="stage")
    extras = {name: extra for task in tasks.values() for name, extra in task.extra.items()}
    names = list(STAGES) + list(extras)  # every standard stage: one a task lacks is a one-line error
    for name in names:
        text = HELP.get(name) or extras[name].help
        p = sub.add_parser(name, help=text, description=text)
        p.add_argument("--config", default=None, help="recipe: a YAML file or a shipped recipe's name, e.g. "
                       f"{default_config or 'churn-quick'} (default: {default_config or 'none'})")
        if name in OPTIONS:
            options = OPTIONS[name]
        else:
            options = ("run", "input", "output") if extras[name].on == "run" else ()
        for option in options:
            kind = int if option == "port" else str
            text = _run_help(app, default_config, name) if option == "run" else OPTION_HELP[option]
            p.add_argument(f"--{option}", type=kind, default=None, help=text)
        p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
        p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
        p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. train.epochs=3")
    return parser


def _run_help(app: str, default_config: str | None, stage: str) -> str:
    """``--run``'s help with the run it really defaults to: the default recipe's ``latest``."""
    if stage == "train":
        return "an unfinished run to resume (default: the newest unfinished run of the recipe and config, else a new run)"
    try:
        name = read_recipe(resolve_recipe(app, default_config)).get("name") if default_config else None
    except (UserError, OSError, ValueError):  # no recipe at hand (an install without configs): the rule
        name = None
    where = f"{task_dir(app, name) / 'latest'}" if name else f"runs/{app}/<recipe>/latest"
    return f"run directory (default: the --config recipe's latest run; without --config, {where})"


def _task_of(app: str, tasks: Mapping[str, Task], data: dict, source: str) -> tuple[str, Task]:
    name = data.get("task")
    if name is None and len(tasks) == 1:
        name = next(iter(tasks))
    if name not in tasks:
        raise UserError(f"{source}: task {name!r} is not a {app} task; {app} has: {', '.join(tasks)}")
    return name, tasks[name]


def recipe_config(app: str, tasks: Mapping[str, Task], path: str, overrides: Sequence[str]):
    """The task and typed config of recipe ``path`` (a file, or a shipped recipe's name) with ``overrides``."""
    path = resolve_recipe(app, path)
    data = apply_overrides(read_recipe(path), overrides)
    name, task = _task_of(app, tasks, data, path)
    data.setdefault("task", name)
    return name, task, validate(task.config, data, source=path, overrides=overrides)


def run_config(app: str, tasks: Mapping[str, Task], run: Path, overrides: Sequence[str]):
    """The task and config a run was trained with, ``overrides`` applied on top."""
    try:
        saved = load_run_config(run)
    except UserError:
        raise
    except Exception:  # noqa: BLE001 -- a damaged config.yaml is the user's to fix, not a traceback
        raise UserError(f"{run}/config.yaml is unreadable; the run is damaged (train again)") from None
    owner = run_status(run).get("app")
    if owner and owner != app:
        raise UserError(f"{run} is a {owner} run: use python -m {owner}")
    data = apply_overrides(saved, overrides)
    if data.get("task") is not None and data["task"] not in tasks:  # e.g. a task renamed since (recsys: topk)
        raise UserError(f"{run} was trained as task {data['task']!r}, which this version of {app} does not have "
                        f"(it has: {', '.join(tasks)}); its files may not match either: train it again "
                        f"(python -m {app} train --config <recipe>)")
    name, task = _task_of(app, tasks, data, f"{run}/config.yaml")
    return name, task, validate(task.config, data, source=f"{run}/config.yaml", overrides=overrides)


def trained_config(app: str, tasks: Mapping[str, Task], args: argparse.Namespace, default_config: str | None):
    """``(task name, task, cfg, run)`` for a stage after ``train``: the run is ``--run``, else the
    recipe's ``latest``; the config is the run's own, with the command-line overrides on top."""
    recipe = None
    if args.config or not args.run:
        path = args.config or default_config
        if path is None:
            raise UserError("give --run DIR or --config RECIPE")
        recipe = recipe_config(app, tasks, path, args.overrides)
    run = resolve_run(args.run) if args.run else latest_run(app, recipe[2].name)
    name, task, cfg = run_config(app, tasks, run, args.overrides)
    if recipe is not None and recipe[0] != name:
        raise UserError(f"{args.config} is a {recipe[0]} recipe but {run} is a {name} run; "
                        "drop --config or pass a run of that recipe")
    return name, task, cfg, run


def _stage_of(task_name: str, task: Task, stage: str):
    fn = task.stage(stage)
    if fn is None:
        raise UserError(f"the {task_name} task has no {stage} stage; it has: {', '.join(task.stages())}")
    return fn


def _join_process_group(cfg: Any) -> None:
    """Under ``torchrun`` join the process group before a run is started, so that rank 0 can hand
    its run directory to the others (one run directory per run, not per rank)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return
    from shared.device import resolve_device
    from shared.distributed import setup_distributed

    train = getattr(cfg, "train", None)
    setup_distributed(resolve_device(getattr(train, "device", "auto")))


def dispatch(app: str, tasks: Mapping[str, Task], args: argparse.Namespace, default_config: str | None):
    """Run ``args.stage``; returns the stage's summary (``None`` for ``serve``)."""
    stage = args.stage
    extra = next((t.extra[stage] for t in tasks.values() if stage in t.extra), None)
    if stage in ("preprocess", "train") or (extra is not None and extra.on == "recipe"):
        if stage == "train" and args.run and not args.config:
            run = resolve_run(args.run)
            name, task, cfg = run_config(app, tasks, run, args.overrides)
        else:
            name, task, cfg = recipe_config(app, tasks, args.config or default_config, args.overrides)
        fn = _stage_of(name, task, stage)
        if stage == "train" and task.resolve_config is not None:
            cfg = task.resolve_config(cfg)
        if args.print_config:
            return to_dict(cfg)
        if stage == "preprocess":
            return fn(cfg)
        _join_process_group(cfg)
        run = start_run(app, cfg, getattr(args, "run", None), suffix="" if stage == "train" else stage)
        return {"run": str(run), **finish_run(run, cfg, fn(cfg, run))}
    name, task, cfg, run = trained_config(app, tasks, args, default_config)
    fn = _stage_of(name, task, stage)
    if args.print_config:
        return to_dict(cfg)
    if stage == "evaluate":
        return fn(cfg, run, Path(args.data) if args.data else None)
    if stage == "predict" or extra is not None:
        if stage == "predict" and (not args.input or not args.output):
            raise UserError("predict needs --input FILE and --output FILE")
        return fn(cfg, run, _path(args.input), _path(args.output))
    if stage == "export":
        return fn(cfg, run)
    return _serve(app, name, fn, cfg, run, args)


def _path(value: str | None) -> Path | str | None:
    return value if value in (None, "-", "kafka") else Path(value)


def _serve(app: str, task_name: str, predictor, cfg, run: Path, args) -> None:
    """Serve ``predictor(cfg, run)``. The app is handed over as a picklable build function, so
    ``serve.workers > 1`` can build one app (model, batcher) per worker process; ``--host`` and
    ``--port`` win over the recipe's ``serve.host``/``serve.port``."""
    from shared.serving import create_app, serve

    title = f"mlref {app} · {task_name} · {cfg.name}"
    build = functools.partial(create_app, functools.partial(predictor, cfg, run), cfg.serve, title,
                              predictor_type=getattr(predictor, "__self__", None))
    serve(build, cfg.serve, host=args.host, port=args.port)


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S",
                        stream=sys.stderr)
    for noisy in ("jieba", "urllib3", "matplotlib", "PIL", "httpx", "numexpr", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def run_app(app: str, tasks: Mapping[str, Task], default_config: str | None = None,
            argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """Parse ``argv``, run the stage, print its summary as JSON; returns the exit status
    (0 done, 2 a mistake the user can fix, 130 interrupted). ``prog`` names the command in help."""
    args = build_parser(app, tasks, default_config, prog).parse_args(argv)
    _setup_logging(args.verbose)
    try:
        summary = dispatch(app, tasks, args, default_config)
    except UserError as exc:
        print(f"{app} {args.stage}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{app} {args.stage}: interrupted", file=sys.stderr)
        return 130
    finally:
        if int(os.environ.get("WORLD_SIZE", "1")) > 1 and "torch.distributed" in sys.modules:
            from shared.distributed import teardown_distributed

            teardown_distributed()
    if summary and int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps(summary, indent=2, ensure_ascii=False, default=str))
    return 0


def main(app: str, tasks: Mapping[str, Task], default_config: str | None = None) -> None:
    """``sys.exit(run_app(...))``: what each ``__main__`` calls."""
    sys.exit(run_app(app, tasks, default_config))
