"""Optional experiment tracking: every run that :func:`shared.runs.start_run` begins is mirrored to
MLflow or to TensorBoard event files, for every task of every app. Off unless asked for::

    MLREF_TRACKING=mlflow python -m nlp_app train --config sentiment-quick
    MLREF_TRACKING=tensorboard python -m vision_app train --config classify-quick

    MLREF_TRACKING              mlflow | tensorboard | off (default)
    MLREF_TRACKING_URI          mlflow: a server (http://host:5000) or a store URI; default the SQLite
                                file $MLREF_HOME/runs/.mlflow/mlflow.db (no server to start)
    MLREF_TRACKING_EXPERIMENT   mlflow experiment; default <app>/<recipe>

MLflow gets the resolved config as parameters (dotted keys), the step metrics the training loop
logs (:func:`log_step`), the final ``metrics.json`` and the run folder as artifacts; TensorBoard
gets the same scalars in ``<run>/tensorboard/``. ``<run>/tracking.json`` records where the run
went, so resuming the run continues the same MLflow run. The hooks are called by
:mod:`shared.runs` (:func:`begin`, :func:`end`) and the training loop (:func:`log_step`) only.

A task whose predictor takes rows or texts opts in to an MLflow model from its ``train`` stage,
``tracking.log_pyfunc_at_finish(run)`` (``column="text"`` for texts): the finished run is then
also logged as the pyfunc model ``runs:/<id>/model`` (:mod:`shared.mlflow_model`), which
``mlflow.pyfunc.load_model`` and ``mlflow models serve`` load.
"""
from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from shared.errors import UserError

log = logging.getLogger(__name__)
BACKENDS = ("mlflow", "tensorboard")
LINK_FILE = "tracking.json"  # which tracker holds this run: resuming continues it
SKIPPED_ARTIFACTS = ("checkpoints", "tensorboard")  # resume state (optimizer too); event files stay local
_open: list[tuple[Path, Any]] = []  # (run, tracker): a stage may start runs inside its own (compare)


def backend() -> str | None:
    """The tracker asked for by ``$MLREF_TRACKING`` (``None``: off)."""
    name = os.environ.get("MLREF_TRACKING", "").strip().lower()
    if name in ("", "off", "none", "0", "false"):
        return None
    if name not in BACKENDS:
        raise UserError(f"MLREF_TRACKING={name!r}: use one of {', '.join(BACKENDS)} or leave it unset")
    return name


def begin(app: str, run: Path, config: Mapping[str, Any]) -> None:
    """Open the tracker of ``run`` (new or resumed) and log its config; a no-op when tracking is
    off. Called by ``start_run`` on rank 0: a tracker that cannot start is a one-line error before
    any training, not a run that silently went untracked."""
    name = backend()
    if name is None:
        return
    run = Path(run)
    _open[:] = [(r, t) for r, t in _open if r != run]
    try:
        tracker = (MlflowTracker if name == "mlflow" else TensorBoardTracker).open(app, run, dict(config))
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001 -- a server or store problem, said in one line
        raise UserError(f"MLREF_TRACKING={name}: could not start tracking run {run}: {exc}") from None
    _open.append((run, tracker))


def log_step(metrics: Mapping[str, Any], step: int) -> None:
    """Log the numeric values of ``metrics`` at ``step`` to the run being trained (the newest open
    one); a no-op when tracking is off. The training loop calls it with each history record."""
    if not _open:
        return
    values = {_clean(k): float(v) for k, v in metrics.items() if k != "step" and _is_number(v)}
    _quietly("log step metrics", lambda: _open[-1][1].log_step(values, int(step)))


def log_pyfunc_at_finish(run: Path, column: str | None = None) -> None:
    """Ask for ``run`` to be logged as an MLflow pyfunc model (artifact ``model``) when it finishes:
    a DataFrame row is one instance of the task's ``/predict`` (a record of the row's columns, or
    the value of ``column``), the output the server's predictions. A no-op unless ``run`` is
    tracked by MLflow; a task's ``train`` stage calls it (the run must load with the app's
    ``load`` once finished)."""
    for path, tracker in _open:
        if path == Path(run) and isinstance(tracker, MlflowTracker):
            tracker.pyfunc = {"column": column}


