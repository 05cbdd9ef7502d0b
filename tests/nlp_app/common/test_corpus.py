"""Normalisation, cleaning, splitting and file validation on tiny inputs."""
import json

import pytest

from nlp_app.common.config import DataConfig
from nlp_app.common.corpus import build_splits, preprocess, read_labelled, read_texts
from nlp_app.common.normalize import (
    Examples,
    collapse_whitespace,
    deduplicate,
    label_map,
    normalize_text,
    remove_leaks,
    stratified_split,
    strip_control,
    to_half_width,
)
from shared.errors import UserError


def test_half_width():
    assert to_half_width("ＡＢＣ１２３！") == "ABC123!"
    assert to_half_width("好\u3000书") == "好 书"
    assert to_half_width("。、「」") == "。、「」"  # no ASCII twin: unchanged


def test_control_and_whitespace():
    assert strip_control("a\u200bb\x00c\td") == "abc d"
    assert collapse_whitespace("  a \n\n b\t c ") == "a b c"
    assert normalize_text(" Ｈｅｌｌｏ\u3000世界\r\n！ ") == "hello 世界 !"
    assert normalize_text("ABC", lowercase=False) == "ABC"


def test_deduplicate_drops_duplicates_conflicts_and_empties():
    texts = ["好", "好", "差", "一般", "一般", ""]
    labels = ["pos", "pos", "neg", "pos", "neg", "pos"]
    data, report = deduplicate(texts, labels)
    assert data.texts == ["好", "差"] and data.labels == ["pos", "neg"]
    assert (report.duplicates, report.conflicting_texts, report.empty) == (1, 1, 1)
    assert report.rows_in == report.rows_out + report.duplicates + report.conflicting_rows + report.empty


def test_split_is_stratified_disjoint_and_seeded():
    data = Examples([f"文本{i}" for i in range(100)], ["a" if i % 4 else "b" for i in range(100)])
    one = stratified_split(data, 0.1, 0.1, seed=3)
    two = stratified_split(data, 0.1, 0.1, seed=3)
    assert [len(one[s]) for s in ("train", "valid", "test")] == [80, 10, 10]
    assert one["test"].texts == two["test"].texts
    sets = [set(one[s].texts) for s in ("train", "valid", "test")]
    assert not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])
    assert one["test"].labels.count("b") in (2, 3)


def test_a_class_of_three_rows_among_many_gets_one_in_each_split():
    """3 rows of 93 (a topic file with one rare class): the held-out fifth cannot hold two of
    them, so scikit-learn's second stratified split had stopped with a traceback."""
    labels = ["体育", "财经"] * 45 + ["军事"] * 3
    data = Examples([f"文本{i}" for i in range(len(labels))], labels)
    parts = stratified_split(data, 0.1, 0.1, seed=42)
    assert [parts[s].labels.count("军事") for s in ("train", "valid", "test")] == [1, 1, 1]
    assert sum(len(p) for p in parts.values()) == 93 and len(set().union(*(p.texts for p in parts.values()))) == 93


@pytest.mark.parametrize("rare_rows", [1, 2])
def test_a_class_of_one_or_two_rows_is_an_error_naming_it_and_the_way_out(rare_rows):
    labels = ["体育", "财经"] * 45 + ["军事"] * rare_rows
    data = Examples([f"文本{i}" for i in range(len(labels))], labels)
    with pytest.raises(UserError, match=rf"labels \['军事'\] have fewer than 3 examples \({rare_rows}\).*"
                                        r"data.label_map=\{\"军事\": \"<class>\"\}.*drop their rows"):
        stratified_split(data, 0.1, 0.1, seed=42)


def test_label_map_and_single_class():
    assert label_map(["pos", "neg", "pos"]) == ["neg", "pos"]
    with pytest.raises(UserError, match="single class"):
        label_map(["pos", "pos"])


def test_remove_leaks():
    splits = {"train": Examples(["a", "b"], ["x", "y"]), "valid": Examples(["a", "c"], ["x", "y"]),
              "test": Examples(["c", "d"], ["y", "x"])}
    assert remove_leaks(splits) == {"valid": 1, "test": 1}
    assert splits["test"].texts == ["d"]


