"""Labelled-text files in the layouts people already have (TSV, headerless, fastText, JSON arrays,
star ratings, BOM + CRLF + quoted line breaks, GBK, decorated labels), read by the classification
reader and, for one headerless file, through ``preprocess`` on the command line."""
import json
from pathlib import Path

import pytest

from nlp_app.common.config import DataConfig
from nlp_app.common.corpus import read_labelled, read_texts
from nlp_app.common.normalize import normalize_text
from shared.errors import UserError

ROWS = [("物流很快，包装完好", "pos"), ("质量太差了, 退货", "neg"), ("一般般吧", "mid")]


def _write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


LAYOUTS = {
    "tsv, label first, header": ("d.tsv", "label\ttext\n" + "".join(f"{y}\t{t}\n" for t, y in ROWS), {}),
    "tsv, text first, no header": ("d.tsv", "".join(f"{t}\t{y}\n" for t, y in ROWS), {"column_names": ["text", "label"]}),
    "txt, label<TAB>text, no header": ("d.txt", "".join(f"{y}\t{t}\n" for t, y in ROWS),
                                       {"column_names": ["label", "text"]}),
    "csv, no header": ("d.csv", "".join(f'"{t}",{y}\n' for t, y in ROWS), {"column_names": ["text", "label"]}),
    "csv, semicolons": ("d.csv", "text;label\n" + "".join(f"{t};{y}\n" for t, y in ROWS), {}),
    "fastText": ("d.txt", "".join(f"__label__{y} {t}\n" for t, y in ROWS), {}),
    "json array": ("d.json", json.dumps([{"text": t, "label": y} for t, y in ROWS], ensure_ascii=False), {}),
    "jsonl with a BOM": ("d.jsonl", "\ufeff" + "".join(json.dumps({"text": t, "label": y}, ensure_ascii=False) + "\n"
                                                       for t, y in ROWS), {}),
    "csv, BOM, CRLF, quoted line break, decorated labels": (
        "d.csv", '\ufefftext,label\r\n"物流很快，包装完好", pos \r\n"质量太差了, 退货",neg\r\n"一般\r\n般吧",\tmid\r\n\r\n', {}),
}


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_each_layout_reads_the_right_rows_and_labels(tmp_path, name):
    filename, text, overrides = LAYOUTS[name]
    data = read_labelled(_write(tmp_path / filename, text), DataConfig(**overrides))
    assert data.labels == [y for _, y in ROWS]
    assert [t.replace(" ", "") for t in data.texts] == [normalize_text(t).replace(" ", "") for t, _ in ROWS]


def test_star_ratings_and_numeric_labels_are_classes_as_text(tmp_path):
    stars = _write(tmp_path / "stars.csv", "review,stars\n" + "".join(f"评论{i},{i % 5 + 1}\n" for i in range(20)))
    data = read_labelled(stars, DataConfig(text_column="review", label_column="stars"))
    assert sorted(set(data.labels)) == ["1", "2", "3", "4", "5"] and len(data.texts) == 20
    binary = _write(tmp_path / "b.jsonl", "".join(json.dumps({"text": f"文{i}", "label": i % 2}) + "\n" for i in range(6)))
    assert read_labelled(binary, DataConfig()).labels == ["0", "1"] * 3


def test_a_headerless_file_without_column_names_says_how_to_name_them(tmp_path):
    path = _write(tmp_path / "d.tsv", "".join(f"{y}\t{t}\n" for t, y in ROWS))
    with pytest.raises(UserError, match=r"d.tsv: missing column.*data.column_names=\[label,text\]"):
        read_labelled(path, DataConfig())


def test_labels_spelt_two_ways_are_an_error_until_mapped(tmp_path):
    path = _write(tmp_path / "d.csv", "text,label\n好,pos\n很好,POS\n差,neg\n太差,negative.\n还行,Negative\n")
    with pytest.raises(UserError, match=r"labels \['Negative', 'negative.'\] differ only in case, trailing punctuation or number format.*"
                       r"data.label_map=\{\"Negative\": \"negative.\"\}.*2 such group"):
        read_labelled(path, DataConfig())
    cfg = DataConfig(label_map={"POS": "pos", "Negative": "negative.", "neg": "negative."})
    assert read_labelled(path, cfg).labels == ["pos", "pos", "negative.", "negative.", "negative."]


