"""Optional tracking (shared/tracking.py) through the real CLI on a toy task: MLflow's embedded
store gets the config as parameters, step and final metrics and the run folder; a resumed run
continues its MLflow run; TensorBoard gets event files; off by default; failures are contained."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from pydantic import Field

from shared import runs, tracking
from shared.cli import run_app
from shared.config import StrictModel
from shared.tasks import Task


class Train(StrictModel):
    lr: float = 0.1
    layers: list[int] = Field(default_factory=lambda: [1])


class ToyConfig(StrictModel):
    name: str = "toy"
    task: str = "toy"
    train: Train = Train()


CRASHES: list[bool] = []  # one entry per try that is to be killed mid-way


def train(cfg, run):
    """Logs three steps the way shared.training's history records look, then maybe dies."""
    for step in (1, 2, 3):
        tracking.log_step({"step": step, "epoch": step / 3, "train/loss": 1.0 / step, "note": "text"}, step)
    (run / "checkpoints").mkdir(exist_ok=True)
    (run / "checkpoints" / "last.pt").write_bytes(b"resume state")
    (run / "model.txt").write_text("weights")
    if CRASHES:
        CRASHES.pop()
        raise KeyboardInterrupt  # a kill in the middle of training
    return {"test/accuracy": 0.75, "train/steps": 3}


TASKS = {"toy": Task(config=ToyConfig, help="toy", train=train)}


@pytest.fixture
def recipe(tmp_path, monkeypatch):
    monkeypatch.setenv("MLREF_RUNS", str(tmp_path / "runs"))
    monkeypatch.delenv("MLREF_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLREF_TRACKING_EXPERIMENT", raising=False)
    path = tmp_path / "toy.yaml"
    path.write_text("name: toy\ntask: toy\ntrain: {lr: 0.1, layers: [2, 3]}\n")
    return path


def test_mlflow_gets_params_metrics_and_the_run_folder_and_a_resume_continues_it(recipe, monkeypatch):
    mlflow = pytest.importorskip("mlflow")
    monkeypatch.setenv("MLREF_TRACKING", "mlflow")
    monkeypatch.setattr(tracking, "_open", [])
    command = ["train", "--config", str(recipe)]
    CRASHES[:] = [True, True]  # killed twice mid-way: the MLflow run is left running, like the mlref run
    assert [run_app("app", TASKS, argv=command) for _ in range(3)] == [130, 130, 0]  # the third finishes
    assert run_app("app", TASKS, argv=[*command, "train.lr=0.2"]) == 0  # another config: another run

    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking.default_uri())
    table = mlflow.search_runs(experiment_names=["app/toy"])
    assert sorted(table["params.train.lr"]) == ["0.1", "0.2"]  # two MLflow runs, not four
    assert set(table["status"]) == {"FINISHED"} and set(table["metrics.test/accuracy"]) == {0.75}
    client = mlflow.tracking.MlflowClient(tracking_uri=tracking.default_uri())
    (done,) = client.search_runs([client.get_experiment_by_name("app/toy").experiment_id],
                                 filter_string="params.`train.lr` = '0.1'")
    run = Path(done.data.tags["mlref.run_dir"])
    assert runs.run_status(run)["status"] == "finished" and runs.run_status(run)["resumed"] == 2
    assert json.loads((run / tracking.LINK_FILE).read_text())["run_id"] == done.info.run_id
    assert done.data.params["train.lr"] == "0.1" and done.data.params["train.layers"] == "[2, 3]"
    assert done.data.params["name"] == "toy" and done.data.tags["mlref.app"] == "app"
    assert done.data.metrics["test/accuracy"] == 0.75 and done.data.metrics["train/steps"] == 3
    history = client.get_metric_history(done.info.run_id, "train/loss")
    assert sorted({m.step for m in history}) == [1, 2, 3] and "note" not in done.data.metrics
    artifacts = {a.path for a in client.list_artifacts(done.info.run_id)}
    assert {"config.yaml", "metrics.json", "README.md", "run.json", "model.txt"} <= artifacts
    assert "checkpoints" not in artifacts  # resume state stays out of the store
    assert (Path(runs.runs_root()) / ".mlflow" / "mlflow.db").exists()


