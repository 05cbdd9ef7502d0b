"""JSON span files (CLUENER 2020, doccano, Label Studio) → character BIO, in the exact layouts those
tools export, through :func:`read_sentences` (what ``data.path``, ``data.splits`` and ``evaluate
--data`` read), and one train → evaluate through the CLI on CLUENER-style files."""
import json
import logging

import pytest

from nlp_app.ner.data import read_sentences
from shared import runs
from shared.errors import UserError

CLUE_TEXT = "浙商银行企业信贷部叶老桂博士则从另一个角度对五道门槛进行了解读。"


def _tags(sentence):
    return list(zip(*sentence))


def test_cluener_train_file_with_bom_crlf_a_blank_line_and_nested_spans(tmp_path, caplog):
    rows = [
        {"text": CLUE_TEXT, "label": {"name": {"叶老桂": [[9, 11]]}, "company": {"浙商银行": [[0, 3]]}}},
        {"text": "北京和上海", "label": {"address": {"北京": [[0, 1]], "上海": [[3, 4]]}}},
        # organization 浙商银行企业信贷部 holds company 浙商银行: the longer is kept
        {"text": "浙商银行企业信贷部", "label": {"company": {"浙商银行": [[0, 3]]},
                                           "organization": {"浙商银行企业信贷部": [[0, 8]]}}},
        {"text": "", "label": {}},
    ]
    path = tmp_path / "train.json"
    lines = [json.dumps(r, ensure_ascii=False) for r in rows]
    path.write_bytes(("\ufeff" + lines[0] + "\r\n\r\n" + "\r\n".join(lines[1:]) + "\r\n").encode("utf-8"))
    with caplog.at_level(logging.WARNING):
        sents = read_sentences(path)
    assert len(sents) == 3
    chars, tags = sents[0]
    assert "".join(chars) == CLUE_TEXT
    assert tags == (["B-company"] + ["I-company"] * 3 + ["O"] * 5 + ["B-name", "I-name", "I-name"]
                    + ["O"] * (len(CLUE_TEXT) - 12))
    assert sents[1][1] == ["B-address", "I-address", "O", "B-address", "I-address"]
    assert sents[2][1] == ["B-organization"] + ["I-organization"] * 8
    assert "1 overlapping or nested spans dropped" in caplog.text and "train.json:4)" in caplog.text


def test_cluener_test_file_without_labels_is_refused(tmp_path):
    path = tmp_path / "test.json"
    path.write_text('{"id": 0, "text": "四川敦煌学”。"}\n{"id": 1, "text": "尼日利亚海军发言人"}\n', encoding="utf-8")
    with pytest.raises(UserError, match=r"test.json: no record has entity labels \(.*test.json:1: no 'label'\).*"
                                        r"unlabelled file \(like CLUENER's test.json\)"):
        read_sentences(path)


def test_doccano_jsonl_both_exports_whitespace_dropped_and_unknown_keys_ignored(tmp_path):
    path = tmp_path / "admin.jsonl"
    rows = [
        # a space inside and before an entity: dropped, B on the entity's first other character
        {"id": 7, "text": "张伟 在 北京", "label": [[0, 2, "PER"], [4, 7, "LOC"]], "Comments": []},
        {"id": 8, "text": "  ", "label": []},
        {"id": 9, "text": "王芳李娜在上海", "entities": [
            {"id": 1, "start_offset": 0, "end_offset": 2, "label": "PER"},
            {"id": 2, "start_offset": 2, "end_offset": 4, "label": "PER"},   # adjacent: two people
            {"id": 3, "start_offset": 5, "end_offset": 7, "label": "LOC"}], "relations": []},
        {"text": "没有实体", "label": []},
        # Label Studio's JSON-MIN export: doccano-like, span objects with labels
        {"text": "新华社报道", "id": 3, "label": [{"start": 0, "end": 3, "text": "新华社", "labels": ["ORG"]}]},
    ]
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    sents = read_sentences(path)
    assert _tags(sents[0]) == [("张", "B-PER"), ("伟", "I-PER"), ("在", "O"), ("北", "B-LOC"), ("京", "I-LOC")]
    assert sents[1] == (list("王芳李娜在上海"), ["B-PER", "I-PER", "B-PER", "I-PER", "O", "B-LOC", "I-LOC"])
    assert sents[2] == (list("没有实体"), ["O"] * 4)
    assert sents[3][1] == ["B-ORG", "I-ORG", "I-ORG", "O", "O"]
    assert len(sents) == 4


