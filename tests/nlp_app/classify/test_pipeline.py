"""Classification smoke pipelines on 300 sampled reviews with a tiny BERT: pretrain → fine-tune →
export → serve; the baseline with bad HTTP requests; both models on one split with the better
served; resume; compare over seeds; served == offline predictions."""
import json
import math
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from nlp_app.classify.config import ClassifyConfig
from nlp_app.classify.export import export
from nlp_app.classify.model import load_classifier
from nlp_app.classify.serve import TextClassifierPredictor
from nlp_app.classify.train import train_bert
from shared import runs
from shared.config import load_config
from shared.serving import create_app

QUICK = "configs/nlp_app/sentiment-quick.yaml"
PRETRAIN = "configs/nlp_app/pretrain-quick.yaml"
TINY = ["data.max_examples=300", "model.hidden_size=32", "model.num_layers=1", "model.num_heads=2",
        "model.intermediate_size=64", "model.max_length=48", "train.batch_size=16", "train.max_steps=4",
        "train.device=cpu", "train.progress=false"]


def recipe(*extra) -> ClassifyConfig:
    return load_config(ClassifyConfig, QUICK, TINY + list(extra))


def app_for(run: Path, cfg: ClassifyConfig):
    return create_app(lambda: TextClassifierPredictor.from_run(cfg, run), cfg.serve)


@pytest.fixture(scope="module")
def pretrained_run(trained):
    run = trained("pretrain")
    assert math.isfinite(runs.load_metrics(run)["valid/mlm_loss"])
    return run


@pytest.fixture(scope="module")
def bert_run(pretrained_run, cli):
    assert cli("train", "--config", QUICK, *TINY, "model.name=bert", f"model.pretrained={pretrained_run}") == 0
    return runs.latest_run("nlp_app", "sentiment")


@pytest.fixture(scope="module")
def baseline_run(cli):
    assert cli("train", "--config", QUICK, *TINY, "model.name=baseline") == 0
    return runs.latest_run("nlp_app", "sentiment")


def test_bert_from_pretrained_run(bert_run, pretrained_run):
    m = runs.load_metrics(bert_run)
    assert {"test/accuracy", "test/macro_f1", "test/roc_auc", "test/neg/f1", "valid/accuracy"} <= set(m)
    assert (bert_run / "confusion_test.png").exists() and (bert_run / "README.md").exists()
    assert "## Text classification" in (bert_run / "README.md").read_text(encoding="utf-8")
    assert runs.read_json(bert_run / "labels.json") == ["neg", "pos"]
    assert runs.run_status(bert_run)["status"] == "finished"
    assert runs.read_json(bert_run / "selection.json")["served"] == "bert"
    assert (bert_run / "models" / "bert" / "checkpoints" / "last.pt").exists()
    # fine-tuning kept the pre-training run's vocabulary
    assert json.loads((bert_run / "models" / "bert" / "tokenizer.json").read_text())["model"]["vocab"] == \
        json.loads((pretrained_run / "tokenizer.json").read_text())["model"]["vocab"]


def test_export_onnx_and_int8_agree_with_torch(bert_run):
    out = export(recipe(), bert_run)
    folder = bert_run / "models" / "bert"
    assert (folder / "model.onnx").exists() and (folder / "model.int8.onnx").exists()
    assert out["test/agreement_onnx"] == 1.0 and out["test/max_abs_prob_diff_onnx"] < 1e-4
    assert out["test/agreement_onnx-int8"] >= 0.9
    assert runs.read_json(bert_run / "export.json")["test/agreement_onnx"] == 1.0
    assert "test/agreement_onnx" not in runs.load_metrics(bert_run)  # train's record is left alone


@pytest.mark.parametrize("backend", ["torch", "onnx-int8"])
def test_served_equals_offline(bert_run, backend):
    texts = ["这本书写得很好，值得一读。", "质量太差了，再也不买了。", "一般"]
    cfg = recipe("serve.load_in_background=false", f"serve.backend={backend}")
    with TestClient(app_for(bert_run, cfg)) as c:  # an ONNX file the run lacks is exported on first use
        r = c.post("/predict", json={"instances": texts})
        assert r.status_code == 200
        preds = r.json()["predictions"]
        assert c.get("/metadata").json()["backend"] == backend
    offline = load_classifier(bert_run, backend).predict_proba(texts)
    assert [p["label"] for p in preds] == [["neg", "pos"][i] for i in offline.argmax(1)]
    served = np.array([[p["probabilities"]["neg"], p["probabilities"]["pos"]] for p in preds])
    assert np.allclose(served, offline, atol=1e-5)