def _write(path, rows, fmt):
    if fmt == "csv":
        path.write_text("text,label\n" + "".join(f"{t},{y}\n" for t, y in rows), encoding="utf-8")
    else:
        path.write_text("".join(json.dumps({"text": t, "label": y}, ensure_ascii=False) + "\n" for t, y in rows),
                        encoding="utf-8")


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_read_labelled_and_errors(tmp_path, fmt):
    path = tmp_path / f"d.{fmt}"
    _write(path, [("很好", "pos"), ("Ｂａｄ", "neg")], fmt)
    data = read_labelled(path, DataConfig())
    assert data.texts == ["很好", "bad"] and data.labels == ["pos", "neg"]
    with pytest.raises(UserError, match="missing column"):
        read_labelled(path, DataConfig(label_column="sentiment"))
    _write(path, [("很好", "pos"), (" ", "neg"), ("一般", ""), ("太差", "neg")], fmt)
    line = 3 if fmt == "csv" else 2  # the line an editor shows (the CSV's header is line 1)
    with pytest.raises(UserError, match=f"d.{fmt}: line {line} has an empty 'text' or 'label'.*2 such row"):
        read_labelled(path, DataConfig(on_empty="error"))


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_empty_texts_and_labels_are_skipped_and_counted_by_default(tmp_path, fmt, caplog):
    path = tmp_path / f"d.{fmt}"
    _write(path, [("很好", "pos"), (" ", "neg"), ("一般", ""), ("太差", "neg")], fmt)
    data = read_labelled(path, DataConfig())
    assert data.texts == ["很好", "太差"] and data.empty_rows == 2
    line = 3 if fmt == "csv" else 2  # the line an editor shows (the CSV's header is line 1)
    assert "skipped 2 row(s)" in caplog.text and f"(line {line}, line {line + 1};" in caplog.text
    assert read_texts(path) == ["很好", "一般", "太差"]  # predict: only the text must be there
    with pytest.raises(UserError, match=f"line {line} has an empty 'text'"):
        read_texts(path, on_empty="error")


def test_the_manifest_counts_the_skipped_rows(tmp_path):
    rows = [(f"好评{i}", "pos") for i in range(20)] + [(f"差评{i}", "neg") for i in range(20)] + [("", "neg")] * 3
    _write(tmp_path / "d.csv", rows, "csv")
    manifest = preprocess(DataConfig(source="file", path=str(tmp_path / "d.csv")))
    assert manifest["cleaning"]["empty_rows_skipped"] == 3
    assert sum(c["total"] for c in manifest["counts"].values()) == 40


def test_max_examples_cuts_ready_made_splits_in_proportion(tmp_path):
    sizes = {"train": 300, "valid": 60, "test": 90}
    for name, n in sizes.items():
        _write(tmp_path / f"{name}.csv", [(f"{name}文本{i}", "ab"[i % 2]) for i in range(n)], "csv")
    files = {n: str(tmp_path / f"{n}.csv") for n in sizes}
    splits, report = build_splits(DataConfig(source="splits", max_examples=90, **files))
    assert {n: len(p) for n, p in splits.items()} == {"train": 60, "valid": 12, "test": 18}
    assert report["subsampled_to"] == {"train": 60, "valid": 12, "test": 18}
    assert all(set(p.labels) == {"a", "b"} for p in splits.values())  # stratified
    whole, _ = build_splits(DataConfig(source="splits", **files))
    assert {n: len(p) for n, p in whole.items()} == sizes


def test_ready_made_splits_unseen_test_label(tmp_path):
    rows = [(f"好{i}", "pos") for i in range(5)] + [(f"差{i}", "neg") for i in range(5)]
    for name in ("train", "valid"):
        _write(tmp_path / f"{name}.csv", rows, "csv")
    _write(tmp_path / "test.csv", [("中等", "neutral"), ("好0", "pos")], "csv")
    cfg = DataConfig(source="splits", **{n: str(tmp_path / f"{n}.csv") for n in ("train", "valid", "test")})
    with pytest.raises(UserError, match="neutral"):
        build_splits(cfg)


def test_ready_made_splits_with_nothing_of_their_own_or_no_labels(tmp_path):
    """CLUE-style train/dev/test: dev given as test too (every text a leak: scikit-learn had stopped
    on an empty test split with a traceback), and CLUE's unlabelled test.json."""
    for name, n in (("train", 40), ("dev", 10)):
        lines = [json.dumps({"label": str(100 + i % 2), "sentence": f"{name}句子{i}"}, ensure_ascii=False)
                 for i in range(n)]
        (tmp_path / f"{name}.json").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (tmp_path / "test.json").write_text('{"id": 0, "sentence": "句子", "keywords": ""}\n', encoding="utf-8")
    files = {"train": str(tmp_path / "train.json"), "valid": str(tmp_path / "dev.json")}
    with pytest.raises(UserError, match=r"dev.json \(test\): every text is also in train or valid \(10 dropped\)"):
        build_splits(DataConfig(source="splits", text_column="sentence", test=files["valid"], **files))
    with pytest.raises(UserError, match=r"test.json: missing column\(s\) \['label'\].*goes to predict --input"):
        build_splits(DataConfig(source="splits", text_column="sentence", test=str(tmp_path / "test.json"), **files))


def test_single_class_file_is_an_error(tmp_path):
    _write(tmp_path / "one.csv", [(f"好{i}", "pos") for i in range(30)], "csv")
    with pytest.raises(UserError, match="single class"):
        build_splits(DataConfig(source="file", path=str(tmp_path / "one.csv")))


def test_read_texts_txt(tmp_path):
    (tmp_path / "t.txt").write_text("第一条\n\n 第二条 \n", encoding="utf-8")
    assert read_texts(tmp_path / "t.txt") == ["第一条", "第二条"]