def test_tensorboard_writes_the_step_and_final_scalars(recipe, monkeypatch):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    monkeypatch.setenv("MLREF_TRACKING", "tensorboard")
    assert run_app("app", TASKS, argv=["train", "--config", str(recipe)]) == 0
    run = runs.latest_run("app", "toy")
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    assert [e.step for e in events.Scalars("train/loss")] == [1, 2, 3]
    assert events.Scalars("test/accuracy")[-1].value == 0.75
    assert json.loads((run / tracking.LINK_FILE).read_text())["backend"] == "tensorboard"


def test_off_by_default_and_an_unknown_backend_is_a_one_line_error(recipe, monkeypatch, capsys):
    monkeypatch.delenv("MLREF_TRACKING", raising=False)
    assert run_app("app", TASKS, argv=["train", "--config", str(recipe)]) == 0
    run = runs.latest_run("app", "toy")
    assert not (run / tracking.LINK_FILE).exists() and not (runs.runs_root() / ".mlflow").exists()
    monkeypatch.setenv("MLREF_TRACKING", "wandb")
    assert run_app("app", TASKS, argv=["train", "--config", str(recipe), "train.lr=0.2"]) == 2
    assert "MLREF_TRACKING='wandb': use one of mlflow, tensorboard" in capsys.readouterr().err


class Broken:
    def log_step(self, metrics, step):
        raise ConnectionError("tracking server went away")

    def finish(self, run, metrics):
        raise ConnectionError("tracking server went away")


def test_a_tracker_failing_mid_run_costs_a_warning_not_the_run(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(tracking, "_open", [(tmp_path, Broken())])
    with caplog.at_level(logging.WARNING, logger="shared.tracking"):
        tracking.log_step({"train/loss": 0.5}, 1)
        tracking.end(tmp_path, {"test/accuracy": 1.0})
    assert "tracking server went away" in caplog.text and tracking._open == []


def test_flatten_gives_dotted_keys_and_json_values():
    config = {"name": "x", "train": {"lr": 0.1, "layers": [2, 3], "opt": {"beta": None}}, "extra": {}}
    assert tracking.flatten(config) == {"name": "x", "train.lr": "0.1", "train.layers": "[2, 3]",
                                        "train.opt.beta": "null", "extra": "{}"}


# --- the run as an MLflow pyfunc model (shared/mlflow_model.py): churn rows and sentiment texts ---
CHURN = ["--config", "configs/tabular_mining/churn-quick.yaml", "name=churn-mlflow", "data.sample=800",
         "eval.cv_folds=0", "model.name=xgboost", "model.xgboost.n_estimators=30"]
SENTIMENT = ["--config", "configs/nlp_app/sentiment-quick.yaml", "name=sentiment-mlflow", "model.name=bert",
             "data.max_examples=300", "model.max_length=48", "train.batch_size=16", "train.max_steps=4",
             "model.hidden_size=32", "model.num_layers=1", "model.num_heads=2", "model.intermediate_size=64",
             "train.device=cpu", "train.progress=false"]


@pytest.fixture
def tracked_train(recipe, monkeypatch):
    """``tracked_train(app, tasks, argv) -> (run dir, MLflow run id)``: train with MLflow tracking
    into the embedded store under tmp_path (also what ``runs:/`` URIs resolve against)."""
    pytest.importorskip("mlflow")
    monkeypatch.setenv("MLREF_TRACKING", "mlflow")
    monkeypatch.setattr(tracking, "_open", [])
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking.default_uri())

    def train(app: str, tasks, argv: list[str]) -> tuple[Path, str]:
        assert run_app(app, tasks, argv=["train", *argv]) == 0
        run = runs.latest_run(app, next(a.split("=", 1)[1] for a in argv if a.startswith("name=")))
        return run, json.loads((run / tracking.LINK_FILE).read_text())["run_id"]

    return train