LABEL_STUDIO = [
    {"id": 1, "data": {"text": "浙商银行在杭州"}, "annotations": [
        {"id": 10, "was_cancelled": True, "result": [
            {"type": "labels", "value": {"start": 0, "end": 2, "text": "浙商", "labels": ["ORG"]}}]},
        {"id": 11, "was_cancelled": False, "result": [
            {"id": "a", "from_name": "label", "to_name": "text", "type": "labels",
             "value": {"start": 0, "end": 4, "text": "浙商银行", "labels": ["ORG"]}},
            {"id": "b", "from_name": "label", "to_name": "text", "type": "labels",
             "value": {"start": 5, "end": 7, "text": "杭州", "labels": ["LOC"]}},
            {"id": "c", "from_name": "sentiment", "to_name": "text", "type": "choices",
             "value": {"choices": ["Positive"]}}]}],
     "predictions": []},
    {"id": 2, "data": {"text": "还没标注"}, "annotations": []},
]


def test_label_studio_export_first_annotation_not_cancelled(tmp_path, caplog):
    path = tmp_path / "project-1-at-2024.json"
    path.write_text(json.dumps(LABEL_STUDIO, ensure_ascii=False, indent=2), encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        sents = read_sentences(path)
    assert sents == [(list("浙商银行在杭州"), ["B-ORG", "I-ORG", "I-ORG", "I-ORG", "O", "B-LOC", "I-LOC"])]
    assert "1 records without labels skipped (first " in caplog.text and "json[1]" in caplog.text


def test_a_bio_file_whose_first_token_is_a_bracket_stays_bio(tmp_path):
    path = tmp_path / "a.bio"
    path.write_text("[ O\n北 B-LOC\n京 I-LOC\n] O\n", encoding="utf-8")
    assert read_sentences(path) == [(["[", "北", "京", "]"], ["O", "B-LOC", "I-LOC", "O"])]


@pytest.mark.parametrize("content, message", [
    ('{"text": "北京", "label": {"address": {"北京人": [[0, 2]]}}}',
     r"x.json:1: label.address: '北京人' at \[0, 2\] \(end inclusive\): falls outside the text \(2 characters\)"),
    ('\n{"text": "北京欢迎你", "label": {"address": {"上海": [[0, 1]]}}}',
     r"x.json:2: label.address: '上海' at \[0, 1\] \(end inclusive\): the text there is '北京', the record says '上海'"),
    ('{"text": "北京", "label": [[0, 9, "LOC"]]}', r"x.json:1: label\[0\]: span \[0, 9\] of 'LOC': falls outside"),
    ('{"text": "北京", "label": [[2, 1, "LOC"]]}', r"x.json:1: label\[0\]: span \[2, 1\] of 'LOC': ends before"),
    ('{"text": "北京", "label": [["0", 1, "LOC"]]}', r"x.json:1: label\[0\].*not whole numbers"),
    ('{"text": "北京", "label": [[0, 2, "my place"]]}', r"x.json:1: label\[0\].*a name without spaces"),
    ('{"text": "北京", "entities": [{"start_offset": 0, "end_offset": 2, "label": "LOC", "text": "上海"}]}',
     r"x.json:1: entities\[0\]: span \[0, 2\] of 'LOC': the text there is '北京', the record says '上海'"),
    ('{"text": "北京"}\n{"label": [[0, 2, "LOC"]], "id": 4}', r"x.json:2: record has no 'text' \(its keys: label, id\)"),
    ('{"text": "北京", "label": [[0, 2, "LOC"]]', r"x.json:1: not JSON"),
    (('[{"data": {"text": "北京"}, "annotations": [{"result": [{"type": "labels", "value": '
      '{"start": 0, "end": 2, "text": "北", "labels": ["LOC"]}}]}]}]'),
     r"x.json\[0\]: annotations\[0\].result\[0\].value: span \[0, 2\] of 'LOC': the text there is '北京'"),
    ('[{"data": {"content": "北京"}, "annotations": []}]', r"x.json\[0\]: data has no 'text' \(its keys: content\)"),
    ('[]', r"x.json: no record with a text found"),
])
def test_span_file_errors_name_file_record_and_problem(tmp_path, content, message):
    path = tmp_path / "x.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(UserError, match=message):
        read_sentences(path)


def _cluener(sentences, extra=()):
    """BIO sentences as CLUENER 2020 JSON lines (types lower-cased, end inclusive)."""
    from seqeval.metrics.sequence_labeling import get_entities

    lines = []
    for chars, tags in sentences:
        label: dict = {}
        for etype, start, end in get_entities(tags):  # end inclusive, as CLUENER's
            label.setdefault(etype.lower(), {}).setdefault("".join(chars[start:end + 1]), []).append([start, end])
        lines.append({"text": "".join(chars), "label": label})
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in [*lines, *extra])


