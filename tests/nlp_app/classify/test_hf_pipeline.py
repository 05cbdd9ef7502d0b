"""A classification run's BERT folder is a Hugging Face model directory whose tokenizer does the
text normalisation itself: ``transformers.pipeline`` on it answers what the server answers, for
full-width and upper-case input too; a run saved before (a plain BERT tokenizer) still serves the
same answers."""
import json
import shutil

import pytest

from nlp_app import load
from nlp_app.common.normalize import normalize_text

TEXTS = ["这本书写得很好，ＶＥＲＹ　ＧＯＯＤ！！", "质量太差了，再也不买了。ＢＡＤ", "Ｈｅｌｌｏ，１２３ 很好"]


@pytest.fixture(scope="module")
def bert_folder(trained):
    run = trained("classify")
    folder = run / "models" / "bert"
    assert (folder / "model.safetensors").exists()
    return run, folder


def test_config_names_the_architecture_and_the_labels(bert_folder):
    run, folder = bert_folder
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    assert config["architectures"] == ["BertForSequenceClassification"]
    labels = json.loads((run / "labels.json").read_text(encoding="utf-8"))
    assert config["id2label"] == {str(i): name for i, name in enumerate(labels)}


def test_transformers_pipeline_gives_the_servers_labels_and_scores(bert_folder):
    from transformers import pipeline

    run, folder = bert_folder
    served = load(run, "serve.model=bert").predict(TEXTS)["predictions"]
    pipe = pipeline("text-classification", model=str(folder), device="cpu")
    for answer, server in zip(pipe(TEXTS), served, strict=True):
        assert answer["label"] == server["label"]
        assert answer["score"] == pytest.approx(server["probabilities"][answer["label"]], abs=1e-5)
    # the normalisation is the tokenizer's: the texts as the baseline normalises them score the same
    half_width = pipe([normalize_text(t) for t in TEXTS])
    assert [a["score"] for a in half_width] == pytest.approx([a["score"] for a in pipe(TEXTS)], abs=1e-6)


def test_a_run_saved_before_the_tokenizer_normalised_serves_the_same(bert_folder, tmp_path):
    from transformers import AutoTokenizer, BertTokenizer

    run, folder = bert_folder
    old = tmp_path / run.name
    shutil.copytree(run, old, ignore=shutil.ignore_patterns("checkpoints"))
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (old / "models" / "bert" / name).unlink()
    vocab = AutoTokenizer.from_pretrained(str(folder)).get_vocab()
    BertTokenizer(vocab=vocab, do_lower_case=True).save_pretrained(str(old / "models" / "bert"))
    assert "NFKC" not in (old / "models" / "bert" / "tokenizer.json").read_text(encoding="utf-8")
    before = load(old, "serve.model=bert").predict(TEXTS)["predictions"]
    now = load(run, "serve.model=bert").predict(TEXTS)["predictions"]
    assert before == now
