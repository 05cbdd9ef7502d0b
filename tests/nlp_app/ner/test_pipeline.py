"""NER smoke pipeline on tiny generated BIO files through the CLI: preprocess → train a few steps →
evaluate → predict → export → serve (with bad requests), served == offline, ONNX == torch."""
import json

import pytest
from fastapi.testclient import TestClient

from nlp_app.ner.config import NERConfig
from nlp_app.ner.data import write_bio
from nlp_app.ner.export import runner_for
from nlp_app.ner.model import entities, predict_tags
from nlp_app.ner.serve import NERPredictor
from shared.config import load_config
from shared.serving import create_app


@pytest.fixture(scope="module")
def recipe(recipes):
    return recipes["ner"][0]


@pytest.fixture(scope="module")
def run(trained):
    return trained("ner")


def test_train_writes_a_complete_run(run):
    for name in ("config.yaml", "config.json", "model.safetensors", "labels.json", "metrics.json", "README.md"):
        assert (run / name).exists(), name
    m = json.loads((run / "metrics.json").read_text())
    assert {"test/f1", "test/PER/f1", "valid/f1"} <= set(m)
    assert (run.parent / "latest").resolve() == run
    assert "## Named-entity recognition" in (run / "README.md").read_text(encoding="utf-8")


def test_predict_offsets_index_the_text(run, tmp_path, cli):
    texts = tmp_path / "texts.txt"
    texts.write_text("张伟在北京接受了新华社的采访。\n" + "很长" * 30 + "\n", encoding="utf-8")
    assert cli("predict", "--run", run, "--input", texts, "--output", tmp_path / "o.jsonl") == 0
    rows = [json.loads(x) for x in (tmp_path / "o.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 2 and rows[0]["text"].startswith("张伟")
    for row in rows:  # offsets index the text, whatever the model predicts
        for e in row["entities"]:
            assert row["text"][e["start"]:e["end"]] == e["text"] and e["type"] in {"PER", "LOC", "ORG"}


def test_evaluate_a_bmes_file_with_the_scheme_override(run, tmp_path, make_ner_sentences, cli):
    bio = make_ner_sentences(4, seed=11)
    bmes = [(chars, [_to_bmes(tags, i) for i in range(len(tags))]) for chars, tags in bio]
    path = write_bio(bmes, tmp_path / "other.bmes")
    assert cli("evaluate", "--run", run, "--data", path, "data.scheme=bmes") == 0
    assert (run / "evaluations" / "other" / "metrics.json").exists()


def _to_bmes(tags, i):
    tag = tags[i]
    if tag == "O":
        return tag
    kind, etype = tag.split("-")
    last = i + 1 == len(tags) or tags[i + 1] != f"I-{etype}"
    if kind == "B":
        return f"{'S' if last else 'B'}-{etype}"
    return f"{'E' if last else 'M'}-{etype}"


def test_long_texts_are_tagged_in_chunks(run, recipe):
    cfg = load_config(NERConfig, recipe)
    runner, tokenizer, labels = runner_for(cfg, run)
    tags = predict_tags(runner, tokenizer, [list("北京" * 40), list("上海")], labels, cfg.model.max_length)
    assert [len(t) for t in tags] == [80, 2]


def test_onnx_backend_tags_like_torch(run, recipe):
    texts = [list("张伟在北京接受了新华社的采访。"), list("王芳")]
    tags = {}
    for backend in ("torch", "onnx"):  # the ONNX file is exported on first use when missing
        cfg = load_config(NERConfig, recipe, [f"serve.backend={backend}"])
        runner, tokenizer, labels = runner_for(cfg, run)
        tags[backend] = predict_tags(runner, tokenizer, texts, labels, cfg.model.max_length)
    assert tags["onnx"] == tags["torch"] and (run / "model.onnx").exists()


def test_serve_predicts_like_offline_and_rejects_bad_input(run, recipe):
    cfg = load_config(NERConfig, recipe)
    text = "王芳在上海接受了人民日报的采访。"
    runner, tokenizer, labels = runner_for(cfg, run)
    offline = entities(text, predict_tags(runner, tokenizer, [list(text)], labels, cfg.model.max_length)[0])
    with TestClient(create_app(lambda: NERPredictor.from_run(cfg, run), cfg.serve)) as client:
        assert client.get("/readyz").status_code == 200
        r = client.post("/predict", json={"instances": [{"text": text}]})
        assert r.status_code == 200 and r.json()["predictions"][0]["entities"] == offline
        assert client.get("/metadata").json()["labels"][0] == "O"
        bad = {
            "too many": ({"instances": [{"text": "北京"}] * 4}, 413),
            "too long": ({"instances": [{"text": "北" * 41}]}, 413),
            "not a string": ({"instances": [{"text": 5}]}, 422),
            "unknown field": ({"instances": [{"text": "北京", "lang": "zh"}]}, 422),
            "blank": ({"instances": [{"text": "   "}]}, 422),
            "empty list": ({"instances": []}, 422),
            "wrong shape": ({"texts": ["北京"]}, 422),
        }
        for name, (body, status) in bad.items():
            r = client.post("/predict", json=body)
            assert r.status_code == status, name
            assert "error" in r.json(), name
        r = client.post("/predict", content=b"{not json", headers={"Content-Type": "application/json"})
        assert r.status_code == 422


def test_cli_errors_are_one_line_exit_2(recipe, cli, capsys):
    assert cli("train", "--config", recipe, "model.hidden_size=oops") == 2
    assert cli("compare", "--config", recipe) == 2
    err = capsys.readouterr().err
    assert "model.hidden_size" in err and "no compare stage" in err and "Traceback" not in err