@pytest.mark.parametrize("text, message", [
    ("text,label\ngood, really good,pos\n", r"d.csv: line 2 has 3 fields separated by commas.*double quotes"),
    ("text,label\n" + "很好,pos\n" * 3 + "a,b,c\n", r"d.csv: line 5 has 3 fields"),
    ("__label__pos __label__good 很好\n", r"d.txt: line 1 has 2 labels.*one label a line"),
])
def test_malformed_rows_name_the_file_and_line(tmp_path, text, message):
    name = "d.txt" if text.startswith("__label__") else "d.csv"
    with pytest.raises(UserError, match=message):
        read_labelled(_write(tmp_path / name, text), DataConfig())


@pytest.mark.parametrize("name", ["d.csv", "d.jsonl", "d.txt"])
def test_a_gbk_file_is_one_line_naming_the_encoding(tmp_path, name):
    path = _write(tmp_path / name, "text,label\n很好,pos\n", encoding="gbk")
    with pytest.raises(UserError, match=r"is not UTF-8 text \(byte 0x\w\w at offset 11.*iconv -f GBK -t UTF-8") as err:
        read_labelled(path, DataConfig()) if name != "d.txt" else read_texts(path)
    assert "\n" not in str(err.value)


def test_excel_unicode_text_utf16_tsv_reads(tmp_path):
    path = _write(tmp_path / "d.txt", "\ufefflabel\ttext\r\n" + "".join(f"{y}\t{t}\r\n" for t, y in ROWS), "utf-16-le")
    assert read_labelled(path, DataConfig()).labels == [y for _, y in ROWS]


def test_predict_reads_the_text_column_of_a_headerless_tsv(tmp_path):
    path = _write(tmp_path / "d.tsv", "".join(f"{y}\t{t}\n" for t, y in ROWS))
    assert read_texts(path, column_names=["label", "text"]) == [normalize_text(t) for t, _ in ROWS]


def test_predict_reads_fasttext_lines_without_their_labels(tmp_path):
    path = _write(tmp_path / "d.txt", "__label__pos 质量很好\n\n__label__neg\t太差了\n没有标签的一行\n")
    assert read_texts(path) == ["质量很好", "太差了", "没有标签的一行"]


def test_preprocess_on_the_command_line_reads_a_headerless_bom_tsv(tmp_path, cli, capsys):
    rows = [(f"{word}{i}号", label) for i in range(20) for word, label in (("好评", "pos"), ("差评", "neg"), ("一般", "mid"))]
    body = "".join(f"{y} \t{t}\r\n" for t, y in rows) + "\t\r\n" + "pos\t\r\n"  # two empty rows at the end
    path = _write(tmp_path / "reviews.tsv", "\ufeff" + body)
    assert cli("preprocess", "--config", "configs/nlp_app/sentiment-quick.yaml", "data.source=file",
               f"data.path={path}", "data.column_names=[label,text]") == 0
    out = json.loads(capsys.readouterr().out)
    assert out["labels"] == ["mid", "neg", "pos"] and out["cleaning"]["empty_rows_skipped"] == 2
    assert sum(c["total"] for c in out["counts"].values()) == 60


def test_a_file_with_its_own_header_wins_over_the_runs_column_names(tmp_path):
    """A run trained on a headerless file keeps ``data.column_names``; a file with a header given
    to ``evaluate --data`` or ``predict`` reads by that header (its first row is not data)."""
    labelled = _write(tmp_path / "later.csv", "text,label\n" + "".join(f'"{t}",{y}\n' for t, y in ROWS))
    data = read_labelled(labelled, DataConfig(column_names=["label", "text"]))
    assert data.labels == [y for _, y in ROWS]
    one_column = _write(tmp_path / "texts.csv", "text\n物流很快\n\n一般般吧\n")
    assert read_texts(one_column, column_names=["label", "text"]) == ["物流很快", "一般般吧"]


