"""QA data reading, feature preparation (windows, offsets, labels), post-processing and CMRC metrics."""
import json

import numpy as np
import pytest
from transformers import BertTokenizer

from nlp_app.qa.data import (
    Answer,
    QAExample,
    generate_examples,
    locate_answer,
    read_squad,
    split_by_context,
    to_squad,
)
from nlp_app.qa.features import best_spans, check_window, label_window, prepare_features, window_candidates
from shared.errors import UserError
from shared.metrics import span_em_f1


@pytest.fixture(scope="module")
def tokenizer():
    """A character tokenizer over the generated data plus a few ASCII pieces (no hub download)."""
    chars = sorted({c for ex in generate_examples(200, seed=1) for c in ex.context + ex.question} | set("abcdefg0123456789"))
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + chars + ["##" + c for c in "abcdefg0123456789"]
    return BertTokenizer(vocab={t: i for i, t in enumerate(vocab)})


def _example(context, answer, question="谁出生于哪里？", qid="q"):
    return QAExample(qid, question, context, (Answer(answer, context.index(answer)),))


def test_read_squad_validates_and_repairs(tmp_path):
    good = {"data": [{"title": "t", "paragraphs": [{"context": "张伟出生于北京。", "qas": [
        {"id": "a", "question": "张伟出生于哪里？", "answers": [{"text": "北京", "answer_start": 3}]},   # off by one
        {"id": "b", "question": "张伟是谁？", "answers": [{"text": "上海", "answer_start": -1}]},     # not in context
    ]}]}]}
    path = tmp_path / "qa.json"
    path.write_text(json.dumps(good, ensure_ascii=False), encoding="utf-8")
    a, b = read_squad(path)
    assert a.answers[0].start == 5 and a.span == (5, 7)
    assert b.span is None and b.answer_texts == ["上海"]
    bad = {"data": [{"paragraphs": [{"context": "x", "qas": [{"id": "a", "answers": []}]}]}]}
    path.write_text(json.dumps(bad), encoding="utf-8")
    with pytest.raises(UserError, match=r"data\[0\].paragraphs\[0\].qas\[0\] has no 'question'"):
        read_squad(path)
    with pytest.raises(UserError, match="not found"):
        read_squad(tmp_path / "missing.json")


def test_squad_v2_unanswerable_questions_are_skipped_for_training_and_kept_for_predict(tmp_path):
    doc = {"version": "v2.0", "data": [{"title": "t", "paragraphs": [{"context": "张伟出生于北京。", "qas": [
        {"id": "a", "question": "张伟出生于哪里？", "answers": [{"text": "北京", "answer_start": 5}], "is_impossible": False},
        {"id": "b", "question": "王芳出生于哪里？", "answers": [], "is_impossible": True,
         "plausible_answers": [{"text": "北京", "answer_start": 5}]},
    ]}]}]}
    path = tmp_path / "train-v2.0.json"
    path.write_bytes(("\ufeff" + json.dumps(doc, ensure_ascii=False) + "\r\n").encode("utf-8"))  # a BOM too
    assert [e.id for e in read_squad(path)] == ["a"]
    assert [e.id for e in read_squad(path, require_answers=False)] == ["a", "b"]
    doc["data"][0]["paragraphs"][0]["qas"][1]["is_impossible"] = False  # no answers and not marked: an error
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(UserError, match=r"qas\[1\] has no answers"):
        read_squad(path)
    path.write_bytes(json.dumps(doc, ensure_ascii=False).encode("gbk"))
    with pytest.raises(UserError, match="is not UTF-8 text.*GBK"):
        read_squad(path)


def test_cmrc_layout_several_answers_shifted_offsets_and_empty_paragraphs(tmp_path, caplog):
    """CMRC 2018 / DuReader-robust as exported: several reference answers per question (one a
    longer span not at its offset), an ``answer_start`` a few characters off, and blank passages
    (with and without questions), which are skipped and counted, not an error."""
    context = "张伟出生于北京，是一名医生。张伟在1980年获得了全国大奖。"
    doc = {"version": "v1.0", "data": [{"id": "DEV_0", "title": "", "paragraphs": [
        {"id": "DEV_0_P0", "context": context, "qas": [
            {"id": "DEV_0_Q0", "question": "张伟出生于哪里？", "answers": [
                {"text": "北京", "answer_start": 8}, {"text": "北京", "answer_start": 5},
                {"text": "北京市", "answer_start": 5}]},
            {"id": "DEV_0_Q1", "question": "张伟的职业是什么？", "answers": [
                {"text": "医生", "answer_start": 9}, {"text": "一名医生", "answer_start": 9}]}]},
        {"id": "DEV_0_P1", "context": "", "qas": []},
        {"id": "DEV_0_P2", "context": "  ", "qas": [{"id": "DEV_0_Q2", "question": "谁？", "answers": []}]},
    ]}]}
    path = tmp_path / "cmrc2018_dev.json"
    path.write_text(json.dumps(doc, ensure_ascii=False, indent=2), encoding="utf-8")
    with caplog.at_level("INFO", logger="nlp_app.qa.data"):
        where, job = read_squad(path)
    assert [a.start for a in where.answers] == [5, 5, -1] and where.span == (5, 7)
    assert job.answers[0].start == context.index("医生") and job.answers[1].start == context.index("一名医生")
    assert "2 paragraphs with an empty context skipped, 1 questions with no text or no context" in caplog.text


