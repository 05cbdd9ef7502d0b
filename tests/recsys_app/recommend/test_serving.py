"""Issue 13 against the recsys server on real sockets: one bad request among 32 concurrent valid
ones fails alone (every valid one 200, the same answer), and a schema-driven fuzzer (schemathesis)
against the server's own ``/openapi.json`` finds no 5xx and no undocumented answer."""
import asyncio
import functools

import httpx
import pytest

from recsys_app.tasks import TASKS
from shared.cli import run_app, run_config
from shared.runs import runs_root
from shared.serving import create_app
from shared.serving.testing import running_server, same_answer

from .conftest import FILE_KEYS, TINY_SASREC, make_interactions

MODELS = ("ease", "sasrec")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny trained run per model of ``MODELS``."""
    base = tmp_path_factory.mktemp("recsys-serving")
    frame, items = make_interactions()
    frame.to_csv(base / "interactions.csv", index=False)
    items.to_csv(base / "items.csv", index=False)
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


def _names_instance_1(response) -> bool:
    body = response.json()
    fields = [f["field"] for f in body.get("fields") or []]
    return "instances[1]" in body["error"] or any(f.startswith("instances.1") for f in fields)


@pytest.mark.parametrize("model", MODELS)
def test_one_bad_request_among_32_concurrent_valid_ones_fails_alone(model, trained):
    cfg, predictor = _setup(trained[model], ["serve.max_wait_ms=50"])
    good = predictor.example()  # a known user and a session of items: both kinds in every batch
    bad = {"instances": [good["instances"][0], {"items": [good["instances"][1]["items"][0], 1.5]}]}
    app = create_app(functools.partial(lambda p: p, predictor), cfg.serve, title=model)
    with running_server(app, cfg.serve) as url:

        async def scenario():
            async with httpx.AsyncClient(base_url=url, timeout=60) as client:
                calls = [client.post("/predict", json=good) for _ in range(32)]
                calls.insert(16, client.post("/predict", json=bad))
                return await asyncio.gather(*calls)

        responses = asyncio.run(scenario())
        poisoned = responses.pop(16)
        assert 400 <= poisoned.status_code < 500 and _names_instance_1(poisoned), poisoned.text
        assert [r.status_code for r in responses] == [200] * 32
        first = responses[0].json()  # the same answer each, floats to rounding (batches differ in size)
        assert len(first["predictions"]) == 2 and first["predictions"][0]["items"]
        # SASRec's float32 matrix products round differently for another batch size: a score of
        # 0.0538 was seen to move by 7e-8 (1.2e-6 of it); EASE sums rows and is exact
        rounding = {"rel": 1e-5, "abs_": 1e-6} if model == "sasrec" else {}
        differences = [d for r in responses if (d := same_answer(first, r.json(), **rounding))]
        assert not differences, differences[:3]
        assert httpx.get(f"{url}/readyz").status_code == 200
        assert 'status="500"' not in httpx.get(f"{url}/metrics").text


@pytest.mark.parametrize("model", MODELS)
def test_schemathesis_against_the_apps_own_openapi(model, trained):
    """Generated requests (valid and invalid by the schema) to every route: no 5xx, responses as
    documented. A bounded example count keeps it in the fast suite."""
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import HealthCheck, given, settings
    from schemathesis import GenerationMode

    cfg, predictor = _setup(trained[model])
    with running_server(create_app(lambda: predictor, cfg.serve, title=model), cfg.serve) as url:
        schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(max_examples=25, deadline=None, database=None, derandomize=True,
                      suppress_health_check=list(HealthCheck))
            @given(case=schema.as_strategy(generation_mode=mode))
            def check(case):
                response = case.call(base_url=url)
                assert response.status_code < 500, (case.method, case.path, response.text[:300])
                case.validate_response(response)

            check()
