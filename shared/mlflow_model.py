"""A finished run as an MLflow pyfunc model, so MLflow's own tools load and serve it::

    import mlflow
    model = mlflow.pyfunc.load_model("runs:/<mlflow run id>/model")
    model.predict(pandas.DataFrame([{"tenure": 3, "contract": "Month-to-month", ...}]))    # churn
    model.predict(pandas.DataFrame({"text": ["这本书写得很好", "质量太差了"]}))              # sentiment

    mlflow models serve -m runs:/<mlflow run id>/model --env-manager local    # POST /invocations

:class:`RunModel` holds no model code of its own: the run folder is the model's artifact, and
``load_context`` opens it with the app's ``load`` (:mod:`shared.api`: the task's predictor, the
very hooks the server runs), so a DataFrame row is one ``/predict`` instance (a record of its
columns, or the value of one column such as ``text``) and each output row is that instance's
prediction as the server answers it, nested keys flattened (``probabilities.pos``). Request
options (churn's ``contributions``) are MLflow params. Loading needs mlref installed: the pickled
model names this module's class. Logged by :mod:`shared.tracking` at ``finish_run`` for the tasks
that ask for it (:func:`shared.tracking.log_pyfunc_at_finish`); this module imports MLflow.
"""
from __future__ import annotations

import importlib
import math
from importlib import metadata
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import pandas as pd

ARTIFACT = "model"  # runs:/<id>/model
_NUMERIC = {"double", "float", "long", "integer"}


def load_app_model(app: str, run: str | Path):
    """The run as a :class:`shared.api.Model`, through the app package's ``load`` (``<app>/__init__.py``)."""
    return importlib.import_module(app).load(run)


def instances(frame: pd.DataFrame, column: str | None) -> list:
    """The ``/predict`` instances of ``frame``: each row as a record (NaN and NA become ``None``,
    numbers Python numbers, as JSON would give them) or, with ``column``, that column's values."""
    if column is not None:
        return [_native(v) for v in frame[column].tolist()]
    return [{k: _native(v) for k, v in row.items()} for row in frame.to_dict("records")]


def _native(value: Any) -> Any:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    return value.item() if hasattr(value, "item") else value  # numpy scalars -> int / float / bool / str


def predictions_frame(model, frame: pd.DataFrame, column: str | None, params: dict | None = None) -> pd.DataFrame:
    """One row per instance of ``frame``: the server's prediction for it, nested keys flattened."""
    answer = model.predict(instances(frame, column), **(params or {}))
    return pd.json_normalize(answer["predictions"])


class RunModel(mlflow.pyfunc.PythonModel):
    """The run folder (artifact ``run``) behind the server's predictor; ``model_config`` names the
    app and, for one-column instances, the column."""

    def load_context(self, context) -> None:
        self.column = context.model_config.get("column")
        self.model = load_app_model(context.model_config["app"], context.artifacts["run"])

    def predict(self, context, model_input, params=None):
        return predictions_frame(self.model, pd.DataFrame(model_input), self.column, params)


def save_run_model(path: Path, app: str, run: Path, folder: Path, column: str | None = None) -> Path:
    """Write the MLflow model of ``run`` to ``path``, with ``folder`` (the run folder without
    resume state) as its artifact; its signature and input example come from the predictor's own
    example request, scored once here."""
    from mlflow.models import infer_signature

    model = load_app_model(app, run)
    example = dict(model.example())
    shown = example.pop("instances")
    frame = pd.DataFrame({column: shown}) if column else pd.DataFrame.from_records(shown)
    params = {k: v.default for k, v in model.predictor.request_model.model_fields.items()
              if k in example and isinstance(v.default, (bool, int, float, str))}
    signature = infer_signature(frame, predictions_frame(model, frame, column), params=params or None)
    signature.inputs = _numbers_as_any(signature.inputs)
    mlflow.pyfunc.save_model(
        str(path), python_model=RunModel(), artifacts={"run": str(folder)}, signature=signature,
        input_example=frame, model_config={"app": app, "column": column},
        pip_requirements=[f"mlref=={metadata.version('mlref')}"])
    return path


def _numbers_as_any(schema):
    """Number columns typed ``Any``: MLflow refuses an int64 column for a ``double`` one (and the
    reverse), where the server takes any JSON number; the predictor's own checks still apply."""
    from mlflow.types.schema import AnyType, ColSpec, Schema

    return Schema([ColSpec(AnyType(), c.name, required=c.required) if getattr(c.type, "name", None) in _NUMERIC else c
                   for c in schema.inputs])
