"""/openapi.json documents POST /predict (request, response, errors, example), right before the
model has loaded when the app says what it serves; /docs works without a network."""
import threading

import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel, ConfigDict, Field

from shared.serving import Predictor, ServeConfig, StrictRequest, create_app
from shared.serving.openapi import docs_assets


class Text(StrictRequest):
    text: str = Field(min_length=1, max_length=100)


class TextsRequest(StrictRequest):
    instances: list[Text] = Field(min_length=1)
    model_config = ConfigDict(json_schema_extra={"examples": [{"instances": [{"text": "hello"}]}]})


class Label(BaseModel):
    label: str
    probability: float


class LabelsResponse(BaseModel):
    predictions: list[Label]


class TextPredictor(Predictor):
    request_model = TextsRequest
    response_model = LabelsResponse

    def predict_batch(self, items):
        return [{"label": "pos", "probability": 0.9} for _ in items]

    def example(self):
        return {"instances": [{"text": "a loaded example"}]}


def _predict_op(schema: dict) -> dict:
    return schema["paths"]["/predict"]["post"]


def _ref_name(ref: dict) -> str:
    return ref["$ref"].rsplit("/", 1)[-1]


def test_predict_is_documented_from_the_predictor_type_before_the_model_loads():
    release = threading.Event()

    def slow_load():
        release.wait(10)
        return TextPredictor()

    app = create_app(slow_load, ServeConfig(load_in_background=True), predictor_type=TextPredictor)
    with TestClient(app) as c:
        assert c.get("/readyz").status_code == 503
        schema = c.get("/openapi.json").json()
        op = _predict_op(schema)
        body = op["requestBody"]["content"]["application/json"]
        assert _ref_name(body["schema"]) == "TextsRequest"
        components = schema["components"]["schemas"]
        assert components["TextsRequest"]["additionalProperties"] is False
        assert components["TextsRequest"]["examples"] == [{"instances": [{"text": "hello"}]}]
        assert components["Text"]["properties"]["text"]["maxLength"] == 100
        assert _ref_name(op["responses"]["200"]["content"]["application/json"]["schema"]) == "LabelsResponse"
        for code in ("401", "408", "413", "415", "422", "500", "503", "504"):
            assert _ref_name(op["responses"][code]["content"]["application/json"]["schema"]) == "ErrorBody"
        assert "fields" in components["ErrorBody"]["properties"]
        assert "multipart/form-data" not in op["requestBody"]["content"]
        release.set()
        for _ in range(500):
            if c.get("/readyz").status_code == 200:
                break
            threading.Event().wait(0.01)
        loaded = _predict_op(c.get("/openapi.json").json())["requestBody"]["content"]["application/json"]
        assert loaded["examples"]["example"]["value"] == {"instances": [{"text": "a loaded example"}]}


def test_explicit_models_win_and_a_generic_schema_is_the_fallback():
    release = threading.Event()
    app = create_app(lambda: release.wait(10) and TextPredictor(), ServeConfig(load_in_background=True))
    with TestClient(app) as c:
        op = _predict_op(c.get("/openapi.json").json())
        assert _ref_name(op["requestBody"]["content"]["application/json"]["schema"]) == "GenericRequest"
        assert _ref_name(op["responses"]["200"]["content"]["application/json"]["schema"]) == "GenericResponse"
        release.set()
    app = create_app(TextPredictor, ServeConfig(load_in_background=False), request_model=Text)
    with TestClient(app) as c:
        op = _predict_op(c.get("/openapi.json").json())
        assert _ref_name(op["requestBody"]["content"]["application/json"]["schema"]) == "Text"
        assert _ref_name(op["responses"]["200"]["content"]["application/json"]["schema"]) == "LabelsResponse"


def test_a_predictor_taking_uploads_documents_multipart():
    class Uploads(TextPredictor):
        def from_form(self, form):
            return TextsRequest(instances=[Text(text="x")])

    with TestClient(create_app(Uploads, ServeConfig(load_in_background=False))) as c:
        content = _predict_op(c.get("/openapi.json").json())["requestBody"]["content"]
        assert content["multipart/form-data"]["schema"]["properties"]["file"]["items"]["format"] == "binary"
        r = c.post("/predict", files={"file": ("a.txt", b"hi")})
        assert r.status_code == 200 and r.json()["predictions"][0]["label"] == "pos"


def test_the_probes_and_metadata_are_documented():
    with TestClient(create_app(TextPredictor, ServeConfig(load_in_background=False))) as c:
        paths = c.get("/openapi.json").json()["paths"]
    assert {"/livez", "/readyz", "/metadata", "/metrics", "/predict"} <= set(paths)
    assert "/" not in paths
    assert "503" in paths["/readyz"]["get"]["responses"]


@pytest.mark.skipif(docs_assets() is None, reason="fastapi-offline (Swagger UI assets) not installed")
def test_docs_are_served_from_local_assets():
    with TestClient(create_app(TextPredictor, ServeConfig(load_in_background=False))) as c:
        page = c.get("/docs")
        assert page.status_code == 200 and "/docs/assets/swagger-ui-bundle.js" in page.text
        assert "http://" not in page.text and "https://" not in page.text  # nothing fetched from elsewhere
        js = c.get("/docs/assets/swagger-ui-bundle.js")
        assert js.status_code == 200 and len(js.content) > 100_000
        assert c.get("/docs/assets/swagger-ui.css").status_code == 200


def test_docs_can_be_turned_off():
    with TestClient(create_app(TextPredictor, ServeConfig(load_in_background=False, docs=False))) as c:
        assert c.get("/docs").status_code == 404
        assert c.get("/openapi.json").status_code == 200


def test_too_many_uploaded_files_is_a_413_naming_the_limit():
    class Uploads(TextPredictor):
        def from_form(self, form):
            return TextsRequest(instances=[Text(text=f.filename) for _, f in form.multi_items()])

    app = create_app(Uploads, ServeConfig(load_in_background=False, max_instances=2))
    with TestClient(app) as c:
        files = [("file", (f"{i}.txt", b"hi")) for i in range(3)]
        r = c.post("/predict", files=files)
        assert r.status_code == 413 and "serve.max_instances" in r.json()["error"]
        assert c.post("/predict", files=files[:2]).status_code == 200


def test_the_instance_limit_is_published_as_max_items():
    class Capped(StrictRequest):  # a model's own, smaller cap is kept
        instances: list[Text] = Field(min_length=1, max_length=3)

    class Uploads(TextPredictor):
        def from_form(self, form):
            return TextsRequest(instances=[Text(text="x")])

    for predictor, request_model, limit in ((TextPredictor, None, 7), (Uploads, None, 7), (TextPredictor, Capped, 3)):
        app = create_app(predictor, ServeConfig(load_in_background=False, max_instances=7), request_model=request_model)
        with TestClient(app) as c:
            schema = c.get("/openapi.json").json()
            r = c.post("/predict", json={"instances": [{"text": "a"}] * 8})
        content = _predict_op(schema)["requestBody"]["content"]
        request = schema["components"]["schemas"][_ref_name(content["application/json"]["schema"])]
        assert request["properties"]["instances"]["maxItems"] == limit
        if predictor is Uploads:
            assert content["multipart/form-data"]["schema"]["properties"]["file"]["maxItems"] == 7
        assert r.status_code in (413, 422)  # what the document promises is what the server enforces