def end(run: Path, metrics: Mapping[str, Any]) -> None:
    """Log the final metrics and the run folder, and close the tracker of ``run``. Called by
    ``finish_run`` after the run's files are written."""
    run = Path(run)
    found = [t for r, t in _open if r == run]
    if not found:
        return
    _open[:] = [(r, t) for r, t in _open if r != run]
    values = {_clean(k): float(v) for k, v in metrics.items() if _is_number(v)}
    _quietly("finish the tracked run", lambda: found[-1].finish(run, values))


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """``{"train": {"lr": 0.1}}`` -> ``{"train.lr": "0.1"}``: the config as MLflow parameters."""
    out: dict[str, str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return out


def default_uri() -> str:
    """The embedded store: a SQLite file under the runs folder (git-ignored, redirected by tests)."""
    from shared.runs import runs_root

    return f"sqlite:///{(runs_root() / '.mlflow' / 'mlflow.db').resolve()}"


class MlflowTracker:
    """One MLflow run per mlref run, through ``MlflowClient`` (no process-wide active run, so a
    stage that starts runs inside its own, like ``compare``, keeps each apart)."""

    def __init__(self, client, run_id: str, app: str):
        self.client, self.run_id, self.app = client, run_id, app
        self.pyfunc: dict | None = None  # set by log_pyfunc_at_finish

    @classmethod
    def open(cls, app: str, run: Path, config: dict) -> MlflowTracker:
        uri = os.environ.get("MLREF_TRACKING_URI") or default_uri()
        client = _mlflow_client(uri)
        link = _read_link(run)
        if link.get("backend") == "mlflow" and link.get("uri") == uri:
            run_id = link["run_id"]
            client.update_run(run_id, status="RUNNING")
        else:
            name = os.environ.get("MLREF_TRACKING_EXPERIMENT") or f"{app}/{run.parent.name}"
            experiment = _experiment(client, name, uri)
            tags = {"mlref.app": app, "mlref.task": str(config.get("task")), "mlref.run_dir": str(run.resolve())}
            run_id = client.create_run(experiment, run_name=run.name, tags=tags).info.run_id
            _write_link(run, {"backend": "mlflow", "uri": uri, "run_id": run_id, "experiment_id": experiment})
        tracker = cls(client, run_id, app)
        # a resumed run with other overrides changes parameter values, which MLflow refuses
        _quietly("log the config as parameters", lambda: tracker._log_params(flatten(config)))
        return tracker

    def _log_params(self, params: dict[str, str]) -> None:
        from mlflow.entities import Param

        items = [Param(k[:250], v[:6000]) for k, v in params.items()]
        for i in range(0, len(items), 100):  # MLflow's limit per batch
            self.client.log_batch(self.run_id, params=items[i:i + 100])

    def log_step(self, metrics: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(k, v, now, step) for k, v in metrics.items()])

    def finish(self, run: Path, metrics: dict[str, float]) -> None:
        self.log_step(metrics, 0)
        with tempfile.TemporaryDirectory(prefix="mlref-artifacts-") as tmp:
            folder = artifact_copy(run, Path(tmp) / run.name)
            self.client.log_artifacts(self.run_id, str(folder))
            if self.pyfunc is not None:
                _quietly("log the run as an MLflow model", lambda: self._log_model(run, folder, Path(tmp)))
        self.client.set_terminated(self.run_id, status="FINISHED")

    def _log_model(self, run: Path, folder: Path, tmp: Path) -> None:
        from shared.mlflow_model import ARTIFACT, save_run_model

        path = save_run_model(tmp / ARTIFACT, self.app, run, folder, **self.pyfunc)
        self.client.log_artifacts(self.run_id, str(path), artifact_path=ARTIFACT)


class TensorBoardTracker:
    """Event files in ``<run>/tensorboard/``: ``tensorboard --logdir runs/`` shows every run."""

    def __init__(self, writer):
        self.writer, self.step = writer, 0

    @classmethod
    def open(cls, app: str, run: Path, config: dict) -> TensorBoardTracker:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise UserError("MLREF_TRACKING=tensorboard needs the tensorboard package: "
                            "pip install 'mlref[tracking]'") from None
        writer = SummaryWriter(log_dir=str(run / "tensorboard"))
        text = "\n".join(f"    {k}: {v}" for k, v in flatten(config).items())  # indented = verbatim in TB
        writer.add_text("config", text)
        _write_link(run, {"backend": "tensorboard", "log_dir": str(run / "tensorboard")})
        return cls(writer)

    def log_step(self, metrics: dict[str, float], step: int) -> None:
        self.step = max(self.step, step)
        for key, value in metrics.items():
            self.writer.add_scalar(key, value, step)

    def finish(self, run: Path, metrics: dict[str, float]) -> None:
        self.log_step(metrics, self.step)  # the final metrics at the last training step
        self.writer.close()


def artifact_copy(run: Path, dest: Path) -> Path:
    """``run`` without resume state and event files (at any depth: a BERT keeps its checkpoints in
    ``models/bert/``) or links, hard-linked where the file system allows, else copied."""
    def skipped(folder: str, names: list[str]) -> list[str]:
        return [n for n in names if n in SKIPPED_ARTIFACTS or os.path.islink(os.path.join(folder, n))]

    shutil.copytree(run, dest, ignore=skipped, copy_function=_link_or_copy)
    return dest


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:  # another file system, or links not allowed
        shutil.copy2(src, dst)


def _mlflow_client(uri: str):
    try:
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise UserError("MLREF_TRACKING=mlflow needs MLflow: pip install 'mlref[tracking]'") from None
    if uri == default_uri():
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return MlflowClient(tracking_uri=uri)


def _experiment(client, name: str, uri: str) -> str:
    """The id of experiment ``name``, created on first use; with the embedded store its artifacts
    go beside the database, not into ``./mlartifacts`` of whatever directory the command ran in."""
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    location = None
    if uri == default_uri():
        location = (Path(uri.removeprefix("sqlite:///")).parent / "artifacts").as_uri()
    return client.create_experiment(name, artifact_location=location)


def _read_link(run: Path) -> dict:
    from shared.runs import read_json

    path = run / LINK_FILE
    try:
        return read_json(path) if path.exists() else {}
    except (OSError, ValueError):
        return {}  # a damaged link only costs the resumed run its MLflow continuity


def _write_link(run: Path, link: dict) -> None:
    from shared.runs import write_json

    write_json(run / LINK_FILE, link)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isinf(value)


def _clean(key: str) -> str:
    # MLflow keys allow letters, digits and _ - . / : and spaces; a class name may hold anything else
    return re.sub(r"[^\w\-./: ]", "_", str(key))


def _quietly(what: str, call) -> None:
    """Run a tracking call whose failure must not cost a training run: it is logged, not raised."""
    try:
        call()
    except Exception as exc:  # noqa: BLE001 -- tracking is a copy of the run; the run folder stays the record
        log.warning("tracking: could not %s: %s", what, exc)
