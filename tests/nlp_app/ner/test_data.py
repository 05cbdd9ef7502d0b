"""People's Daily → character BIO conversion, BIO/BMES reading, entity metrics."""
import pytest

from nlp_app.ner.data import (
    convert_line,
    label_list,
    read_bio,
    read_peoples_daily,
    split_sentences,
    write_bio,
)
from shared.errors import UserError
from shared.metrics import entity_f1


def _entities(chars, tags):
    from seqeval.metrics.sequence_labeling import get_entities

    return [(t, "".join(chars[a:b + 1])) for t, a, b in get_entities(tags)]


def test_plain_words_and_split_names():
    chars, tags = convert_line("中共中央/nt  总书记/n  、/w  国家/n  主席/n  江/nr  泽民/nr  在/p  北京/ns  。/w")
    assert "".join(chars) == "中共中央总书记、国家主席江泽民在北京。"
    assert _entities(chars, tags) == [("ORG", "中共中央"), ("PER", "江泽民"), ("LOC", "北京")]
    assert tags[chars.index("江"):chars.index("在")] == ["B-PER", "I-PER", "I-PER"]


def test_two_people_in_a_row_stay_apart_when_separated():
    chars, tags = convert_line("李/nr  鹏/nr  、/w  朱/nr  镕基/nr")
    assert _entities(chars, tags) == [("PER", "李鹏"), ("PER", "朱镕基")]


def test_bracketed_compounds_take_the_outer_tag():
    chars, tags = convert_line("[中国/ns  政府/n]nt  和/c  [香港/ns 特别/a 行政区/n]ns  [北京/ns 大学/n]nt")
    assert _entities(chars, tags) == [("ORG", "中国政府"), ("LOC", "香港特别行政区"), ("ORG", "北京大学")]


def test_compound_with_other_outer_tag_keeps_inner_tags():
    chars, tags = convert_line("[中国/ns  共产党/n  成立/v]l  了/u")
    assert _entities(chars, tags) == [("LOC", "中国")]
    assert "".join(chars) == "中国共产党成立了"


def test_sentence_split_keeps_quotes_and_caps_length_outside_entities():
    chars, tags = convert_line("他/r 说/v ：/w “/w 好/a 。/w ”/w 江/nr 泽民/nr 到/v 北京/ns 。/w")
    sents = split_sentences(chars, tags, max_chars=100)
    assert ["".join(c) for c, _ in sents] == ["他说：“好。”", "江泽民到北京。"]
    long_chars, long_tags = convert_line("中华人民共和国/ns 成立/v ，/w 欢庆/v 。/w")
    capped = split_sentences(long_chars, long_tags, max_chars=10)
    assert ["".join(c) for c, _ in capped] == ["中华人民共和国成立，", "欢庆。"]
    assert all(len(c) <= 10 for c, _ in capped)
    capped = split_sentences(long_chars, long_tags, max_chars=5)   # the entity itself is too long
    assert all(not t[0].startswith("I-") for _, t in capped)


def test_read_bio_and_bmes(tmp_path):
    bio = tmp_path / "a.bio"
    bio.write_text("江 B-PER\n泽 I-PER\n民 I-PER\n去 O\n\n\n北\tB-LOC\n京\tI-LOC\n", encoding="utf-8")
    sents = read_bio(bio)
    assert sents == [(["江", "泽", "民", "去"], ["B-PER", "I-PER", "I-PER", "O"]), (["北", "京"], ["B-LOC", "I-LOC"])]
    bmes = tmp_path / "a.bmes"
    bmes.write_text("江 B-PER\n泽 M-PER\n民 E-PER\n京 S-LOC\n", encoding="utf-8")
    assert read_bio(bmes, scheme="bmes") == [(["江", "泽", "民", "京"], ["B-PER", "I-PER", "I-PER", "B-LOC"])]
    out = write_bio(sents, tmp_path / "round.bio")
    assert read_bio(out) == sents
    assert label_list(sents) == ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]


@pytest.mark.parametrize("text, message", [
    ("江 B-PER extra\n", r"a.bio:1: expected 'token tag'"),
    ("江 B-PER\n泽 E-PER\n", r"a.bio:2: tag 'E-PER' is not BIO"),
    ("\n\n", "no sentences"),
])
def test_read_bio_errors_name_file_and_line(tmp_path, text, message):
    path = tmp_path / "a.bio"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(UserError, match=message):
        read_bio(path)


def test_read_conll_layouts_docstart_bom_crlf_blank_runs_and_trailing_spaces(tmp_path):
    path = tmp_path / "train.txt"
    path.write_bytes(("\ufeff-DOCSTART- -X- -X- O\r\n\r\n江 B-PER  \r\n泽\tI-PER\r\n\r\n\r\n\r\n去 O\t\r\n"
                      "-DOCSTART- O\r\n北 B-LOC\r\n").encode("utf-8"))
    assert read_bio(path) == [(["江", "泽"], ["B-PER", "I-PER"]), (["去"], ["O"]), (["北"], ["B-LOC"])]
    path.write_bytes("江 B-PER\n".encode("gbk"))
    with pytest.raises(UserError, match=r"train.txt is not UTF-8 text \(byte 0x\w\w at offset 0.*iconv -f GBK"):
        read_bio(path)


def test_bioes_reads_with_the_bmes_scheme_and_an_underscore_tag_is_named(tmp_path):
    path = tmp_path / "a.bioes"
    path.write_text("江 B-PER\n泽 I-PER\n民 E-PER\n京 S-LOC\n去 O\n", encoding="utf-8")
    assert read_bio(path, scheme="bmes") == [(["江", "泽", "民", "京", "去"], ["B-PER", "I-PER", "I-PER", "B-LOC", "O"])]
    with pytest.raises(UserError, match=r"a.bioes:3: tag 'E-PER' is not BIO.*set data.scheme"):
        read_bio(path)
    path.write_text("江 B_PER\n泽 I_PER\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"a.bioes:1: tag 'B_PER': the prefix and the type join with a hyphen \(B-PER\)"):
        read_bio(path)


def test_read_peoples_daily_file(tmp_path):
    path = tmp_path / "pd.txt"
    path.write_text("江/nr  泽民/nr  发表/v  讲话/n  。/w  新华社/nt  报道/v  。/w\n\n北京/ns  。/w\n", encoding="utf-8")
    sents = read_peoples_daily(path)
    assert ["".join(c) for c, _ in sents] == ["江泽民发表讲话。", "新华社报道。", "北京。"]


def test_read_peoples_daily_full_corpus_layout(tmp_path):
    # the full 1998 files: a paragraph id first on each line, brackets, blank lines, CRLF, a BOM
    path = tmp_path / "199801.txt"
    path.write_bytes("\ufeff19980101-01-001-002/m  [中国/ns 政府/n]nt  成立/v  。/w  \r\n\r\n"
                     "19980101-01-001-003/m  江/nr  泽民/nr  讲话/v  。/w  \r\n".encode("utf-8"))
    sents = read_peoples_daily(path)
    assert ["".join(c) for c, _ in sents] == ["中国政府成立。", "江泽民讲话。"]
    assert sents[0][1][:4] == ["B-ORG", "I-ORG", "I-ORG", "I-ORG"] and sents[1][1][:3] == ["B-PER", "I-PER", "I-PER"]


def test_entity_f1_per_type():
    m = entity_f1([["B-PER", "I-PER", "O", "B-LOC"]], [["B-PER", "I-PER", "O", "B-ORG"]])
    assert m["PER/f1"] == 1.0 and m["LOC/recall"] == 0.0 and m["f1"] == pytest.approx(0.5)