def test_baseline_pipeline_and_http_errors(baseline_run):
    assert (baseline_run / "models" / "baseline" / "baseline.safetensors").exists()
    assert not list(baseline_run.rglob("*.pkl"))
    assert runs.load_metrics(baseline_run)["test/accuracy"] > 0.6
    cfg = recipe("model.name=baseline", "serve.load_in_background=false", "serve.max_instances=3",
                 "serve.max_item_cost=20", "serve.max_body_bytes=4096")
    with TestClient(app_for(baseline_run, cfg)) as c:
        ok = c.post("/predict", json={"instances": ["很好"]})
        assert ok.status_code == 200 and set(ok.json()["predictions"][0]["probabilities"]) == {"neg", "pos"}
        too_many = c.post("/predict", json={"instances": ["好"] * 4})
        assert too_many.status_code == 413 and "serve.max_instances" in too_many.json()["error"]
        too_long = c.post("/predict", json={"instances": ["好", "长" * 21]})
        assert too_long.status_code == 413 and "instances[1]" in too_long.json()["error"]
        blank = c.post("/predict", json={"instances": ["好", "  "]})
        assert blank.status_code == 422 and blank.json()["fields"][0]["field"] == "instances.1"
        assert "blank" in blank.json()["fields"][0]["message"]
        assert c.post("/predict", json={"instances": []}).status_code == 422
        assert c.post("/predict", json={"instances": "不是列表"}).status_code == 422
        assert c.post("/predict", json={"texts": ["好"]}).status_code == 422
        assert c.post("/predict", content=b"{not json", headers={"content-type": "application/json"}).status_code == 422
        assert c.post("/predict", json={"instances": ["好" * 10] * 300}).status_code == 413  # body size
        assert c.get("/readyz").status_code == 200


def test_resume_continues_to_the_same_step_count(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    first = train_bert(recipe("train.max_steps=2", "train.checkpoint_every_steps=1"), run)
    assert first["train/steps"] == 2
    resumed = train_bert(recipe("train.max_steps=4", "train.checkpoint_every_steps=1"), run)
    assert resumed["train/steps"] == 4
    records = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    losses = [r["train/loss"] for r in records if "train/loss" in r]
    assert losses and all(math.isfinite(x) for x in losses)
    assert max(r["step"] for r in records) == 4


def test_compare_over_seeds_from_an_existing_pretraining_run(pretrained_run, cli):
    from nlp_app.classify.compare import pretrain_chain

    # a second pre-training run that continues the first: the chain counts both
    assert cli("train", "--config", PRETRAIN, *TINY, f"model.pretrained={pretrained_run}") == 0
    continued = runs.latest_run("nlp_app", "pretrain")
    seconds, chain = pretrain_chain(continued)
    assert chain == [pretrained_run.name, continued.name]
    assert seconds == pytest.approx(runs.load_metrics(pretrained_run)["train/total_seconds"]
                                    + runs.load_metrics(continued)["train/total_seconds"])

    assert cli("compare", "--config", QUICK, *TINY, f"compare.pretrained_run={continued}", "compare.seeds=[0,1]") == 0
    out = runs.latest_run("nlp_app", "sentiment-compare")
    rows = {r["model"]: r for r in runs.read_json(out / "comparison.json")}
    assert set(rows) == {"baseline", "bert_scratch", "bert_pretrained"}
    assert rows["baseline"]["seeds"] == 1 and rows["bert_scratch"]["seeds"] == rows["bert_pretrained"]["seeds"] == 2
    assert len(set(rows["bert_scratch"]["runs"])) == 2
    assert rows["bert_scratch"]["accuracy"] == pytest.approx(np.mean(rows["bert_scratch"]["accuracies"]))
    assert rows["bert_pretrained"]["pretrain_seconds"] == pytest.approx(seconds)
    assert rows["bert_pretrained"]["total_seconds"] > rows["bert_pretrained"]["train_seconds"]
    table = (out / "comparison.md").read_text()
    assert "mean ± std over 2 fine-tuning seeds" in table and "per seed:" in table
    assert (out / "roc_test.png").exists()
    assert runs.load_metrics(out)["test/accuracy_baseline"] == rows["baseline"]["accuracy"]
    assert runs.run_status(out)["status"] == "finished"


def test_compare_pretrains_through_the_pretrain_stage(cli):
    """Without ``compare.pretrained_run``, compare pre-trains first: an ordinary, finished pretrain run."""
    overrides = [f"compare.pretrain_overrides={json.dumps(TINY[1:])}", "compare.models=[bert_pretrained]"]
    assert cli("compare", "--config", QUICK, *TINY, *overrides) == 0
    row = runs.read_json(runs.latest_run("nlp_app", "sentiment-compare") / "comparison.json")[0]
    pre = runs.latest_run("nlp_app", "pretrain")
    assert row["note"].endswith(pre.name) and runs.run_status(pre)["status"] == "finished"
    assert runs.load_run_config(pre)["data"]["max_examples"] == 300  # the fine-tuning recipe's data section
