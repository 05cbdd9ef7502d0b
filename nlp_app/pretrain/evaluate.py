"""The ``evaluate`` stage of masked-LM pre-training: MLM loss, perplexity and masked-token accuracy
on held-out text, each text masked once with the recipe's seed (the same masks every time)::

    python -m nlp_app evaluate --config configs/nlp_app/pretrain.yaml          # its latest run, held-out text
    python -m nlp_app evaluate --run runs/nlp_app/pretrain/latest --data texts.txt

Held-out text: the corpus's test split (or the text files' validation cut, see
:mod:`nlp_app.pretrain.data`); ``--data`` takes a .txt (one text a line) or a CSV/JSONL with
``data.text_column``. Scores go to ``<run>/evaluations/test-split/metrics.json`` (held-out text) or
``<run>/evaluations/<file stem>/metrics.json``.
"""
from __future__ import annotations

import random
from pathlib import Path

from nlp_app.common.corpus import read_texts
from nlp_app.common.outputs import write_scores
from nlp_app.common.tokenization import load_tokenizer
from nlp_app.pretrain.config import PretrainConfig
from nlp_app.pretrain.data import held_out
from nlp_app.pretrain.masking import MaskedLMTask, MaskedTexts
from nlp_app.pretrain.train import collator
from shared import metrics, runs
from shared.errors import UserError
from shared.training import evaluate_model


def evaluate(cfg: PretrainConfig, run: Path, data: Path | None = None) -> dict:
    """Score the run's masked-LM on held-out text, or on ``data`` (written to ``evaluations/<stem>/``)."""
    from transformers import AutoModelForMaskedLM

    if not (run / "config.json").exists():
        raise UserError(f"{run} has no model (config.json): train it first")
    texts = (read_texts(data, cfg.data.text_column, cfg.data.lowercase, column_names=cfg.data.column_names)
             if data else held_out(cfg))
    if not texts:
        raise UserError("no held-out text to score: pass --data FILE (one text a line)")
    tokenizer = load_tokenizer(str(run))
    model = AutoModelForMaskedLM.from_pretrained(str(run)).eval()
    dataset = MaskedTexts(tokenizer, texts, cfg.model.max_length)
    collate = collator(cfg, tokenizer)
    dataset.fix_masks(collate, random.Random(cfg.train.seed))
    split = "data" if data else "test"
    values = metrics.with_split(split, evaluate_model(model, MaskedLMTask(), dataset, cfg.train, collate_fn=collate))
    written = write_scores(runs.evaluation_dir(run, data), values)["written"]
    return {"run": str(run), "written": written, "texts": len(texts), **{k: round(v, 4) for k, v in values.items()}}
