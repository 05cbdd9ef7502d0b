"""Bad input over HTTP: every case is a 4xx in the one ``{"error": ...}`` shape, and the server
keeps serving. Also the per-instance hooks (prepare, cost) and the limits the factory enforces."""
import threading

import pytest
from fastapi.testclient import TestClient
from pydantic import Field, ValidationError

from shared.errors import UserError
from shared.serving import HTTPError, Predictor, ServeConfig, StrictRequest, create_app
from shared.serving.jsonbody import BadJSON, parse_json, validate_body


class Row(StrictRequest):
    x: float
    y: float
    tag: str = ""


class Body(StrictRequest):
    instances: list[Row] = Field(min_length=1)
    verbose: bool = False


class ScorePredictor(Predictor):
    """x + y per row; ``prepare`` refuses negative x (400 for x == -1, 422 otherwise)."""

    request_model = Body
    cost_unit = "characters"

    def __init__(self):
        self.prepared: list = []
        self.threads: set[str] = set()

    def cost(self, row: Row) -> float:
        return len(row.tag)

    def prepare(self, row: Row):
        self.threads.add(threading.current_thread().name)
        if row.x == -1:
            raise HTTPError(400, "x = -1 is reserved")
        if row.x < 0:
            raise ValueError(f"x must be >= 0, got {row.x:g}")
        if row.tag == "user-error":
            raise UserError("tag 'user-error' is refused")
        self.prepared.append(row)
        return (row.x, row.y, row.tag)

    def predict_batch(self, items):
        return [{"score": x + y, "tag": tag} for x, y, tag in items]

    def example(self):
        return {"instances": [{"x": 1, "y": 2}]}


def client(predictor=None, **cfg) -> TestClient:
    predictor = predictor or ScorePredictor()
    return TestClient(create_app(lambda: predictor, ServeConfig(load_in_background=False, **cfg)))


def row(x="1", tag='""'):
    return f'{{"instances": [{{"x": {x}, "y": 1, "tag": {tag}}}]}}'.encode()


BAD_BODIES = {
    "nested 10,000 deep": b'{"instances": ' + b"[" * 10_000 + b"]" * 10_000 + b"}",
    "5,000-digit integer": row("1" + "0" * 5000),
    "integer over 64 bits": row("123456789012345678901234"),
    "NaN": row("NaN"),
    "Infinity": row("Infinity"),
    "-Infinity": row("-Infinity"),
    "1e400": row("1e400"),
    "1E+0400": row("1E+0400"),
    "a 400-digit float, no exponent": row("1" + "0" * 400 + ".5"),
    "lone surrogate": row(tag=r'"\ud800"'),
    "lone low surrogate": row(tag=r'"a\udc00b"'),
    "surrogate as a key": b'{"instances": [{"x": 1, "y": 1}], "\\ud800": 1}',
    "a surrogate as UTF-8 bytes": row(tag='"X"').replace(b"X", b"\xed\xa0\x80"),
    "not UTF-8": row(tag=b'"\xff\xfe"'.decode("latin-1")).replace(b"\xc3\xbf\xc3\xbe", b"\xff\xfe"),
    "not JSON": b"{not json",
    "empty": b"",
    "a bare string": b'"instances"',
    "unknown field": b'{"instances": [{"x": 1, "y": 1}], "extra": 1}',
    "unknown field in an instance": b'{"instances": [{"x": 1, "y": 1, "z": 0}]}',
    "a string for a number": row('"1"'),
    "true for a number": row("true"),
    "'yes' for a bool": b'{"instances": [{"x": 1, "y": 1}], "verbose": "yes"}',
    "no instances": b'{"instances": []}',
}


@pytest.mark.parametrize("name", list(BAD_BODIES))
def test_bad_json_is_a_4xx_with_a_message_and_the_server_keeps_serving(name):
    with client() as c:
        r = c.post("/predict", content=BAD_BODIES[name], headers={"content-type": "application/json"})
        assert 400 <= r.status_code < 500, (r.status_code, r.text[:300])
        assert isinstance(r.json()["error"], str) and r.json()["error"]
        r.content.decode("utf-8")  # the answer itself is valid UTF-8
        assert c.post("/predict", content=row(), headers={"content-type": "application/json"}).status_code == 200
        assert 'status="500"' not in c.get("/metrics").text


