"""The ``mlref`` console scripts (``[project.scripts]`` in pyproject.toml)::

    mlref <app> <stage> [--config RECIPE] [options] [key=value ...]   # e.g. mlref tabular train --config churn-quick
    mlref <stage> --run DIR ...                                        # the app is read from the run
    mlref-nlp | mlref-tabular | mlref-vision | mlref-recsys <stage> ...

Only the chosen app's ``tasks.py`` is imported; everything else is :func:`shared.cli.run_app`.
"""
from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from pathlib import Path

from shared.cli import run_app
from shared.config import recipes_dir
from shared.errors import UserError
from shared.runs import resolve_run, run_status
from shared.tasks import STAGES

# the short names (the Makefile's suffixes, the `mlref-<short>` scripts) -> the app package
APPS = {"nlp": "nlp_app", "tabular": "tabular_mining", "vision": "vision_app", "recsys": "recsys_app"}


def mlref(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """``mlref <app> <stage> ...``: the command line of any app, importing only that app's
    ``tasks.py``. ``<app>`` is the package (``nlp_app``) or its short name (``nlp``); ``mlref <stage>
    --run DIR`` reads the app from the run (what the container images run); the ``mlref-<short>``
    scripts carry the app in their name. Returns the exit status."""
    prog = prog or Path(sys.argv[0]).name
    args = list(sys.argv[1:] if argv is None else argv)
    app = APPS.get(prog.removeprefix("mlref-")) if prog.startswith("mlref-") else None
    try:
        if app is None:
            if not args or args[0] in ("-h", "--help"):
                print(_usage(prog), file=sys.stdout if args else sys.stderr)
                return 0 if args else 2
            app, named = _app_of(args, prog)
            prog = f"{prog} {args.pop(0)}" if named else prog
        module = _tasks_module(app)
    except UserError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    return run_app(app, module.TASKS, getattr(module, "DEFAULT_CONFIG", None), args, prog=prog)


def main() -> None:
    """The ``mlref`` and ``mlref-<app>`` console scripts."""
    sys.exit(mlref())


def _app_of(args: Sequence[str], prog: str) -> tuple[str, bool]:
    """The app ``args`` name (``True``: ``args[0]`` names it) or that their ``--run`` belongs to."""
    first = args[0]
    if first in APPS or first in APPS.values():
        return APPS.get(first, first), True
    run = _run_option(args)
    if first in STAGES and run:
        owner = run_status(resolve_run(run)).get("app")
        if owner in APPS.values():
            return owner, False
        raise UserError(f"{run} does not say which app made it: {prog} <app> {first} --run {run}")
    raise UserError(f"{first!r} is not an app; apps: {', '.join(f'{k} ({v})' for k, v in APPS.items())}")


def _run_option(args: Sequence[str]) -> str | None:
    for i, arg in enumerate(args):
        if arg.startswith("--run="):
            return arg.split("=", 1)[1]
        if arg == "--run" and i + 1 < len(args):
            return args[i + 1]
    return None


def _tasks_module(app: str):
    try:
        return importlib.import_module(f"{app}.tasks")
    except ModuleNotFoundError as exc:
        if exc.name != f"{app}.tasks":
            raise
        raise UserError(f"{app} has no tasks table yet: use python -m {app}") from None


def _usage(prog: str) -> str:
    root = recipes_dir()
    lines = [f"usage: {prog} <app> <stage> [--config RECIPE] [options] [key=value ...]",
             f"       {prog} <stage> --run DIR [options] [key=value ...]   (the app is read from the run)",
             f"       {prog} <app> <stage> --help                           (that stage's options)",
             "", "stages: " + ", ".join(STAGES) + " (and each app's own: compare, tune, stream ...)",
             "apps and their shipped recipes (--config NAME works from any directory):"]
    for short, app in APPS.items():
        names = sorted(p.stem for p in (root / app).glob("*.yaml")) if root else []
        lines.append(f"  {short:8} {app:15} " + (", ".join(names) or "-"))
    lines.append("runs and data go under $MLREF_HOME (default: the current directory)")
    return "\n".join(lines)
