"""The issue-13 catalogue against each tabular_mining server (classify, segment, rules): every bad
request is a 4xx in the ``{"error": ...}`` shape and the server keeps serving; one bad request
among 32 concurrent valid ones fails alone; the OpenAPI document describes request and response."""
import functools
import json

import pytest
from fastapi.testclient import TestClient

from shared.cli import run_config
from shared.serving import create_app
from shared.serving.testing import fuzz_openapi, poisoned_batch, running_server
from tabular_mining.tasks import TASKS

RUNS = {"classify": "churn_run", "segment": "segment_run", "rules": "rules_run", "regress": "regress_run"}
RESPONSES = {"classify": "ClassifyResponse", "segment": "SegmentResponse", "rules": "RulesResponse",
             "regress": "RegressResponse"}
# the numeric and the text feature each table's bad values go into (Telco customers; Ames houses)
FIELDS = {"classify": ("tenure", "contract"), "segment": ("tenure", "contract"),
          "regress": ("Lot_Area", "Neighborhood")}
X = '"__X__"'  # stands for the raw JSON put into a numeric or text field of a valid body


def _setup(task: str, run, overrides=()):
    _, _, cfg = run_config("tabular_mining", TASKS, run, [*overrides, "serve.load_in_background=false"])
    predictor = TASKS[task].predictor(cfg, run)
    return cfg, predictor


def _app(task: str, run, overrides=()):
    cfg, predictor = _setup(task, run, overrides)
    return create_app(lambda: predictor, cfg.serve, title=task), predictor


def _template(task: str, predictor, field: str) -> str:
    """The predictor's example with one field replaced by the placeholder ``X``: ``number`` is
    a numeric feature (``tenure``) or ``top_k``; ``text`` a categorical (``contract``) or an item
    (:data:`FIELDS`)."""
    body = predictor.example()
    if task == "rules":
        if field == "number":
            body["top_k"] = "__X__"
        else:
            body["instances"][0]["items"] = ["__X__"]
    else:
        body["instances"][0][FIELDS[task][0] if field == "number" else FIELDS[task][1]] = "__X__"
    return json.dumps(body)


CATALOGUE = {  # name: (field, raw JSON for the field) or a whole raw body
    "nested 10,000 deep": b'{"instances": ' + b"[" * 10_000 + b"]" * 10_000 + b"}",
    "5,000-digit integer": ("number", "1" + "0" * 5000),
    "Infinity": ("number", "Infinity"),
    "-Infinity": ("number", "-Infinity"),
    "NaN": ("number", "NaN"),
    "1e400": ("number", "1e400"),
    "true for a number": ("number", "true"),
    "a string for a number": ("number", '"5"'),
    "lone surrogate": ("text", r'"\ud800"'),
    "a number list for a string": ("text", "[1]"),
    "unknown top-level field": b"UNKNOWN_TOP",
    "unknown field in an instance": b"UNKNOWN_INSTANCE",
    "no instances": b'{"instances": []}',
    "a bare list": b"[]",
}


def _bad_body(task: str, predictor, name: str) -> bytes:
    case = CATALOGUE[name]
    if isinstance(case, tuple):
        return _template(task, predictor, case[0]).replace(X, case[1]).encode()
    body = predictor.example()
    if case == b"UNKNOWN_TOP":
        return json.dumps({**body, "verbose": True}).encode()
    if case == b"UNKNOWN_INSTANCE":
        body["instances"][0]["shoe_size"] = 42
        return json.dumps(body).encode()
    return case


@pytest.fixture(scope="module", params=sorted(RUNS))
def server(request):
    """(task, TestClient, predictor) for each task's run; the app is built once per module."""
    task = request.param
    app, predictor = _app(task, request.getfixturevalue(RUNS[task]))
    with TestClient(app) as client:
        yield task, client, predictor


def _assert_still_serving(client: TestClient, predictor) -> None:
    assert client.get("/readyz").status_code == 200
    assert client.post("/predict", json=predictor.example()).status_code == 200
    assert 'status="500"' not in client.get("/metrics").text


@pytest.mark.parametrize("name", list(CATALOGUE))
def test_bad_input_is_a_4xx_with_a_message_and_the_server_keeps_serving(server, name):
    task, client, predictor = server
    r = client.post("/predict", content=_bad_body(task, predictor, name), headers={"content-type": "application/json"})
    assert 400 <= r.status_code < 500, (task, name, r.status_code, r.text[:300])
    assert isinstance(r.json()["error"], str) and r.json()["error"]
    _assert_still_serving(client, predictor)


