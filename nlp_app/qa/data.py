"""Extractive-QA data: SQuAD v1.1 JSON (the format of CMRC 2018) in and out, and a tiny
generated set for smoke runs.

The format::

    {"version": "...", "data": [{"title": "...", "paragraphs": [{"context": "...",
        "qas": [{"id": "q1", "question": "...", "answers": [{"text": "...", "answer_start": 12}]}]}]}]}

``answer_start`` is a character offset into ``context``. Real files have a few offsets that do
not point at their text (CMRC 2018 dev has 200 of 9,657, most with ``answer_start: -1``): when
the text occurs in the context the nearest occurrence is used instead, otherwise the answer is
kept as a reference for scoring but cannot teach a span (see :attr:`QAExample.span`).

SQuAD 2.0 files are read too: a question marked ``"is_impossible": true`` has no answer to
extract, and the models here always extract one, so training and evaluation skip it (counted in
the log); ``predict`` keeps it (it has a question to answer). A UTF-8 BOM is fine.

The ``preprocess`` stage (:func:`preprocess`) reads, validates and splits (by context, so no
passage is in two splits) and caches the splits; :func:`load_splits` reads them back.
"""
from __future__ import annotations

import json
import logging
import os
import random
import re
from dataclasses import dataclass, field
from pathlib import Path

from nlp_app.qa.config import QAConfig
from shared import runs, textfiles
from shared.errors import UserError

log = logging.getLogger(__name__)
APP = "nlp_app"
SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class Answer:
    text: str
    start: int  # character offset into the context; -1 when the text is not in the context


@dataclass(frozen=True)
class QAExample:
    id: str
    question: str
    context: str
    answers: tuple[Answer, ...] = field(default_factory=tuple)
    title: str = ""

    @property
    def span(self) -> tuple[int, int] | None:
        """The first answer that lies in the context, as ``[start, end)`` characters (training target)."""
        for a in self.answers:
            if a.start >= 0:
                return a.start, a.start + len(a.text)
        return None

    @property
    def answer_texts(self) -> list[str]:
        return [a.text for a in self.answers]


def locate_answer(context: str, text: str, start: int) -> int:
    """The offset of ``text`` in ``context``: ``start`` when it is right, else the occurrence
    nearest to ``start``, else -1."""
    if 0 <= start and context[start:start + len(text)] == text:
        return start
    hits, i = [], context.find(text)
    while i >= 0 and text:
        hits.append(i)
        i = context.find(text, i + 1)
    if not hits:
        return -1
    return min(hits, key=lambda h: abs(h - max(start, 0)))


def _need(obj: dict, key: str, kind: type, where: str, path: Path):
    if not isinstance(obj, dict) or key not in obj:
        raise UserError(f"{path}: {where} has no {key!r} (SQuAD v1.1 format expected)")
    value = obj[key]
    if kind is str and isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)  # ids and numeric answers are sometimes numbers
    if not isinstance(value, kind):
        raise UserError(f"{path}: {where}.{key} must be {kind.__name__}, got {type(value).__name__}")
    return value


def parse_squad(doc: dict, path: str | os.PathLike = "<json>", require_answers: bool = True) -> list[QAExample]:
    """Examples from a parsed SQuAD v1.1 document; errors name the file and the JSON path."""
    path = Path(path)
    data = _need(doc, "data", list, "the top level", path)
    examples: list[QAExample] = []
    repaired = unusable = skipped = impossible = empty = 0
    seen: set[str] = set()
    for i, article in enumerate(data):
        title = str(article.get("title", "")) if isinstance(article, dict) else ""
        for j, para in enumerate(_need(article, "paragraphs", list, f"data[{i}]", path)):
            where = f"data[{i}].paragraphs[{j}]"
            context = _need(para, "context", str, where, path)
            if not context.strip():
                empty += 1  # exports carry a few blank passages; no question on one has a span
                skipped += len(para.get("qas") or [])
                continue
            for k, qa in enumerate(_need(para, "qas", list, where, path)):
                qwhere = f"{where}.qas[{k}]"
                qid = _need(qa, "id", str, qwhere, path)
                question = _need(qa, "question", str, qwhere, path)
                if not question.strip():
                    skipped += 1  # real files have a few (CMRC 2018 trial: one); nothing to ask
                    continue
                if qid in seen:
                    raise UserError(f"{path}: {qwhere}.id {qid!r} is used twice; ids must be unique")
                seen.add(qid)
                if require_answers and qa.get("is_impossible") is True:
                    impossible += 1  # SQuAD 2.0: nothing to extract
                    continue
                answers = []
                for m, ans in enumerate(qa.get("answers") or []):
                    text = _need(ans, "text", str, f"{qwhere}.answers[{m}]", path)
                    start = ans.get("answer_start", -1)
                    if not isinstance(start, int):
                        raise UserError(f"{path}: {qwhere}.answers[{m}].answer_start must be an integer")
                    text = text.strip()
                    if not text:
                        continue
                    fixed = locate_answer(context, text, start)
                    repaired += fixed != start and fixed >= 0
                    unusable += fixed < 0
                    answers.append(Answer(text, fixed))
                if require_answers and not answers:
                    raise UserError(f"{path}: {qwhere} has no answers; every question needs at least one")
                examples.append(QAExample(qid, question.strip(), context, tuple(answers), title))
    if not examples:
        raise UserError(f"{path}: no questions found")
    if repaired or unusable or skipped or impossible or empty:
        log.info("%s: %d answer offsets repaired, %d answers not in their context (kept for scoring only), "
                 "%d paragraphs with an empty context skipped, %d questions with no text or no context and %d "
                 "unanswerable (is_impossible) questions skipped", path, repaired, unusable, empty, skipped,
                 impossible)
    return examples


