"""One Python API for every app, for notebooks and other programs::

    from vision_app import load
    model = load("runs/vision_app/detect/latest")          # any run dir; overrides as key=value strings
    model.predict([{"image": "photo.jpg"}])                 # the same dict POST /predict answers

``load`` reads the run's own task and config (as every stage after ``train`` does), builds the
task's :class:`shared.serving.Predictor`, and ``predict`` sends the instances through the very
hooks the server uses — schema, ``serve.max_instances`` and cost limits, ``prepare`` per instance,
``predict_batch``, ``respond`` — so the answers, and the errors, are the server's. A bad request
raises :class:`shared.errors.UserError` with the message the server would put in ``{"error": …}``.
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from shared.errors import UserError
from shared.tasks import Task


class Model:
    """A trained run, ready to predict in-process."""

    def __init__(self, app: str, task: str, cfg: Any, run: Path, predictor: Any):
        self.app, self.task, self.cfg, self.run, self.predictor = app, task, cfg, run, predictor

    def __repr__(self) -> str:
        return f"<mlref {self.app}.{self.task} model from {self.run}>"

    def predict(self, instances: Sequence[Any], **options: Any) -> dict:
        """Predict a list of instances (what ``/predict`` takes under ``"instances"``; request
        options such as ``contributions=True`` or ``k=5`` go in ``options``) and return the dict the
        server answers."""
        from shared.serving.pipeline import field_errors, prepare_request
        from shared.serving.predictor import HTTPError

        if isinstance(instances, (str, bytes, Mapping)):
            raise UserError("predict takes a list of instances, e.g. model.predict([x]) for one")
        try:
            body = self.predictor.request_model.model_validate({"instances": list(instances), **options})
            prepared = prepare_request(self.predictor, body, self.cfg.serve)
        except ValidationError as exc:
            raise UserError("; ".join(f"{e['field']}: {e['message']}" for e in field_errors(exc))) from None
        except HTTPError as exc:
            raise UserError(exc.message) from None
        return self.predictor.respond(body, self.predictor.predict_batch(prepared.items))

    def metadata(self) -> dict:
        """What ``GET /metadata`` answers."""
        return self.predictor.metadata()

    def example(self) -> dict:
        """A valid request body for this model (``model.predict(**model.example())``)."""
        return self.predictor.example()


def load(app: str, tasks: Mapping[str, Task], run: str | os.PathLike, overrides: Iterable[str] = ()) -> Model:
    """The run at ``run`` as a :class:`Model` (``overrides`` like ``serve.backend=onnx``)."""
    from shared.cli import run_config
    from shared.runs import resolve_run

    path = resolve_run(run)
    name, task, cfg = run_config(app, tasks, path, list(overrides))
    if task.predictor is None:
        raise UserError(f"the {name} task has no predictor; it has: {', '.join(task.stages())}")
    return Model(app, name, cfg, path, task.predictor(cfg, path))
