"""Smoke pipelines on 300 sampled reviews with a tiny BERT: pretrain → train → evaluate → export →
serve; the baseline; resume; HTTP bad inputs; served == offline predictions."""
import json
import math
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from nlp_app.config import NlpServeConfig, PretrainConfig, load_recipe
from nlp_app.data import load_splits
from nlp_app.evaluate import evaluate
from nlp_app.export import export
from nlp_app.inference import load_classifier
from nlp_app.pretrain import pretrain
from nlp_app.serve import build_app
from nlp_app.train import train, train_bert
from shared import runs
from shared.config import load_config

QUICK = "configs/nlp_app/sentiment-quick.yaml"
TINY = ["data.max_examples=300", "model.hidden_size=32", "model.num_layers=1", "model.num_heads=2",
        "model.intermediate_size=64", "model.max_length=48", "train.batch_size=16", "train.max_steps=4",
        "train.device=cpu", "train.progress=false"]


def recipe(*extra):
    return load_recipe(QUICK, TINY + list(extra))


@pytest.fixture(scope="module")
def pretrained_run():
    cfg = load_config(PretrainConfig, "configs/nlp_app/pretrain-quick.yaml", TINY)
    summary = pretrain(cfg)
    run = Path(summary["run"])
    assert math.isfinite(runs.load_metrics(run)["valid/mlm_loss"])
    return run


@pytest.fixture(scope="module")
def bert_run(pretrained_run):
    summary = train(recipe(f"model.pretrained={pretrained_run}"))
    return Path(summary["run"])


@pytest.fixture(scope="module")
def baseline_run():
    return Path(train(recipe("model.name=baseline"))["run"])


def test_bert_from_pretrained_run(bert_run, pretrained_run):
    m = runs.load_metrics(bert_run)
    assert {"test/accuracy", "test/macro_f1", "test/roc_auc", "test/neg/f1", "valid/accuracy"} <= set(m)
    assert (bert_run / "confusion_test.png").exists() and (bert_run / "MODEL_CARD.md").exists()
    assert runs.read_json(bert_run / "labels.json") == ["neg", "pos"]
    # fine-tuning kept the pre-training run's vocabulary
    assert json.loads((bert_run / "tokenizer.json").read_text())["model"]["vocab"] == \
        json.loads((pretrained_run / "tokenizer.json").read_text())["model"]["vocab"]


def test_evaluate_on_a_user_file(bert_run, tmp_path):
    test = load_splits(recipe().data)[0]["test"]
    path = tmp_path / "mine.jsonl"
    path.write_text("".join(json.dumps({"text": t, "label": y}, ensure_ascii=False) + "\n"
                            for t, y in zip(test.texts[:20], test.labels[:20])), encoding="utf-8")
    out = evaluate(bert_run, str(path))
    assert out["n"] == 20 and 0 <= out["data/accuracy"] <= 1
    assert (bert_run / "metrics_mine.json").exists()


def test_export_onnx_and_int8_agree_with_torch(bert_run):
    out = export(bert_run, recipe().export)
    assert (bert_run / "model.onnx").exists() and (bert_run / "model.int8.onnx").exists()
    assert out["test/agreement_onnx"] == 1.0 and out["test/max_abs_prob_diff_onnx"] < 1e-4
    assert out["test/agreement_onnx-int8"] >= 0.9


@pytest.mark.parametrize("backend", ["torch", "onnx-int8"])
def test_served_equals_offline(bert_run, backend):
    if backend != "torch" and not (bert_run / "model.int8.onnx").exists():
        export(bert_run, recipe().export)
    texts = ["这本书写得很好，值得一读。", "质量太差了，再也不买了。", "一般"]
    offline = load_classifier(bert_run, backend).predict_proba(texts)
    with TestClient(build_app(bert_run, NlpServeConfig(load_in_background=False, backend=backend))) as c:
        r = c.post("/predict", json={"instances": texts})
        assert r.status_code == 200
        preds = r.json()["predictions"]
        assert c.get("/metadata").json()["backend"] == backend
    assert [p["label"] for p in preds] == [["neg", "pos"][i] for i in offline.argmax(1)]
    served = np.array([[p["probabilities"]["neg"], p["probabilities"]["pos"]] for p in preds])
    assert np.allclose(served, offline, atol=1e-5)


