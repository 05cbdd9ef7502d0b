"""QA smoke pipeline on the generated set through the CLI: preprocess → train a few steps →
evaluate (test split and a SQuAD file) → predict → export → serve (with bad requests), served ==
offline."""
import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from nlp_app.qa.config import QAConfig
from nlp_app.qa.data import QAExample, generate_examples, to_squad
from nlp_app.qa.export import runner_for
from nlp_app.qa.model import answer
from nlp_app.qa.serve import QAPredictor
from shared import runs
from shared.config import load_config
from shared.serving import create_app


@pytest.fixture(scope="module")
def recipe(recipes):
    return recipes["qa"][0]


@pytest.fixture(scope="module")
def run(trained):
    return trained("qa")


def test_preprocess_writes_the_splits_and_the_pretraining_text(recipe, cli, capsys):
    assert cli("preprocess", "--config", recipe) == 0
    summary = json.loads(capsys.readouterr().out)
    manifest = json.loads((Path(summary["data_dir"]) / "manifest.json").read_text(encoding="utf-8"))
    assert summary["train_questions"] > 0 and Path(manifest["pretraining_text"]).stat().st_size > 0


def test_train_writes_a_complete_run(run):
    for name in ("config.yaml", "config.json", "model.safetensors", "metrics.json", "README.md", "history.jsonl"):
        assert (run / name).exists(), name
    m = json.loads((run / "metrics.json").read_text())
    assert {"test/exact_match", "test/f1", "valid/f1"} <= set(m)


def test_evaluate_file_and_predict_offsets(run, tmp_path, cli):
    path = tmp_path / "more.json"
    path.write_text(json.dumps(to_squad(generate_examples(5, seed=9)), ensure_ascii=False), encoding="utf-8")
    assert cli("evaluate", "--run", run, "--data", path) == 0
    scores = runs.read_json(run / "evaluations" / "more" / "metrics.json")
    assert scores["data/count"] == 5 and 0 <= scores["data/f1"] <= 1
    lines = tmp_path / "q.jsonl"
    rows_in = [{"question": "张伟出生于哪里？", "context": "张伟出生于北京。" + "那一年天气很好。" * 10},
               {"id": "x", "question": "王芳的职业是什么？", "context": "王芳的职业是医生。"}]
    lines.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows_in), encoding="utf-8")
    assert cli("predict", "--run", run, "--input", lines, "--output", tmp_path / "a.jsonl") == 0
    rows = [json.loads(x) for x in (tmp_path / "a.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows] == ["1", "x"]
    for r, given in zip(rows, rows_in):
        assert given["context"][r["start"]:r["end"]] == r["answer"] and 0 <= r["score"] <= 1


def test_export_onnx_matches_torch(run, recipe):
    from nlp_app.qa.export import export

    assert export(load_config(QAConfig, recipe), run)["max_abs_diff"] < 1e-3


def test_serve_answers_like_offline_and_rejects_bad_input(run, recipe):
    cfg = load_config(QAConfig, recipe)
    inst = {"question": "李娜哪一年加入了新华社？", "context": "李娜在1999年加入了新华社。后来的事情大家都知道了。"}
    runner, tokenizer = runner_for(cfg, run)
    (span,) = answer(runner, tokenizer, [QAExample("0", inst["question"], inst["context"])], cfg, 8)
    with TestClient(create_app(lambda: QAPredictor.from_run(cfg, run), cfg.serve)) as client:
        r = client.post("/predict", json={"instances": [inst]})
        assert r.status_code == 200
        pred = r.json()["predictions"][0]
        assert (pred["answer"], pred["start"], pred["end"]) == (span.text, span.start, span.end)
        bad = {
            "too many": ({"instances": [inst] * 3}, 413),
            "long context": ({"instances": [{**inst, "context": "长" * 301}]}, 413),
            "long question": ({"instances": [{**inst, "question": "问" * 31}]}, 422),
            "blank question": ({"instances": [{**inst, "question": "  "}]}, 422),
            "no context": ({"instances": [{"question": "谁？"}]}, 422),
            "empty list": ({"instances": []}, 422),
        }
        for name, (body, status) in bad.items():
            r = client.post("/predict", json=body)
            assert r.status_code == status, name
            assert "error" in r.json(), name
        assert "serve.max_item_cost" in client.post("/predict", json=bad["long context"][0]).json()["error"]
        assert "serve.max_question_chars" in client.post("/predict", json=bad["long question"][0]).json()["error"]


def test_cli_errors_are_one_line_exit_2(recipe, cli, capsys):
    assert cli("train", "--config", recipe, "model.hidden_size=oops") == 2
    assert cli("compare", "--config", recipe) == 2
    err = capsys.readouterr().err
    assert "model.hidden_size" in err and "no compare stage" in err and "Traceback" not in err
