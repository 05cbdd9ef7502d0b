"""The ``evaluate`` and ``predict`` stages of extractive QA.

``evaluate`` scores a run's answers on its test split (exact match and F1, CMRC 2018 scoring;
``<run>/evaluations/test-split/metrics.json``) or on ``--data FILE``, a SQuAD v1.1 JSON file
(``<run>/evaluations/<file stem>/metrics.json``). ``predict`` answers questions from a SQuAD file
or JSON lines ``{"question": ..., "context": ...}``.
"""
from __future__ import annotations

import json
from pathlib import Path

from nlp_app.common.outputs import numbered_lines, write_jsonl, write_scores
from nlp_app.qa.config import QAConfig
from nlp_app.qa.data import QAExample, load_splits, read_squad
from nlp_app.qa.export import runner_for
from nlp_app.qa.model import answer, score
from shared import metrics, runs
from shared.errors import UserError


def evaluate(cfg: QAConfig, run: Path, data: Path | None = None) -> dict:
    """Score ``run`` on its test split, or on ``data`` (a SQuAD v1.1 JSON file)."""
    examples = read_squad(data) if data else load_splits(cfg)["test"]
    runner, tokenizer = runner_for(cfg, run)
    values = metrics.with_split("data" if data else "test",
                                score(examples, answer(runner, tokenizer, examples, cfg, cfg.eval.batch_size)))
    return {"run": str(run), **write_scores(runs.evaluation_dir(run, data), values)}


def read_questions(path: Path | str | None) -> list[QAExample]:
    """A SQuAD JSON file, or JSON lines ``{"question": ..., "context": ...}`` (``id`` optional)."""
    if path and str(path).endswith(".json"):
        return read_squad(path, require_answers=False)
    out = []
    for n, line in numbered_lines(path):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UserError(f"{path}:{n}: not a JSON line: {exc}") from None
        if not isinstance(row, dict) or not str(row.get("question", "")).strip() or not str(row.get("context", "")).strip():
            raise UserError(f"{path}:{n}: each line needs non-empty 'question' and 'context'")
        out.append(QAExample(str(row.get("id", n)), str(row["question"]).strip(), str(row["context"])))
    return out


def predict(cfg: QAConfig, run: Path, input: Path | str, output: Path | str) -> dict:
    """Questions in (see :func:`read_questions`), one JSON line of answer per question out."""
    examples = read_questions(input)
    runner, tokenizer = runner_for(cfg, run)
    spans = answer(runner, tokenizer, examples, cfg, cfg.eval.batch_size)
    rows = [{"id": e.id, "answer": s.text, "start": s.start, "end": s.end, "score": round(s.score, 6)}
            for e, s in zip(examples, spans)]
    return write_jsonl(rows, output, run)
