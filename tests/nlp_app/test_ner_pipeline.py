"""NER smoke pipeline on tiny generated BIO files: preprocess → train a few steps → evaluate →
predict → export → serve (with bad requests), served == offline."""
import json
import random

import pytest
from fastapi.testclient import TestClient

from nlp_app import ner, ner_serve
from nlp_app.__main__ import STAGES
from nlp_app.ner_config import NERConfig
from nlp_app.ner_data import write_bio
from shared.cli import build_parser, run_cli
from shared.config import load_config

PEOPLE, PLACES, ORGS = ["张伟", "王芳", "李娜", "刘洋"], ["北京", "上海", "广州"], ["新华社", "人民日报"]


def _sentences(n, seed):
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        p, c, o = rng.choice(PEOPLE), rng.choice(PLACES), rng.choice(ORGS)
        parts = [(p, "PER"), ("在", None), (c, "LOC"), ("接受了", None), (o, "ORG"), ("的采访。", None)]
        chars, tags = [], []
        for text, etype in parts:
            for k, ch in enumerate(text):
                chars.append(ch)
                tags.append("O" if etype is None else ("B-" if k == 0 else "I-") + etype)
        out.append((chars, tags))
    return out


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    root = tmp_path_factory.mktemp("ner")
    for name, n in (("train", 40), ("valid", 8), ("test", 8)):
        write_bio(_sentences(n, seed=hash(name) % 100), root / f"{name}.bio")
    cfg = root / "ner-test.yaml"
    cfg.write_text(f"""
name: ner-test
task: ner
data: {{source: splits, train: {root}/train.bio, valid: {root}/valid.bio, test: {root}/test.bio}}
model: {{max_length: 16, hidden_size: 32, num_layers: 1, num_heads: 2, intermediate_size: 64, vocab_min_freq: 1}}
train: {{max_steps: 6, batch_size: 8, lr: 0.003, monitor: f1, progress: false, device: cpu}}
export: {{quantize: false}}
serve: {{max_texts: 3, max_chars: 40, load_in_background: false}}
""", encoding="utf-8")
    return cfg


def _stage(*argv):
    """Run a stage the way ``python -m nlp_app`` does (real parser, task routing), returning its summary."""
    args = build_parser("nlp_app", STAGES, None).parse_args([str(a) for a in argv])
    return STAGES[args.stage].run(args)


@pytest.fixture(scope="module")
def trained(recipe):
    assert _stage("preprocess", "--config", recipe)["train_sentences"] == 40
    return _stage("train", "--config", recipe)


def test_train_writes_a_complete_run(trained):
    from pathlib import Path

    run = Path(trained["run"])
    for name in ("config.yaml", "config.json", "model.safetensors", "labels.json", "metrics.json", "MODEL_CARD.md"):
        assert (run / name).exists(), name
    m = json.loads((run / "metrics.json").read_text())
    assert {"test/f1", "test/PER/f1", "valid/f1"} <= set(m)
    assert (run.parent / "latest").resolve() == run


def test_evaluate_on_a_file_and_predict(trained, recipe, tmp_path):
    other = write_bio(_sentences(5, seed=7), tmp_path / "more.bio")
    out = _stage("evaluate", "--config", recipe, "--data", other)
    assert out["sentences"] == 5 and 0 <= out["data/f1"] <= 1
    texts = tmp_path / "texts.txt"
    texts.write_text("张伟在北京接受了新华社的采访。\n" + "很长" * 30 + "\n", encoding="utf-8")
    res = _stage("predict", "--config", recipe, "--input", texts, "--output", tmp_path / "o.jsonl")
    rows = [json.loads(x) for x in (tmp_path / "o.jsonl").read_text(encoding="utf-8").splitlines()]
    assert res["rows"] == 2 and rows[0]["text"].startswith("张伟")
    for row in rows:  # offsets index the text, whatever the model predicts
        for e in row["entities"]:
            assert row["text"][e["start"]:e["end"]] == e["text"] and e["type"] in {"PER", "LOC", "ORG"}


def test_long_texts_are_tagged_in_chunks(trained, recipe):
    _, cfg, runner, tokenizer, labels = ner.load(None, "ner-test")
    tags = ner.predict_tags(runner, tokenizer, [list("北京" * 40), list("上海")], labels, cfg.model.max_length)
    assert [len(t) for t in tags] == [80, 2]


def test_export_onnx_matches_torch(trained, recipe):
    out = _stage("export", "--config", recipe)
    assert out["max_abs_diff"] < 1e-3


def test_serve_predicts_like_offline_and_rejects_bad_input(trained, recipe):
    cfg = load_config(NERConfig, recipe)
    text = "王芳在上海接受了人民日报的采访。"
    _, run_cfg, runner, tokenizer, labels = ner.load(None, "ner-test")
    offline = ner.entities(text, ner.predict_tags(runner, tokenizer, [list(text)], labels, run_cfg.model.max_length)[0])
    with TestClient(ner_serve.build_app(cfg)) as client:
        assert client.get("/readyz").status_code == 200
        r = client.post("/predict", json={"instances": [{"text": text}]})
        assert r.status_code == 200 and r.json()["predictions"][0]["entities"] == offline
        assert client.get("/metadata").json()["labels"][0] == "O"
        bad = {
            "too many": ({"instances": [{"text": "北京"}] * 4}, 413),
            "too long": ({"instances": [{"text": "北" * 41}]}, 422),
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


def test_cli_errors_are_one_line_exit_2(recipe, capsys):
    assert run_cli("nlp_app", STAGES, argv=["train", "--config", str(recipe), "model.hidden_size=oops"]) == 2
    assert run_cli("nlp_app", STAGES, argv=["compare", "--config", str(recipe)]) == 2
    err = capsys.readouterr().err
    assert "model.hidden_size" in err and "no 'compare' stage" in err


def test_onnx_backend_tags_like_torch(trained, recipe):
    from pathlib import Path

    if not (Path(trained["run"]) / "model.onnx").exists():
        _stage("export", "--config", recipe)
    texts = [list("张伟在北京接受了新华社的采访。"), list("王芳")]
    tags = {}
    for backend in ("torch", "onnx"):
        _, cfg, runner, tokenizer, labels = ner.load(None, "ner-test", backend=backend)
        tags[backend] = ner.predict_tags(runner, tokenizer, texts, labels, cfg.model.max_length)
    assert tags["onnx"] == tags["torch"]