def test_baseline_pipeline_and_http_errors(baseline_run):
    assert (baseline_run / "baseline.safetensors").exists() and not list(baseline_run.glob("*.pkl"))
    assert runs.load_metrics(baseline_run)["test/accuracy"] > 0.6
    cfg = NlpServeConfig(load_in_background=False, max_texts=3, max_chars=20, max_body_bytes=4096)
    with TestClient(build_app(baseline_run, cfg)) as c:
        ok = c.post("/predict", json={"instances": ["很好"]})
        assert ok.status_code == 200 and set(ok.json()["predictions"][0]["probabilities"]) == {"neg", "pos"}
        too_many = c.post("/predict", json={"instances": ["好"] * 4})
        assert too_many.status_code == 413 and "limit is 3" in too_many.json()["error"]
        too_long = c.post("/predict", json={"instances": ["好", "长" * 21]})
        assert too_long.status_code == 422 and "instances[1]" in too_long.json()["error"]
        assert c.post("/predict", json={"instances": ["  "]}).status_code == 422
        assert c.post("/predict", json={"instances": []}).status_code == 422
        assert c.post("/predict", json={"instances": "不是列表"}).status_code == 422
        assert c.post("/predict", json={"texts": ["好"]}).status_code == 422
        assert c.post("/predict", content=b"{not json", headers={"content-type": "application/json"}).status_code == 422
        assert c.post("/predict", json={"instances": ["好" * 10] * 300}).status_code == 413  # body size
        assert c.get("/readyz").status_code == 200


def test_resume_continues_to_the_same_step_count(tmp_path):
    cfg = recipe("train.max_steps=2", "train.checkpoint_every_steps=1")
    run = tmp_path / "run"
    run.mkdir()
    first = train_bert(cfg, run)
    assert first["train/steps"] == 2
    resumed = train_bert(recipe("train.max_steps=4", "train.checkpoint_every_steps=1"), run)
    assert resumed["train/steps"] == 4
    records = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    losses = [r["train/loss"] for r in records if "train/loss" in r]
    assert losses and all(math.isfinite(x) for x in losses)
    assert max(r["step"] for r in records) == 4


def test_compare_over_seeds_from_an_existing_pretraining_run(pretrained_run):
    from nlp_app.compare import compare, pretrain_chain

    # a second pre-training run that continues the first: the chain counts both
    cfg = load_config(PretrainConfig, "configs/nlp_app/pretrain-quick.yaml",
                      TINY + [f"model.pretrained={pretrained_run}"])
    continued = Path(pretrain(cfg)["run"])
    seconds, chain = pretrain_chain(continued)
    assert chain == [pretrained_run.name, continued.name]
    assert seconds == pytest.approx(runs.load_metrics(pretrained_run)["train/total_seconds"]
                                    + runs.load_metrics(continued)["train/total_seconds"])

    out = compare(recipe(f"compare.pretrained_run={continued}", "compare.seeds=[0,1]"))
    rows = {r["model"]: r for r in out["rows"]}
    assert set(rows) == {"baseline", "bert_scratch", "bert_pretrained"}
    assert rows["baseline"]["seeds"] == 1 and rows["bert_scratch"]["seeds"] == rows["bert_pretrained"]["seeds"] == 2
    assert len(set(rows["bert_scratch"]["runs"])) == 2
    assert rows["bert_scratch"]["accuracy"] == pytest.approx(np.mean(rows["bert_scratch"]["accuracies"]))
    assert rows["bert_pretrained"]["pretrain_seconds"] == pytest.approx(seconds)
    assert rows["bert_pretrained"]["total_seconds"] > rows["bert_pretrained"]["train_seconds"]
    table = (Path(out["run"]) / "comparison.md").read_text()
    assert "mean ± std over 2 fine-tuning seeds" in table and "per seed:" in table
    assert (Path(out["run"]) / "roc_test.png").exists()
