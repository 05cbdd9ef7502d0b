"""The task contract: one :class:`Task` record per task, the same stage signatures in every app.

Each app's ``tasks.py`` is a plain dict ``{"<task>": Task(...)}`` keyed by the recipe's ``task:``
value, and its ``__main__`` calls :func:`shared.cli.run_app` with it. The stages::

    preprocess(cfg) -> dict                                  # manifest / counts
    train(cfg, run) -> dict                                  # run from shared.runs.start_run
    evaluate(cfg, run, data: Path | None) -> dict            # test split, or a user's file
    predict(cfg, run, input: Path, output: Path) -> dict     # batch scoring
    export(cfg, run) -> dict                                 # paths written (ONNX, int8 …)
    predictor(cfg, run) -> shared.serving.Predictor          # what `serve` runs

``train`` receives a run that :func:`shared.runs.start_run` began (or resumed) and returns its
metrics; the CLI then calls :func:`shared.runs.finish_run`, so no stage creates a run directory
or moves ``latest`` itself. Stages after ``train`` get the config the run was trained with plus
the command-line overrides. A stage that is ``None`` is one the task does not have: the CLI
answers that with one line and exit status 2.

App-specific stages go in ``extra`` as :class:`Extra` records: ``on="recipe"`` stages
(``compare``, ``tune``) get ``(cfg, run)`` with a run of their own named ``<recipe>-<stage>``;
``on="run"`` stages (``stream``) get ``(cfg, run, input, output)`` for a trained run.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

Stage = Callable[..., Any]
STAGES = ("preprocess", "train", "evaluate", "predict", "export", "serve")


@dataclass(frozen=True)
class Extra:
    """An app-specific stage. ``on="recipe"``: ``fn(cfg, run) -> dict`` with a new (or resumed)
    run named ``<recipe name>-<stage>``; ``on="run"``: ``fn(cfg, run, input, output) -> dict`` on a
    trained run, like ``predict``."""

    fn: Stage
    help: str
    on: Literal["recipe", "run"] = "recipe"


@dataclass(frozen=True)
class Task:
    """One task of an app: its config model and its stages (``None``: the task has no such stage)."""

    config: type[BaseModel]
    help: str
    preprocess: Callable[[Any], dict] | None = None
    train: Callable[[Any, Path], dict] | None = None
    evaluate: Callable[[Any, Path, Path | None], dict] | None = None
    predict: Callable[[Any, Path, Path, Path], dict] | None = None
    export: Callable[[Any, Path], dict] | None = None
    predictor: Callable[[Any, Path], Any] | None = None
    extra: Mapping[str, Extra] = field(default_factory=dict)
    # (cfg) -> cfg, applied before ``train`` starts its run: where a recipe points at another run
    # (tuned parameters), fold that in so the run's config.yaml records what was trained
    resolve_config: Callable[[Any], Any] | None = None

    def stage(self, name: str) -> Stage | None:
        """The function behind stage ``name`` (``serve`` is the predictor factory), or ``None``."""
        if name in self.extra:
            return self.extra[name].fn
        if name == "serve":
            return self.predictor
        return getattr(self, name, None) if name in STAGES else None

    def stages(self) -> list[str]:
        """The names of the stages this task has, in pipeline order."""
        return [s for s in STAGES if self.stage(s) is not None] + list(self.extra)


def has_stage(tasks: Mapping[str, Task], stage: str) -> bool:
    return any(t.stage(stage) is not None for t in tasks.values())