GOOD_BODIES = [row(), row("1e99"), row("-0"), row("18446744073709551615"), row(tag=r'"\ud83d\ude00"'),
               row(tag='"NaN"'), b'\xef\xbb\xbf' + row(), b' {"instances": [{"x": 1, "y": 2}], "verbose": true} ']


def _outcome(fn):
    try:
        return "ok", fn().model_dump()
    except (ValidationError, BadJSON) as exc:
        return type(exc).__name__, str(exc)


@pytest.mark.parametrize("raw", [*BAD_BODIES.values(), *GOOD_BODIES], ids=[*BAD_BODIES, *map(str, range(len(GOOD_BODIES)))])
def test_the_fast_validation_path_answers_as_the_strict_one(raw):
    # validate_body reads most bodies with pydantic's JSON parser; every answer must be the strict path's
    assert _outcome(lambda: validate_body(Body, raw)) == _outcome(lambda: Body.model_validate(parse_json(raw)))


@pytest.mark.parametrize("x", ["1e99", "1.5E+307", "1e-400", "18446744073709551615", "12345678901234567890",
                               "0." + "0" * 30 + "1", "3"])
def test_numbers_in_range_are_accepted_with_or_without_the_long_number_checks(x):
    # bodies without a long number skip the per-number checks; both paths must read the same numbers
    with client() as c:
        r = c.post("/predict", content=row(x), headers={"content-type": "application/json"})
        assert r.status_code == 200, r.text
        assert r.json()["predictions"][0]["score"] == pytest.approx(float(x) + 1)


@pytest.mark.parametrize("tag", [r'"\ud83d\ude00"', r'"\\ud800"', '"\u00e9\u4e2d"'])
def test_valid_unicode_that_looks_like_a_surrogate_is_accepted(tag):
    with client() as c:
        r = c.post("/predict", content=row(tag=tag), headers={"content-type": "application/json"})
        assert r.status_code == 200, r.text
        assert r.json()["predictions"][0]["tag"] in ("\U0001F600", "\\ud800", "\u00e9\u4e2d")


def test_specific_messages():
    with client() as c:
        post = lambda body: c.post("/predict", content=body, headers={"content-type": "application/json"}).json()
        assert "64 bits" in post(BAD_BODIES["5,000-digit integer"])["error"]
        assert "not JSON" in post(BAD_BODIES["NaN"])["error"]
        assert "too large" in post(BAD_BODIES["1e400"])["error"]
        assert "surrogate" in post(BAD_BODIES["lone surrogate"])["error"]
        assert "nested too deeply" in post(BAD_BODIES["nested 10,000 deep"])["error"]
        assert post(BAD_BODIES["unknown field"])["fields"][0]["field"] == "extra"


@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded", "application/xml"])
def test_a_non_json_content_type_is_415(ctype):
    with client() as c:
        r = c.post("/predict", content=row(), headers={"content-type": ctype})
        assert r.status_code == 415 and "application/json" in r.json()["error"]
        ok = c.post("/predict", content=row(), headers={"content-type": "application/json; charset=utf-8"})
        assert ok.status_code == 200


def test_404_405_and_multipart_to_a_json_model_use_the_error_shape():
    with client() as c:
        assert c.get("/nope").status_code == 404 and c.get("/nope").json() == {"error": "Not Found"}
        r = c.get("/predict")
        assert r.status_code == 405 and r.json() == {"error": "Method Not Allowed"} and "POST" in r.headers["allow"]
        r = c.post("/predict", files={"f": ("a.txt", b"hi")})
        assert r.status_code == 415 and "JSON" in r.json()["error"]


def test_prepare_refuses_one_instance_with_its_index():
    predictor = ScorePredictor()
    with client(predictor) as c:
        body = {"instances": [{"x": 1, "y": 1}, {"x": -3, "y": 1}]}
        r = c.post("/predict", json=body)
        assert r.status_code == 422 and r.json()["error"] == "instances[1]: x must be >= 0, got -3"
        r = c.post("/predict", json={"instances": [{"x": -1, "y": 0}]})
        assert r.status_code == 400 and r.json()["error"] == "instances[0]: x = -1 is reserved"
        r = c.post("/predict", json={"instances": [{"x": 0, "y": 0, "tag": "user-error"}]})
        assert r.status_code == 422 and "instances[0]: tag 'user-error'" in r.json()["error"]
        assert c.post("/predict", json={"instances": [{"x": 2, "y": 1}]}).json()["predictions"][0]["score"] == 3


