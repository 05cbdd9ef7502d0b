"""QA smoke pipeline on the generated set: preprocess → train a few steps → evaluate (test split
and a SQuAD file) → predict → export → serve (with bad requests), served == offline."""
import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from nlp_app import qa, qa_serve
from nlp_app.__main__ import STAGES
from nlp_app.config import PretrainConfig
from nlp_app.ner_config import NERConfig
from nlp_app.qa_config import QAConfig
from nlp_app.qa_data import QAExample, generate_examples, to_squad
from shared.cli import build_parser, run_cli
from shared.config import load_config


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    cfg = tmp_path_factory.mktemp("qa") / "qa-test.yaml"
    cfg.write_text("""
name: qa-test
task: qa
data: {source: generated, generated_size: 60}
features: {doc_stride: 8, max_query_length: 12, max_answer_length: 8}
model: {max_length: 40, hidden_size: 32, num_layers: 1, num_heads: 2, intermediate_size: 64, vocab_min_freq: 1}
train: {max_steps: 6, batch_size: 8, lr: 0.003, monitor: f1, progress: false, device: cpu}
export: {quantize: false}
serve: {max_texts: 2, max_chars: 300, max_question_chars: 30, load_in_background: false}
""", encoding="utf-8")
    return cfg


def _stage(*argv):
    """Run a stage the way ``python -m nlp_app`` does (real parser, task routing), returning its summary."""
    args = build_parser("nlp_app", STAGES, None).parse_args([str(a) for a in argv])
    return STAGES[args.stage].run(args)


@pytest.fixture(scope="module")
def trained(recipe):
    summary = _stage("preprocess", "--config", recipe)
    manifest = json.loads((Path(summary["data_dir"]) / "manifest.json").read_text(encoding="utf-8"))
    assert summary["train_questions"] > 0 and Path(manifest["pretraining_text"]).stat().st_size > 0
    return _stage("train", "--config", recipe)


def test_train_writes_a_complete_run(trained):
    run = Path(trained["run"])
    for name in ("config.yaml", "config.json", "model.safetensors", "metrics.json", "MODEL_CARD.md", "history.jsonl"):
        assert (run / name).exists(), name
    m = json.loads((run / "metrics.json").read_text())
    assert {"test/exact_match", "test/f1", "valid/f1"} <= set(m)


def test_evaluate_file_and_predict_offsets(trained, recipe, tmp_path):
    path = tmp_path / "more.json"
    path.write_text(json.dumps(to_squad(generate_examples(5, seed=9)), ensure_ascii=False), encoding="utf-8")
    out = _stage("evaluate", "--config", recipe, "--data", path)
    assert out["data/count"] == 5 and 0 <= out["data/f1"] <= 1
    lines = tmp_path / "q.jsonl"
    rows_in = [{"question": "张伟出生于哪里？", "context": "张伟出生于北京。" + "那一年天气很好。" * 10},
               {"id": "x", "question": "王芳的职业是什么？", "context": "王芳的职业是医生。"}]
    lines.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows_in), encoding="utf-8")
    _stage("predict", "--config", recipe, "--input", lines, "--output", tmp_path / "a.jsonl")
    rows = [json.loads(x) for x in (tmp_path / "a.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows] == ["1", "x"]
    for r, given in zip(rows, rows_in):
        assert given["context"][r["start"]:r["end"]] == r["answer"] and 0 <= r["score"] <= 1


def test_export_onnx_matches_torch(trained, recipe):
    assert _stage("export", "--config", recipe)["max_abs_diff"] < 1e-3


def test_serve_answers_like_offline_and_rejects_bad_input(trained, recipe):
    cfg = load_config(QAConfig, recipe)
    inst = {"question": "李娜哪一年加入了新华社？", "context": "李娜在1999年加入了新华社。后来的事情大家都知道了。"}
    _, run_cfg, runner, tokenizer = qa.load(None, "qa-test")
    (span,) = qa.answer(runner, tokenizer, [QAExample("0", inst["question"], inst["context"])], run_cfg, 8)
    with TestClient(qa_serve.build_app(cfg)) as client:
        r = client.post("/predict", json={"instances": [inst]})
        assert r.status_code == 200
        pred = r.json()["predictions"][0]
        assert (pred["answer"], pred["start"], pred["end"]) == (span.text, span.start, span.end)
        bad = {
            "too many": ({"instances": [inst] * 3}, 413),
            "long context": ({"instances": [{**inst, "context": "长" * 301}]}, 422),
            "long question": ({"instances": [{**inst, "question": "问" * 31}]}, 422),
            "blank question": ({"instances": [{**inst, "question": "  "}]}, 422),
            "no context": ({"instances": [{"question": "谁？"}]}, 422),
            "empty list": ({"instances": []}, 422),
        }
        for name, (body, status) in bad.items():
            r = client.post("/predict", json=body)
            assert r.status_code == status, name
            assert "error" in r.json(), name
        assert "context" in client.post("/predict", json=bad["long context"][0]).json()["error"]


def test_cli_errors_are_one_line_exit_2(recipe, capsys):
    assert run_cli("nlp_app", STAGES, argv=["train", "--config", str(recipe), "model.hidden_size=oops"]) == 2
    assert run_cli("nlp_app", STAGES, argv=["compare", "--config", str(recipe)]) == 2
    err = capsys.readouterr().err
    assert "model.hidden_size" in err and "no 'compare' stage" in err


@pytest.mark.parametrize("full, quick, model", [
    ("qa.yaml", "qa-quick.yaml", QAConfig), ("ner.yaml", "ner-quick.yaml", NERConfig),
    ("qa_ner_pretrain.yaml", "qa_ner_pretrain-quick.yaml", PretrainConfig),
])
def test_recipes_load_and_quick_twins_share_the_name(full, quick, model):
    a, b = (load_config(model, Path("configs/nlp_app") / f) for f in (full, quick))
    assert a.name == b.name