def test_predict_input_without_texts_is_an_error_not_an_empty_output(tmp_path):
    with pytest.raises(UserError, match=r"e.csv: no texts: every row has an empty 'text'"):
        read_texts(_write(tmp_path / "e.csv", "text,id\n,1\n  ,2\n"))
    with pytest.raises(UserError, match=r"h.csv: no texts: no rows"):
        read_texts(_write(tmp_path / "h.csv", "text\n"))
    with pytest.raises(UserError, match=r"e.txt: no texts"):
        read_texts(_write(tmp_path / "e.txt", "\n \n"))


def test_missing_column_hints_fit_the_layout(tmp_path):
    headerless = _write(tmp_path / "texts.csv", "物流很快\n一般般吧\n")
    with pytest.raises(UserError, match=r"no column 'text'.*data.column_names=\[text\]"):
        read_texts(headerless)
    tnews = _write(tmp_path / "tnews.json", json.dumps({"label": "103", "label_desc": "news_sports",
                                                        "sentence": "比赛", "keywords": ""}) + "\n")
    with pytest.raises(UserError, match=r"found \['keywords', 'label', 'label_desc', 'sentence'\]") as err:
        read_labelled(tnews, DataConfig())
    assert "column_names" not in str(err.value)  # JSON lines have their keys; no header to name
    assert read_labelled(tnews, DataConfig(text_column="sentence", label_column="label_desc")).labels == ["news_sports"]


def test_labels_written_as_integers_and_floats_are_an_error_until_mapped(tmp_path):
    """Part of a 0..4 label column exported as floats (pandas writes ``1.0`` for an int column with
    a gap) would be ten classes; all floats is five classes, as written."""
    mixed = _write(tmp_path / "m.csv", "label,text\n" + "".join(f"{i % 5}{'.0' * (i % 2)},文本{i}\n" for i in range(20)))
    with pytest.raises(UserError, match=r"labels \['0', '0.0'\] differ only in .*number format.*"
                       r"data.label_map=\{\"0\": \"0.0\"\}.*5 such group"):
        read_labelled(mixed, DataConfig())
    floats = _write(tmp_path / "f.csv", "label,text\n" + "".join(f"{i % 5}.0,文本{i}\n" for i in range(20)))
    assert sorted(set(read_labelled(floats, DataConfig()).labels)) == ["0.0", "1.0", "2.0", "3.0", "4.0"]


def test_empty_rows_are_named_by_the_line_an_editor_shows(tmp_path):
    """Blank lines, a quoted text over two lines and the header all count, as in an editor."""
    path = _write(tmp_path / "d.csv", 'text,label\n"物流很快\n包装完好",pos\n\n,neg\n一般般吧,\n质量太差,neg\n')
    with pytest.raises(UserError, match=r"d.csv: line 5 has an empty 'text' or 'label' \(2 such row"):
        read_labelled(path, DataConfig(on_empty="error"))
    items = _write(tmp_path / "d.json", json.dumps([{"text": "很好", "label": "pos"}, {"text": "", "label": "neg"}]))
    with pytest.raises(UserError, match=r"d.json: item 2 has an empty"):
        read_labelled(items, DataConfig(on_empty="error"))


def test_a_later_file_with_labels_spelt_otherwise_gets_the_label_map(tmp_path):
    """Trained on 0..4, scored on a file that wrote them 0.0..4.0 (and POS for pos)."""
    from nlp_app.common.corpus import check_known_labels
    from nlp_app.common.normalize import Examples

    later = Examples(["好", "差", "中"], ["1.0", "POS", "neutral"])
    with pytest.raises(UserError, match=r"later.csv has label\(s\) \['1.0', 'POS', 'neutral'\].*"
                                        r"data.label_map=\{\"1.0\": \"1\", \"POS\": \"pos\"\}"):
        check_known_labels(later, ["0", "1", "pos"], "later.csv")