@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded", "application/xml"])
def test_a_non_json_content_type_is_415(server, ctype):
    _, client, predictor = server
    r = client.post("/predict", content=json.dumps(predictor.example()), headers={"content-type": ctype})
    assert r.status_code == 415 and "application/json" in r.json()["error"]
    _assert_still_serving(client, predictor)


def test_the_openapi_document_has_the_request_and_the_response(server):
    task, client, _ = server
    doc = client.get("/openapi.json").json()
    predict = doc["paths"]["/predict"]["post"]
    assert "application/json" in predict["requestBody"]["content"]
    ok = predict["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok["$ref"].endswith(RESPONSES[task])
    assert {"413", "415", "422"} <= set(predict["responses"])
    assert "examples" in doc["components"]["schemas"][RESPONSES[task]]


@pytest.mark.parametrize("task", ["classify", "segment", "regress"])
@pytest.mark.parametrize("value", ["1e308", "-3.5e38", "123456789012345678901"])
def test_a_number_a_float32_cannot_hold_is_refused_naming_the_field(task, value, request):
    app, predictor = _app(task, request.getfixturevalue(RUNS[task]))
    body = _template(task, predictor, "number").replace(X, value)
    with TestClient(app) as c:
        r = c.post("/predict", content=body, headers={"content-type": "application/json"})
        if value.startswith("1234"):  # over 64 bits: refused by the JSON reader itself
            assert r.status_code == 422 and "64 bits" in r.json()["error"]
        else:
            assert r.status_code == 422 and r.json()["error"].startswith(f"instances[0]: {FIELDS[task][0]}: "), r.text
        _assert_still_serving(c, predictor)


def test_a_record_far_outside_the_training_data_still_gets_a_segment(segment_run):
    app, predictor = _app("segment", segment_run)
    body = _template("segment", predictor, "number").replace(X, "1e30")  # its square overflows a float32
    with TestClient(app) as c:
        r = c.post("/predict", content=body, headers={"content-type": "application/json"})
        assert r.status_code == 200, r.text
        assert 1e25 < r.json()["predictions"][0]["distance"] < 1e35


def test_strict_types_for_request_options(churn_run, rules_run):
    app, predictor = _app("classify", churn_run)
    with TestClient(app) as c:
        r = c.post("/predict", json={**predictor.example(), "contributions": "yes"})
        assert r.status_code == 422 and r.json()["fields"][0]["field"] == "contributions"
    app, predictor = _app("rules", rules_run)
    with TestClient(app) as c:
        r = c.post("/predict", json={**predictor.example(), "fill_popular": 1})
        assert r.status_code == 422 and r.json()["fields"][0]["field"] == "fill_popular"


def test_a_basket_over_the_item_limit_is_413_naming_the_key(rules_run):
    app, _ = _app("rules", rules_run, ["serve.max_item_cost=5"])
    with TestClient(app) as c:
        r = c.post("/predict", json={"instances": [{"items": [f"i{j}" for j in range(6)]}]})
        assert r.status_code == 413 and "serve.max_item_cost" in r.json()["error"]
        assert c.post("/predict", json={"instances": [{"items": ["a", "a", "b"]}]}).status_code == 200


def _poison(task: str, predictor) -> tuple[dict, dict]:
    """A valid body and a body with one bad instance, for ``task``."""
    good = predictor.example()
    if task == "rules":
        return good, {"instances": [good["instances"][0], {"items": [f"x{j}" for j in range(2000)]}]}
    bad_row = {**good["instances"][0], FIELDS[task][0]: 1e308}  # over float32: refused by prepare
    return good, {**good, "instances": [good["instances"][0], bad_row]}


@pytest.mark.parametrize("task", sorted(RUNS))
def test_one_bad_request_among_32_concurrent_valid_ones_fails_alone(task, request):
    cfg, predictor = _setup(task, request.getfixturevalue(RUNS[task]), ["serve.max_wait_ms=50"])
    good, bad = _poison(task, predictor)
    app = create_app(functools.partial(lambda p: p, predictor), cfg.serve, title=task)
    with running_server(app, cfg.serve) as url:
        poisoned = poisoned_batch(url, good, bad)
        assert 400 <= poisoned.status_code < 500 and "instances[1]" in poisoned.json()["error"]


@pytest.mark.parametrize("task", sorted(RUNS))
def test_schemathesis_against_the_apps_own_openapi(task, request):
    """Generated requests (valid and invalid by the schema) to every route: no 5xx, responses as
    documented. A bounded example count keeps it in the fast suite."""
    pytest.importorskip("schemathesis")
    cfg, predictor = _setup(task, request.getfixturevalue(RUNS[task]))
    with running_server(create_app(lambda: predictor, cfg.serve, title=task), cfg.serve) as url:
        fuzz_openapi(url)