def test_train_on_a_cluener_file_and_evaluate_a_dev_file_with_an_unknown_type(recipes, cli, make_ner_sentences,
                                                                             tmp_path):
    train, dev = tmp_path / "train.json", tmp_path / "dev.json"
    train.write_text(_cluener(make_ner_sentences(40, 1)), encoding="utf-8")
    game = {"text": "张伟在玩王者荣耀", "label": {"per": {"张伟": [[0, 1]]}, "game": {"王者荣耀": [[4, 7]]}}}
    dev.write_text(_cluener(make_ner_sentences(6, 3), [game]), encoding="utf-8")
    overrides = ["name=ner-spans-test", "data.source=file", f"data.path={train}"]
    assert cli("train", "--config", recipes["ner"][0], *overrides) == 0
    run = runs.latest_run("nlp_app", "ner-spans-test")
    assert runs.read_json(run / "labels.json") == ["O", "B-loc", "I-loc", "B-org", "I-org", "B-per", "I-per"]
    assert cli("evaluate", "--run", run, "--data", dev) == 0
    m = runs.read_json(run / "evaluations" / "dev" / "metrics.json")
    # the type the run never saw counts as missed, like a wrong type: recall 0, support 1
    assert m["data/game/support"] == 1 and m["data/game/recall"] == 0
    assert {"data/f1", "data/per/f1", "data/loc/support"} <= set(m)


def test_ready_made_splits_each_in_its_own_span_layout(tmp_path, make_ner_sentences):
    from nlp_app.ner.config import NERConfig
    from nlp_app.ner.data import load_splits

    train, valid, test = tmp_path / "train.json", tmp_path / "valid.jsonl", tmp_path / "test.json"
    train.write_text(_cluener(make_ner_sentences(12, 1)), encoding="utf-8")
    valid.write_text('{"id": 1, "text": "王芳在上海", "label": [[0, 2, "per"], [3, 5, "loc"]]}\n', encoding="utf-8")
    test.write_text(json.dumps(LABEL_STUDIO, ensure_ascii=False), encoding="utf-8")
    cfg = NERConfig(name="ner-spans-splits", data={"source": "splits", "train": str(train), "valid": str(valid),
                                                   "test": str(test)})
    splits, labels = load_splits(cfg)
    assert splits["valid"] == [(list("王芳在上海"), ["B-per", "I-per", "O", "B-loc", "I-loc"])]
    assert splits["test"][0][1][:4] == ["B-ORG", "I-ORG", "I-ORG", "I-ORG"] and len(splits["train"]) == 12
    assert labels == ["O", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-loc", "I-loc", "B-org", "I-org", "B-per", "I-per"]


def test_utf16_exports_read_and_gbk_is_named(tmp_path):
    path = tmp_path / "admin.jsonl"
    path.write_text('{"text": "北京", "label": [[0, 2, "LOC"]]}\r\n', encoding="utf-16")  # with its BOM
    assert read_sentences(path) == [(["北", "京"], ["B-LOC", "I-LOC"])]
    path.write_bytes('{"text": "北京", "label": [[0, 2, "LOC"]]}\n'.encode("gbk"))
    with pytest.raises(UserError, match=r"admin.jsonl is not UTF-8 text .*iconv -f GBK"):
        read_sentences(path)


def test_label_studio_offsets_counted_in_utf16_units_around_an_emoji(tmp_path):
    """Label Studio before 2022 counted an emoji as two (JavaScript string offsets): the offsets
    that make the span read its stated text are taken; code-point offsets still read as they are."""
    text = "😀浙商银行在杭州"
    old = {"start": 7, "end": 9, "text": "杭州", "labels": ["LOC"]}  # UTF-16 units: the emoji counts 2
    new = {"start": 6, "end": 8, "text": "杭州", "labels": ["LOC"]}
    for value in (old, new):
        task = [{"data": {"text": text}, "annotations": [{"result": [
            {"type": "labels", "value": {"start": 2 if value is old else 1, "end": 6 if value is old else 5,
                                         "text": "浙商银行", "labels": ["ORG"]}},
            {"type": "labels", "value": value}]}]}]
        path = tmp_path / "export.json"
        path.write_text(json.dumps(task, ensure_ascii=False), encoding="utf-8")
        assert read_sentences(path) == [(list(text), ["O", "B-ORG", "I-ORG", "I-ORG", "I-ORG", "O", "B-LOC", "I-LOC"])]
    bad = [{"data": {"text": text}, "annotations": [{"result": [
        {"type": "labels", "value": {"start": 3, "end": 5, "text": "杭州", "labels": ["LOC"]}}]}]}]
    path.write_text(json.dumps(bad, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(UserError, match="the text there is '银行', the record says '杭州'"):
        read_sentences(path)
