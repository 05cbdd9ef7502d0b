"""Issue 13 against the recsys server on real sockets: one bad request among 32 concurrent valid
ones fails alone (every valid one 200, the same answer), and a schema-driven fuzzer (schemathesis)
against the server's own ``/openapi.json`` finds no 5xx and no undocumented answer."""
import functools

import httpx
import pytest

from recsys_app.tasks import TASKS
from shared.cli import run_app, run_config
from shared.runs import runs_root
from shared.serving import create_app
from shared.serving.testing import fuzz_openapi, names_instance, poisoned_batch, running_server

from .conftest import FILE_KEYS, TINY_SASREC, write_interactions

MODELS = ("ease", "sasrec")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny trained run per model of ``MODELS``."""
    base = tmp_path_factory.mktemp("recsys-serving")
    write_interactions(base)
    runs = {}
    for model in MODELS:
        argv = (["train", "--config", "configs/recsys_app/movielens.yaml"]
                + [f"{k}={v}" for k, v in FILE_KEYS.items()] + TINY_SASREC
                + [f"data.path={base / 'interactions.csv'}", f"data.items_path={base / 'items.csv'}",
                   f"name=serving-{model}", f"model.name={model}"])
        assert run_app("recsys_app", TASKS, argv=argv) == 0
        runs[model] = (runs_root() / "recsys_app" / f"serving-{model}" / "latest").resolve()
    return runs


def _setup(run, overrides=()):
    _, task, cfg = run_config("recsys_app", TASKS, run, [*overrides, "serve.load_in_background=false"])
    return cfg, task.predictor(cfg, run)


@pytest.mark.parametrize("model", MODELS)
def test_one_bad_request_among_32_concurrent_valid_ones_fails_alone(model, trained):
    cfg, predictor = _setup(trained[model], ["serve.max_wait_ms=50"])
    good = predictor.example()  # a known user and a session of items: both kinds in every batch
    bad = {"instances": [good["instances"][0], {"items": [good["instances"][1]["items"][0], 1.5]}]}
    app = create_app(functools.partial(lambda p: p, predictor), cfg.serve, title=model)
    # SASRec's float32 matrix products round differently for another batch size: a score of
    # 0.0538 was seen to move by 7e-8 (1.2e-6 of it); EASE sums rows and is exact
    rounding = {"rel": 1e-5, "abs_": 1e-6} if model == "sasrec" else {}
    with running_server(app, cfg.serve) as url:
        poisoned = poisoned_batch(url, good, bad, **rounding)
        assert 400 <= poisoned.status_code < 500 and names_instance(poisoned, 1), poisoned.text
        assert len(good["instances"]) == 2 and httpx.post(f"{url}/predict", json=good).json()["predictions"][0]["items"]


@pytest.mark.parametrize("model", MODELS)
def test_schemathesis_against_the_apps_own_openapi(model, trained):
    """Generated requests (valid and invalid by the schema) to every route: no 5xx, responses as
    documented. A bounded example count keeps it in the fast suite."""
    pytest.importorskip("schemathesis")
    cfg, predictor = _setup(trained[model])
    with running_server(create_app(lambda: predictor, cfg.serve, title=model), cfg.serve) as url:
        fuzz_openapi(url)