def read_squad(path: str | os.PathLike, require_answers: bool = True) -> list[QAExample]:
    """Read a SQuAD v1.1 / CMRC 2018 JSON file."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"QA data file not found: {path} (SQuAD v1.1 JSON; CMRC 2018: "
                        "https://github.com/ymcui/cmrc2018, files squad-style-data/cmrc2018_*.json)")
    try:
        doc = json.loads(textfiles.read_text(path))
    except json.JSONDecodeError as exc:
        raise UserError(f"{path} is not valid JSON: {exc}") from None
    return parse_squad(doc, path, require_answers)


def to_squad(examples: list[QAExample]) -> dict:
    """The SQuAD v1.1 document for ``examples`` (one paragraph per distinct context)."""
    articles: dict[str, dict] = {}
    for ex in examples:
        art = articles.setdefault(ex.context, {"title": ex.title, "paragraphs": [{"context": ex.context, "qas": []}]})
        art["paragraphs"][0]["qas"].append({
            "id": ex.id, "question": ex.question,
            "answers": [{"text": a.text, "answer_start": a.start} for a in ex.answers],
        })
    return {"version": "v1.1", "data": list(articles.values())}


def split_by_context(examples: list[QAExample], fraction: float, seed: int) -> tuple[list[QAExample], list[QAExample]]:
    """Hold out about ``fraction`` of the *contexts* (all their questions go together, so no
    passage is in both parts)."""
    contexts = sorted({ex.context for ex in examples})
    random.Random(seed).shuffle(contexts)
    n_held = max(1, round(len(contexts) * fraction)) if fraction > 0 else 0
    held = set(contexts[:n_held])
    return [e for e in examples if e.context not in held], [e for e in examples if e.context in held]


# ---- a small generated set: templated facts whose answers a tiny model can learn ----------------

_PEOPLE = ["张伟", "王芳", "李娜", "刘洋", "陈静", "杨磊", "赵敏", "黄强", "周杰", "吴刚", "徐丽", "孙涛"]
_CITIES = ["北京", "上海", "广州", "深圳", "杭州", "南京", "成都", "武汉", "西安", "重庆", "天津", "苏州"]
_ORGS = ["华为公司", "清华大学", "人民日报", "中国银行", "新华社", "北京大学", "国家电网", "中国移动"]
_JOBS = ["工程师", "记者", "教师", "医生", "律师", "会计", "设计师", "研究员"]
_FILLER = ["那一年天气很好。", "后来的事情大家都知道了。", "这件事很少有人提起。", "当地的风景十分优美。",
           "朋友们都很喜欢和他聊天。", "每逢周末都会去公园散步。"]


def generate_examples(n: int, seed: int = 0, filler: int = 2) -> list[QAExample]:
    """``n`` synthetic Chinese QA examples over short biographies (for tests and the quick recipe).

    Each context states where a person was born, the year they joined an organisation and their
    job, padded with ``filler`` unrelated sentences; each question asks for one of those facts.
    """
    rng = random.Random(seed)
    out: list[QAExample] = []
    while len(out) < n:
        person, city, org, job = rng.choice(_PEOPLE), rng.choice(_CITIES), rng.choice(_ORGS), rng.choice(_JOBS)
        year = str(rng.randint(1950, 2020))
        facts = [(f"{person}出生于{city}。", f"{person}出生于哪里？", city),
                 (f"{person}在{year}年加入了{org}。", f"{person}哪一年加入了{org}？", year),
                 (f"{person}的职业是{job}。", f"{person}的职业是什么？", job)]
        sentences = [f[0] for f in facts] + rng.sample(_FILLER, k=min(filler, len(_FILLER)))
        rng.shuffle(sentences)
        context = "".join(sentences)
        sentence, question, answer = rng.choice(facts)
        start = context.index(sentence) + sentence.index(answer, len(person))
        out.append(QAExample(f"gen-{len(out)}", question, context, (Answer(answer, start),), "generated"))
    return out


# ---- the preprocess stage: split and cache ------------------------------------------------------

def _read_splits(cfg: QAConfig) -> dict[str, list[QAExample]]:
    d = cfg.data
    if d.source == "generated":
        examples = generate_examples(d.generated_size, seed=d.seed)
        rest, test = split_by_context(examples, 0.15, d.seed)
        train, valid = split_by_context(rest, d.valid_fraction or 0.15, d.seed + 1)
        return {"train": train, "valid": valid, "test": test}
    train = read_squad(d.train_file)
    test = read_squad(d.test_file)
    if d.valid_file:
        valid = read_squad(d.valid_file)
    else:
        train, valid = split_by_context(train, d.valid_fraction, d.seed)
    # a passage that is scored must not be trained or tuned on
    held = {ex.context for ex in test}
    leaked = sum(ex.context in held for ex in train + valid)
    if leaked:
        log.warning("dropping %d training/validation questions whose context is in the test file", leaked)
        train = [ex for ex in train if ex.context not in held]
        valid = [ex for ex in valid if ex.context not in held]
    if d.max_train_examples:
        train = train[: d.max_train_examples]
    train = [ex for ex in train if ex.span is not None]  # nothing to learn from an answer not in its context
    if not train or not valid:
        raise UserError("QA needs at least one training and one validation question with an answer in its context")
    return {"train": train, "valid": valid, "test": test}


def passage_pieces(context: str, max_chars: int = 250) -> list[str]:
    """A context cut after sentence ends into pieces of at most ``max_chars`` (pre-training
    sequences are short), whitespace collapsed."""
    text = " ".join(context.split())
    pieces, current = [], ""
    for sentence in re.split(r"(?<=[。！？])", text):
        if len(current) + len(sentence) > max_chars:
            pieces.append(current)
            current = ""
        while len(sentence) > max_chars:
            pieces.append(sentence[:max_chars])
            sentence = sentence[max_chars:]
        current += sentence
    return [p for p in pieces + [current] if p.strip()]


def data_dir(cfg: QAConfig) -> Path:
    return runs.cache_dir(APP, cfg.name, {"task": "qa", **cfg.data.model_dump(mode="json")})


def preprocess(cfg: QAConfig) -> dict:
    """Read, validate and split; write ``{train,valid,test}.json`` (SQuAD v1.1) and ``manifest.json``
    into the cache, and the training contexts as text for masked-LM pre-training into
    ``data/generated/nlp_app/<name>_train_texts.txt`` (one piece of at most 250 characters a line)."""
    out = data_dir(cfg)
    splits = _read_splits(cfg)
    manifest = {"task": "qa", "config": cfg.data.model_dump(mode="json"), "splits": {}}
    for name, part in splits.items():
        path = runs.write_json(out / f"{name}.json", to_squad(part))
        manifest["splits"][name] = {"questions": len(part), "contexts": len({e.context for e in part}),
                                    "sha256": runs.file_sha256(path)}
    pieces = [p for c in dict.fromkeys(e.context for e in splits["train"]) for p in passage_pieces(c)]
    text_file = runs.write_text(runs.data_root() / "generated" / APP / f"{cfg.name}_train_texts.txt",
                                "\n".join(pieces) + "\n")
    manifest["pretraining_text"] = str(text_file)
    runs.write_json(out / "manifest.json", manifest)
    log.info("QA data in %s: %s", out, {k: v["questions"] for k, v in manifest["splits"].items()})
    return {"data_dir": str(out), **{f"{k}_questions": v["questions"] for k, v in manifest["splits"].items()}}


def load_splits(cfg: QAConfig) -> dict[str, list[QAExample]]:
    out = data_dir(cfg)
    if not (out / "manifest.json").exists():
        preprocess(cfg)
    return {name: read_squad(out / f"{name}.json", require_answers=False) for name in SPLITS}