def test_predict_json_lines_errors_name_the_file_line(tmp_path):
    from nlp_app.qa.evaluate import read_questions

    path = tmp_path / "questions.jsonl"
    path.write_text('{"id": "a", "question": "张伟出生于哪里？", "context": "张伟出生于北京。"}\n\n'
                    '{"id": "b", "question": "谁？", "context": ""}\n', encoding="utf-8")
    with pytest.raises(UserError, match=r"questions.jsonl:3: each line needs"):  # the blank line counts
        read_questions(path)
    path.write_text('{"id": "a", "question": "张伟出生于哪里？", "context": "张伟出生于北京。"}\n\n', encoding="utf-8")
    assert [q.id for q in read_questions(path)] == ["a"]


def test_squad_round_trip_and_context_split():
    examples = generate_examples(30, seed=0)
    doc = to_squad(examples)
    from nlp_app.qa.data import parse_squad
    assert parse_squad(doc) == [QAExample(e.id, e.question, e.context, e.answers, e.title) for e in examples]
    train, held = split_by_context(examples, 0.3, seed=0)
    assert held and train and not ({e.context for e in train} & {e.context for e in held})
    assert all(e.context[e.span[0]:e.span[1]] == e.answers[0].text for e in examples)
    assert locate_answer("ab北京cd北京", "北京", 5) == 6


def test_windows_cover_long_context_and_labels_decode_to_the_answer(tokenizer):
    context = "那一年天气很好。" * 6 + "张伟出生于北京。" + "后来的事情大家都知道了。" * 6
    ex = _example(context, "北京")
    feats = prepare_features([ex], tokenizer, max_length=40, doc_stride=10, max_query_length=10, with_labels=True)
    assert len(feats) > 3 and set(feats.example_index) == {0}
    assert all(len(ids) <= 40 for ids in feats.input_ids)
    # every context character is in some window, and consecutive windows overlap
    covered = {c for offs in feats.offsets for o in offs if o for c in range(*o)}
    assert covered == set(range(len(context)))
    with_answer = [i for i in range(len(feats)) if feats.start_positions[i] != 0]
    assert with_answer, "some window must contain the answer"
    for i in range(len(feats)):
        s, e = feats.start_positions[i], feats.end_positions[i]
        if s == 0:
            assert e == 0
            continue
        # exact character round trip: off by one in either direction fails here
        assert context[feats.offsets[i][s][0]:feats.offsets[i][e][1]] == "北京"
        assert tokenizer.convert_ids_to_tokens(feats.input_ids[i][s:e + 1]) == ["北", "京"]


def test_label_window_edges():
    offsets = [None, None, None, (10, 11), (11, 12), (12, 15), (15, 16), None]
    assert label_window(offsets, (10, 11)) == (3, 3)      # first context token
    assert label_window(offsets, (15, 16)) == (6, 6)      # last context token
    assert label_window(offsets, (13, 14)) == (5, 5)      # inside a multi-character token
    assert label_window(offsets, (9, 11)) == (0, 0)       # starts before the window
    assert label_window(offsets, (15, 17)) == (0, 0)      # ends after the window
    assert label_window(offsets, None) == (0, 0)


def test_bad_window_settings_are_user_errors():
    with pytest.raises(UserError, match="doc_stride"):
        check_window(64, 60, 16)
    with pytest.raises(UserError, match="max_length"):
        check_window(20, 2, 16)


def test_postprocess_picks_best_valid_span_across_windows(tokenizer):
    context = "那一年天气很好。" * 6 + "张伟出生于北京。" + "后来的事情大家都知道了。" * 6
    ex = _example(context, "北京")
    feats = prepare_features([ex], tokenizer, max_length=40, doc_stride=10, max_query_length=10, with_labels=True)
    starts, ends = [], []
    for i in range(len(feats)):
        s = np.full(len(feats.input_ids[i]), -5.0)
        e = np.full(len(feats.input_ids[i]), -5.0)
        s[0] = e[0] = 20.0          # [CLS] (no answer) must never be returned
        s[1] = 19.0                 # a question token must never be returned
        if feats.start_positions[i]:
            s[feats.start_positions[i]] = 10.0
            e[feats.end_positions[i]] = 10.0
        starts.append(s)
        ends.append(e)
    (span,) = best_spans([ex], feats, starts, ends, n_best=5, max_answer_length=10)
    assert (span.text, context[span.start:span.end]) == ("北京", "北京")
    assert span.start == context.index("北京") and 0.5 < span.score <= 1.0


def test_window_candidates_respect_order_and_max_length():
    offsets = [None, (0, 1), (1, 2), (2, 3), (3, 4), None]
    s = np.array([0, 0, 0, 0, 9, 0.0])
    e = np.array([0, 0, 9, 0, 0, 0.0])           # best end before best start: invalid
    cands = window_candidates(s, e, offsets, n_best=6, max_answer_length=2)
    assert cands and all(b > a and b - a <= 2 for _, a, b in cands)
    assert all((a, b) != (3, 2) for _, a, b in cands)


def test_cmrc_metrics_char_level_best_reference():
    m = span_em_f1(["北京市", "光荣和ω-force", ""], [["北京", "北京市"], ["光荣和ω－force"], ["上海"]])
    assert m["exact_match"] == pytest.approx(2 / 3)    # best reference counts; dashes are punctuation
    assert m["f1"] == pytest.approx(2 / 3)
    half = span_em_f1(["北京大学"], [["北京"]])
    assert half["exact_match"] == 0 and half["f1"] == pytest.approx(2 * 0.5 * 1 / 1.5)


def test_passage_pieces_cut_at_sentence_ends():
    from nlp_app.qa.data import passage_pieces

    pieces = passage_pieces("第一句话。第二句话！" + "长" * 30 + "。结尾", max_chars=12)
    assert all(len(p) <= 12 for p in pieces) and "".join(pieces) == "第一句话。第二句话！" + "长" * 30 + "。结尾"
    assert pieces[0] == "第一句话。第二句话！"
