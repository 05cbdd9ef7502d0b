"""NER smoke pipeline on tiny generated BIO files through the CLI: preprocess → train a few steps →
evaluate → predict → export → serve (with bad requests), served == offline, ONNX == torch; for
every model kind (the character BiLSTM-CRF of ner.yaml, the dilated CNN, BERT with and without
a CRF), through the same task."""
import itertools
import json

import pytest
from fastapi.testclient import TestClient

from nlp_app.ner.config import NERConfig
from nlp_app.ner.crf import allowed_transitions
from nlp_app.ner.data import write_bio
from nlp_app.ner.serve import NERPredictor
from nlp_app.ner.tagger import load_tagger
from shared import runs
from shared.config import load_config
from shared.serving import create_app

# kind → overrides of the tiny recipe (a bilstm with a CRF and jieba word positions, like ner.yaml)
KINDS = {
    "bilstm-crf": [],
    "cnn": ["model.encoder=cnn", "model.crf=false"],
    "bert-crf": ["model.encoder=bert", "model.word_features=false"],
    "bert": ["model.encoder=bert", "model.word_features=false", "model.crf=false"],
}


@pytest.fixture(scope="module")
def recipe(recipes):
    return recipes["ner"][0]


@pytest.fixture(scope="module")
def run(trained):
    return trained("ner")


@pytest.fixture(scope="module", params=list(KINDS))
def kind(request, trained, recipe, cli):
    """``(overrides, run)`` of one model kind, trained once for this module."""
    if not KINDS[request.param]:
        return [], trained("ner")
    assert cli("train", "--config", recipe, *KINDS[request.param]) == 0
    return KINDS[request.param], runs.latest_run("nlp_app", "ner-test")


def _tagger(recipe, kind, *more):
    overrides, run = kind
    return load_tagger(load_config(NERConfig, recipe, [*overrides, *more]), run)


def test_train_writes_a_complete_run(kind):
    overrides, run = kind
    bert = "model.encoder=bert" in overrides
    crf = "model.crf=false" not in overrides
    model_files = ("config.json",) if bert else ("tagger.json", "tokenizer_config.json")
    for name in ("config.yaml", "model.safetensors", "labels.json", "metrics.json", "README.md", *model_files):
        assert (run / name).exists(), name
    assert (run / "crf.json").exists() == crf
    m = json.loads((run / "metrics.json").read_text())
    assert {"test/f1", "test/PER/f1", "valid/f1", "train/chars_per_second"} <= set(m)
    card = (run / "README.md").read_text(encoding="utf-8")
    assert "## Named-entity recognition" in card and ("CRF layer" in card) == crf


def test_crf_runs_decode_only_valid_sequences(recipe, kind):
    overrides, _run = kind
    if "model.crf=false" in overrides:
        pytest.skip("argmax decoding: no validity promise")
    tagger = _tagger(recipe, kind)
    start, trans, _ = allowed_transitions(tagger.labels)
    ix = {t: i for i, t in enumerate(tagger.labels)}
    for tags in tagger.tag([list("张伟在北京接受了新华社的采访。"), list("北京上海广州王芳李娜人民日报" * 3), list("在")]):
        seq = [ix[t] for t in tags]
        assert start[seq[0]] and all(trans[a, b] for a, b in itertools.pairwise(seq)), tags


def test_predict_offsets_index_the_text(kind, tmp_path, cli):
    run = kind[1]
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


def test_long_texts_are_tagged_in_chunks(recipe, kind):
    tags = _tagger(recipe, kind).tag([list("北京" * 40), list("上海")])
    assert [len(t) for t in tags] == [80, 2]


def test_a_text_gets_the_same_tags_alone_or_in_a_batch(recipe, kind):
    tagger = _tagger(recipe, kind)
    texts = [list("张伟在北京接受了新华社的采访。"), list("王芳"), list("李娜在广州。")]
    assert tagger.tag(texts) == [tagger.tag([t])[0] for t in texts]


def test_onnx_backend_tags_like_torch(recipe, kind):
    texts = [list("张伟在北京接受了新华社的采访。"), list("王芳"), list("人民日报" * 9)]
    tags = {}
    for backend in ("torch", "onnx"):  # the ONNX file is exported on first use when missing
        tagger = _tagger(recipe, kind, f"serve.backend={backend}")
        tags[backend] = tagger.tag(texts)
        tags[f"{backend} one by one"] = [tagger.tag([t])[0] for t in texts]  # other batch sizes than traced
    assert tags["onnx"] == tags["torch"] == tags["onnx one by one"] == tags["torch one by one"]
    assert (kind[1] / "model.onnx").exists()
    report = runs.read_json(kind[1] / "export.json")
    assert report["max_abs_diff"] < 1e-3 and report["decoding"].startswith("viterbi" if (kind[1] / "crf.json").exists() else "argmax")


def test_serve_predicts_like_offline_and_rejects_bad_input(recipe, kind):
    overrides, run = kind
    cfg = load_config(NERConfig, recipe, overrides)
    text = "王芳在上海接受了人民日报的采访。"
    offline = load_tagger(cfg, run).entities([text])[0]
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
