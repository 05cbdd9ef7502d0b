"""The Python API (shared.api.load / Model.predict) answers what POST /predict answers, with the
server's validation and limits, on a toy task trained through the real CLI."""
from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from pydantic import Field

from shared.api import load
from shared.cli import run_app
from shared.config import StrictModel
from shared.errors import UserError
from shared.runs import write_json
from shared.serving import Predictor, ServeConfig, StrictRequest, create_app
from shared.tasks import Task


class ToyConfig(StrictModel):
    name: str = "toy"
    task: str = "toy"
    scale: float = 2.0
    serve: ServeConfig = Field(default_factory=lambda: ServeConfig(max_instances=3, load_in_background=False))


class ToyRequest(StrictRequest):
    instances: list[float] = Field(min_length=1)
    offset: float = 0.0


class ToyPredictor(Predictor):
    request_model = ToyRequest

    def __init__(self, scale: float):
        self.scale = scale

    @classmethod
    def from_run(cls, cfg, run):
        return cls(cfg.scale)

    def items(self, body):
        return [(x, body.offset) for x in body.instances]

    def prepare(self, item):
        if item[0] < 0:
            raise ValueError("negative values are not allowed")
        return item

    def predict_batch(self, items):
        return [x * self.scale + off for x, off in items]

    def example(self):
        return {"instances": [1.0]}


def train(cfg, run):
    write_json(run / "weights.json", {"scale": cfg.scale})
    return {"test/score": 1.0}


TASKS = {"toy": Task(config=ToyConfig, help="toy", train=train, predictor=ToyPredictor.from_run)}


@pytest.fixture
def model(tmp_path, monkeypatch):
    monkeypatch.setenv("MLREF_RUNS", str(tmp_path / "runs"))
    recipe = tmp_path / "toy.yaml"
    recipe.write_text("name: toy\ntask: toy\nscale: 3\n")
    assert run_app("app", TASKS, argv=["train", "--config", str(recipe)]) == 0
    return tmp_path / "runs" / "app" / "toy" / "latest"


def test_predict_is_what_the_server_answers(model):
    m = load("app", TASKS, model)
    served = create_app(lambda: ToyPredictor.from_run(m.cfg, m.run), m.cfg.serve)
    with TestClient(served) as client:
        for body in ({"instances": [1.0, 2.0]}, {"instances": [1.0], "offset": 0.5}):
            answer = client.post("/predict", json=body)
            assert answer.status_code == 200
            options = {k: v for k, v in body.items() if k != "instances"}
            assert m.predict(body["instances"], **options) == answer.json()
    assert m.predict([1.0]) == {"predictions": [3.0]}
    assert load("app", TASKS, model, ["scale=10"]).predict([1.0]) == {"predictions": [10.0]}


def test_errors_are_the_servers(model):
    m = load("app", TASKS, model)
    with pytest.raises(UserError, match=r"instances\[1\]: negative values"):
        m.predict([1.0, -1.0])
    with pytest.raises(UserError, match="serve.max_instances"):
        m.predict([1.0] * 4)
    with pytest.raises(UserError, match="instances.0"):
        m.predict(["one"])
    with pytest.raises(UserError, match="unknown|Extra inputs"):
        m.predict([1.0], colour="red")
    with pytest.raises(UserError, match="a list of instances"):
        m.predict("1.0")