def test_instance_and_cost_limits_are_413_naming_the_key_and_checked_before_prepare():
    predictor = ScorePredictor()
    with client(predictor, max_instances=3, max_item_cost=5, max_request_cost=8) as c:
        predictor.prepared.clear()
        r = c.post("/predict", json={"instances": [{"x": 1, "y": 1}] * 4})
        assert r.status_code == 413 and "serve.max_instances" in r.json()["error"]
        r = c.post("/predict", json={"instances": [{"x": 1, "y": 1, "tag": "abc"}, {"x": 1, "y": 1, "tag": "abcdef"}]})
        assert r.status_code == 413 and r.json()["error"].startswith("instances[1] is 6 characters")
        assert "serve.max_item_cost" in r.json()["error"]
        r = c.post("/predict", json={"instances": [{"x": 1, "y": 1, "tag": "abcde"}] * 2})
        assert r.status_code == 413 and "10 characters in all" in r.json()["error"]
        assert "serve.max_request_cost" in r.json()["error"]
        assert predictor.prepared == []  # refused before any instance was prepared
        assert c.post("/predict", json={"instances": [{"x": 1, "y": 1, "tag": "abcd"}] * 2}).status_code == 200


def test_prepare_in_thread_runs_off_the_event_loop():
    class Threaded(ScorePredictor):
        prepare_in_thread = True

    threaded, inline = Threaded(), ScorePredictor()
    for predictor in (threaded, inline):
        with client(predictor) as c:
            predictor.threads.clear()
            assert c.post("/predict", json={"instances": [{"x": 1, "y": 1}]}).status_code == 200
    assert all(name.startswith("decode") for name in threaded.threads) and threaded.threads
    assert not any(name.startswith("decode") for name in inline.threads)


def test_memory_is_released_after_a_costly_request(monkeypatch):
    from shared.serving import pipeline

    calls = []
    monkeypatch.setattr(pipeline, "release_memory", lambda: calls.append(1))
    with client(release_memory_cost=5) as c:
        assert c.post("/predict", json={"instances": [{"x": 1, "y": 1, "tag": "ab"}]}).status_code == 200
        assert calls == []
        assert c.post("/predict", json={"instances": [{"x": 1, "y": 1, "tag": "abcdef"}]}).status_code == 200
        assert calls == [1]
    monkeypatch.undo()
    pipeline.release_memory()  # the real one runs (a no-op off glibc)


def test_a_client_that_disconnects_is_not_a_500():
    app = create_app(lambda: ScorePredictor(), ServeConfig(load_in_background=False))
    sent = []

    async def call_with_disconnect():
        async def receive():
            return {"type": "http.disconnect"}

        async def send(message):
            sent.append(message)

        scope = {"type": "http", "method": "POST", "path": "/predict", "raw_path": b"/predict",
                 "headers": [(b"content-type", b"application/json"), (b"content-length", b"40")],
                 "query_string": b"", "http_version": "1.1", "scheme": "http", "server": ("t", 80),
                 "client": ("c", 1), "root_path": "", "app": app}
        await app(scope, receive, send)

    with TestClient(app) as c:
        c.portal.call(call_with_disconnect)
        metrics = c.get("/metrics").text
    assert sent == []
    assert 'mlref_requests_total{route="/predict",status="499"} 1.0' in metrics
    assert 'status="500"' not in metrics


def test_a_model_output_that_is_not_json_is_a_500_not_blamed_on_the_client():
    class NaNPredictor(ScorePredictor):
        def predict_batch(self, items):
            return [{"score": float("nan") if x == 7 else x} for x, _, _ in items]

    with client(NaNPredictor()) as c:
        r = c.post("/predict", json={"instances": [{"x": 7, "y": 0}]})
        assert r.status_code == 500 and "logged" in r.json()["error"]
        assert c.post("/predict", json={"instances": [{"x": 1, "y": 0}]}).status_code == 200
