"""A BERT NER run is a Hugging Face model directory whose tokenizer normalises the text (NFKC:
full-width to half-width) and cuts it into single characters itself, as the server reads it:
``transformers.pipeline("token-classification")`` on the run gives the server's tags and entities,
for Chinese, full-width letters and digits, Latin words, digits and spaces alike; a run saved
before (a plain ``BertTokenizer``) still serves the same answers."""
import json
import random
import shutil

import pytest

from nlp_app import load
from nlp_app.common.tokenization import build_char_vocab, char_tokenizer, character_tokenizer
from nlp_app.ner.data import write_bio
from nlp_app.ner.tagger import entities, load_tagger

PEOPLE, PLACES, ORGS = ["张伟", "王芳", "Tom", "Ｍａｒｙ"], ["北京", "上海", "NY", "ＬＡ"], ["新华社", "IBM", "ＡＢＣ公司"]
TEXTS = ["Tom在ＮＹ接受了ＩＢＭ的采访，共１２人。", "张伟 在北京接受了新华社的采访，共 35 人。",
         "Mary 在 上海 接受了 ABC公司 的采访。", "王芳在LA。Hello world 2024，ｏｋ"]


def _sentences(n: int, seed: int) -> list[tuple[list[str], list[str]]]:
    """Templated sentences with a person, a place and an organisation (Chinese, Latin and full-width
    names) and a count in full-width or ASCII digits, in character BIO."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        count = str(rng.randint(2, 99))
        count = count if rng.random() < 0.5 else "".join(chr(ord(c) + 0xFEE0) for c in count)
        parts = [(rng.choice(PEOPLE), "PER"), ("在", None), (rng.choice(PLACES), "LOC"), ("接受了", None),
                 (rng.choice(ORGS), "ORG"), (f"的采访，共{count}人。", None)]
        chars, tags = [], []
        for text, etype in parts:
            chars += list(text)
            tags += ["O" if etype is None else ("B-" if k == 0 else "I-") + etype for k in range(len(text))]
        out.append((chars, tags))
    return out


@pytest.fixture(scope="module")
def run(recipes, cli, tmp_path_factory):
    """A tiny BERT tagger (no CRF: argmax, as the pipeline decodes) trained long enough to find entities."""
    root = tmp_path_factory.mktemp("ner_hf")
    paths = {name: write_bio(_sentences(n, seed), root / f"{name}.bio")
             for name, n, seed in (("train", 60, 1), ("valid", 8, 2), ("test", 8, 3))}
    assert cli("train", "--config", recipes["ner"][0], "model.encoder=bert", "model.word_features=false",
               "model.crf=false", "model.max_length=48", "train.epochs=40", "train.max_steps=240", "train.lr=0.005", "name=ner-hf-test",
               *[f"data.{name}={path}" for name, path in paths.items()]) == 0
    from shared import runs

    return runs.latest_run("nlp_app", "ner-hf-test")


def _pipe(run, strategy: str):
    from transformers import pipeline

    return pipeline("token-classification", model=str(run), aggregation_strategy=strategy, device="cpu")


def _server(run, texts):
    answer = load(run, "serve.max_instances=8").predict([{"text": t} for t in texts])
    return [p["entities"] for p in answer["predictions"]]


def test_the_tokenizer_cuts_a_text_as_the_server_cuts_its_characters(tmp_path):
    from transformers import AutoTokenizer

    plain = char_tokenizer(build_char_vocab([" ".join("张伟在北京 beijing tom ok 12 ,")], min_freq=1))
    tok = character_tokenizer(plain)
    text = "张伟 在ＢＥＩＪＩＮＧ１２，Tom\tok"
    whole = tok(text, return_offsets_mapping=True)
    assert whole.tokens() == ["[CLS]", *"张伟在beijing12,tomok", "[SEP]"]
    assert tok(list(text), is_split_into_words=True).tokens() == whole.tokens()  # what the server feeds
    assert [text[a:b] for a, b in whole["offset_mapping"][1:-1]] == [ch for ch in text if ch.strip()]
    # the gap this closes: a plain BERT reads "ＢＥＩＪＩＮＧ１２" and "Tom" as one unknown word each
    assert plain(text).tokens() == ["[CLS]", "张", "伟", "在", "[UNK]", "[UNK]", "[UNK]", "[UNK]", "[SEP]"]
    assert character_tokenizer(tok) is tok  # cuts so already: not wrapped twice
    tok.save_pretrained(str(tmp_path))
    again = AutoTokenizer.from_pretrained(str(tmp_path))  # what transformers.pipeline loads
    assert again(text).tokens() == whole.tokens() and character_tokenizer(again) is again
    assert len(again) == len(plain)


def test_an_entity_spans_the_whitespace_the_model_never_saw():
    tags = ["B-PER", None, "I-PER", "O", "B-LOC", None, None, "B-LOC"]
    assert entities("张 伟在北  京", tags) == [
        {"type": "PER", "text": "张 伟", "start": 0, "end": 3},
        {"type": "LOC", "text": "北", "start": 4, "end": 5}, {"type": "LOC", "text": "京", "start": 7, "end": 8}]


def test_config_names_the_architecture_and_the_saved_tokenizer_normalises(run):
    config = json.loads((run / "config.json").read_text(encoding="utf-8"))
    assert config["architectures"] == ["BertForTokenClassification"]
    labels = json.loads((run / "labels.json").read_text(encoding="utf-8"))
    assert config["id2label"] == {str(i): name for i, name in enumerate(labels)}
    saved = (run / "tokenizer.json").read_text(encoding="utf-8")
    assert "NFKC" in saved and '"Split"' in saved


def test_pipeline_tags_every_character_as_the_server_does(run):
    per_token = _pipe(run, "none")(TEXTS)
    model = load(run)
    tagger_tags = load_tagger(model.cfg, run).tag([list(t) for t in TEXTS])
    for text, answer, tags in zip(TEXTS, per_token, tagger_tags, strict=True):
        shown = {(a["start"], a["end"]): a["entity"] for a in answer}  # the pipeline leaves "O" out
        assert all(b - a == 1 for a, b in shown)  # one token per character
        expected = {(i, i + 1): tag for i, tag in enumerate(tags) if text[i].strip() and tag != "O"}
        assert shown == expected
    assert any(per_token)  # the model tags something: the comparison above is not of empty lists


def test_pipeline_finds_the_servers_entities(run):
    served = _server(run, TEXTS)
    found = _pipe(run, "simple")(TEXTS)
    for text, answer, server in zip(TEXTS, found, served, strict=True):
        got = [{"type": a["entity_group"], "text": text[a["start"]:a["end"]], "start": a["start"], "end": a["end"]}
               for a in answer]
        assert got == server
    assert sum(map(len, served)) >= 3


def test_a_run_saved_before_the_tokenizer_normalised_serves_the_same(run, tmp_path):
    from transformers import AutoTokenizer, BertTokenizer

    old = tmp_path / run.name
    shutil.copytree(run, old, ignore=shutil.ignore_patterns("checkpoints", "*.onnx"))
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (old / name).unlink()
    vocab = AutoTokenizer.from_pretrained(str(run)).get_vocab()
    BertTokenizer(vocab=vocab, do_lower_case=True).save_pretrained(str(old))
    assert "NFKC" not in (old / "tokenizer.json").read_text(encoding="utf-8")
    served = _server(old, TEXTS)
    assert served == _server(run, TEXTS)
    # the pipeline on such a folder, given the tokenizer mlref makes of it (as the guide says)
    from transformers import pipeline

    pipe = pipeline("token-classification", model=str(old), aggregation_strategy="simple", device="cpu",
                    tokenizer=character_tokenizer(AutoTokenizer.from_pretrained(str(old))))
    for text, answer, server in zip(TEXTS, pipe(TEXTS), served, strict=True):
        assert [(a["entity_group"], a["start"], a["end"]) for a in answer] == [
            (e["type"], e["start"], e["end"]) for e in server]