def load_and_invoke(uri: str, frame, params: dict | None = None):
    """``(model, load_model(uri).predict(frame), answer)``: the answer is MLflow's scoring server's
    (what ``mlflow models serve`` runs) to the same rows as JSON, in this process."""
    import mlflow
    from fastapi.testclient import TestClient
    from mlflow.pyfunc import scoring_server

    model = mlflow.pyfunc.load_model(uri)
    rows = frame.astype(object).where(frame.notna(), None).values.tolist()
    body = {"dataframe_split": {"columns": list(frame.columns), "data": rows}, **({"params": params} if params else {})}
    reply = TestClient(scoring_server.init(model)).post("/invocations", json=body)
    assert reply.status_code == 200, reply.text
    return model, model.predict(frame, params=params), reply.json()["predictions"]


def test_churn_is_logged_as_a_pyfunc_model_of_raw_rows_with_the_servers_answers(tracked_train):
    import mlflow
    import yaml

    import tabular_mining
    from shared.mlflow_model import RunModel
    from tabular_mining.classify.data import load_splits
    from tabular_mining.tasks import TASKS as TABULAR

    run, run_id = tracked_train("tabular_mining", TABULAR, CHURN)
    ours = tabular_mining.load(run)
    names = ours.predictor.schema.names
    rows = load_splits(ours.cfg.name, ours.cfg.data).test[names].head(12).reset_index(drop=True)
    rows["tenure"] = rows["tenure"].astype("int64")  # an int column where the example had floats
    rows.loc[0, "monthly_charges"] = None  # missing, as the server takes null
    records = rows.astype(object).where(rows.notna(), None).to_dict("records")
    want = ours.predict(records, contributions=True)["predictions"]

    model, got, answer = load_and_invoke(f"runs:/{run_id}/model", rows, {"contributions": True})
    assert list(got["label"]) == [p["label"] for p in want] == [p["label"] for p in answer]
    assert list(got["probability"]) == [p["probability"] for p in want] == [p["probability"] for p in answer]
    assert list(got["contributions.(bias)"]) == [p["contributions"]["(bias)"] for p in want]
    assert "contributions.(bias)" not in model.predict(rows)  # the params' defaults are the server's
    assert type(model.unwrap_python_model()) is RunModel
    mlmodel = yaml.safe_load(Path(mlflow.artifacts.download_artifacts(f"runs:/{run_id}/model/MLmodel")).read_text())
    flavor = mlmodel["flavors"]["python_function"]
    assert flavor["loader_module"] == "mlflow.pyfunc.model" and flavor["code"] is None  # imports the installed mlref
    assert [c["name"] for c in json.loads(mlmodel["signature"]["inputs"])] == names


def test_sentiment_is_logged_as_a_pyfunc_model_of_a_text_column_with_the_servers_answers(tracked_train):
    import mlflow
    import pandas as pd

    import nlp_app
    from nlp_app.tasks import TASKS as NLP

    run, run_id = tracked_train("nlp_app", NLP, SENTIMENT)
    texts = ["这本书写得很好，值得一读。", "质量太差了，再也不买了！ＢＡＤ", "Ｈｅｌｌｏ　１２３"]
    want = nlp_app.load(run).predict(texts)["predictions"]
    _, got, answer = load_and_invoke(f"runs:/{run_id}/model", pd.DataFrame({"text": texts}))
    assert list(got["label"]) == [p["label"] for p in want] == [p["label"] for p in answer]
    for label in want[0]["probabilities"]:
        assert list(got[f"probabilities.{label}"]) == [p["probabilities"][label] for p in want]
    logged = Path(mlflow.artifacts.download_artifacts(f"runs:/{run_id}/model"))
    files = {p.relative_to(logged).as_posix() for p in logged.rglob("*")}
    assert f"artifacts/{run.name}/models/bert/tokenizer.json" in files, sorted(files)
    assert not any("checkpoints" in p for p in files)  # resume state stays out
