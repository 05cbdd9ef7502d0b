"""Segmentation, character vocabularies, the tokenizer's own text normalisation, token→word maps
and dynamic padding."""
from transformers import AutoTokenizer

from nlp_app.common.bert import DynamicPadding, pad_multiple_for
from nlp_app.common.normalize import normalize_text
from nlp_app.common.tokenization import (
    SPECIAL_TOKENS,
    build_char_vocab,
    char_tokenizer,
    normalizing_tokenizer,
    segment,
    token_word_ids,
    word_spans,
)


def test_segment_words():
    words = segment("我很喜欢这本书")
    assert "".join(words) == "我很喜欢这本书" and "喜欢" in words
    assert word_spans("喜欢 书") == [(0, 2), (3, 4)]


def test_char_vocab_order_and_continuations():
    vocab = build_char_vocab(["好好好书", "好书 ok", "ok"], min_freq=2)
    assert vocab[: len(SPECIAL_TOKENS)] == list(SPECIAL_TOKENS)
    assert vocab[len(SPECIAL_TOKENS)] == "好"  # most frequent first
    assert "o" in vocab and "##k" in vocab and "k" not in vocab
    tok = char_tokenizer(vocab)
    assert tok.convert_ids_to_tokens(tok("好书ok")["input_ids"]) == ["[CLS]", "好", "书", "o", "##k", "[SEP]"]
    assert tok.convert_ids_to_tokens(tok("坏")["input_ids"])[1] == "[UNK]"


def test_the_tokenizer_normalises_full_width_and_case_and_keeps_it_when_saved(tmp_path):
    plain = char_tokenizer(build_char_vocab(["好书, ok! 12", "好书 ok 12", "坏, no!"], min_freq=1))
    raw = ["好书，ＯＫ！\u3000１２", "坏\u200b，NO！"]  # full-width, upper case, a zero-width space
    assert plain(raw[0])["input_ids"] != plain(normalize_text(raw[0]))["input_ids"]  # the gap this closes
    tok = normalizing_tokenizer(plain, lowercase=True)
    assert [tok(t)["input_ids"] for t in raw] == [tok(normalize_text(t))["input_ids"] for t in raw]
    assert "[UNK]" not in tok.convert_ids_to_tokens(tok(raw[0])["input_ids"])
    assert normalizing_tokenizer(tok, lowercase=True) is tok  # already normalising: unchanged, not wrapped twice
    tok.save_pretrained(str(tmp_path))
    again = AutoTokenizer.from_pretrained(str(tmp_path))  # what transformers.pipeline loads
    assert [again(t)["input_ids"] for t in raw] == [tok(t)["input_ids"] for t in raw]
    assert normalizing_tokenizer(again, lowercase=True) is again and len(again) == len(plain)


def test_token_word_ids_follow_jieba_words():
    offsets = [(0, 0), (0, 1), (1, 2), (2, 3), (0, 0)]
    assert token_word_ids(offsets, [(0, 2), (2, 3)]) == [None, 0, 0, 1, None]


def test_dynamic_padding_and_multiple_of_8():
    batch = DynamicPadding(0)([{"input_ids": [2, 5, 3], "labels": 1}, {"input_ids": [2, 3], "labels": 0}])
    assert batch["input_ids"].tolist() == [[2, 5, 3], [2, 3, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]
    assert batch["labels"].tolist() == [1, 0]
    amp = DynamicPadding(0, pad_multiple_for("bf16"))([{"input_ids": [1] * 9}])
    assert amp["input_ids"].shape == (1, 16) and pad_multiple_for("fp32") is None
