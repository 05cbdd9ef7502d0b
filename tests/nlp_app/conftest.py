"""Shared pieces of the NLP tests: tiny recipes of every task (a one-layer 32-wide BERT, a few
steps), the CLI called in-process, and one trained run per task for the whole session."""
from __future__ import annotations

import random
from pathlib import Path

import pytest

from nlp_app.ner.data import write_bio
from nlp_app.tasks import TASKS
from shared import runs
from shared.cli import run_app
from shared.config import read_recipe

TINY_BERT = ["model.hidden_size=32", "model.num_layers=1", "model.num_heads=2", "model.intermediate_size=64",
             "train.device=cpu", "train.progress=false"]
TINY_TEXTS = ["data.max_examples=300", "model.max_length=48", "train.batch_size=16", "train.max_steps=4"]
SENTIMENT = "configs/nlp_app/sentiment-quick.yaml"
PRETRAIN = "configs/nlp_app/pretrain-quick.yaml"
TINY = TINY_TEXTS + TINY_BERT  # for the sentiment and pretrain quick recipes

PEOPLE, PLACES, ORGS = ["张伟", "王芳", "李娜", "刘洋"], ["北京", "上海", "广州"], ["新华社", "人民日报"]


def nlp(*argv) -> int:
    """``python -m nlp_app ARGV`` in this process; returns the exit status."""
    return run_app("nlp_app", TASKS, default_config=SENTIMENT, argv=[str(a) for a in argv])


def recipe_name(path: str | Path) -> str:
    return read_recipe(path)["name"]


def ner_sentences(n: int, seed: int) -> list[tuple[list[str], list[str]]]:
    """Templated sentences with a person, a place and an organisation, tagged in character BIO."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        p, c, o = rng.choice(PEOPLE), rng.choice(PLACES), rng.choice(ORGS)
        parts = [(p, "PER"), ("在", None), (c, "LOC"), ("接受了", None), (o, "ORG"), ("的采访。", None)]
        chars, tags = [], []
        for text, etype in parts:
            for k, ch in enumerate(text):
                chars.append(ch)
                tags.append("O" if etype is None else ("B-" if k == 0 else "I-") + etype)
        out.append((chars, tags))
    return out


@pytest.fixture(scope="session")
def cli():
    """:func:`nlp`: the CLI in this process (a fixture, so test modules need not import conftest)."""
    return nlp


@pytest.fixture(scope="session")
def make_ner_sentences():
    return ner_sentences


@pytest.fixture(scope="session")
def recipes(tmp_path_factory) -> dict[str, tuple[str, list[str]]]:
    """``task → (recipe path, overrides)``: the tiny recipe of every task."""
    root = tmp_path_factory.mktemp("nlp_recipes")
    for name, n, seed in (("train", 40, 1), ("valid", 8, 2), ("test", 8, 3)):
        write_bio(ner_sentences(n, seed), root / f"{name}.bio")
    (root / "ner-test.yaml").write_text(f"""
name: ner-test
task: ner
data: {{source: splits, train: {root}/train.bio, valid: {root}/valid.bio, test: {root}/test.bio}}
model: {{encoder: bilstm, crf: true, word_features: true, embedding_dim: 16, max_length: 16, hidden_size: 32,
        num_layers: 1, num_heads: 2, intermediate_size: 64, vocab_min_freq: 1}}
train: {{max_steps: 6, batch_size: 8, lr: 0.003, monitor: f1, progress: false, device: cpu}}
export: {{quantize: false}}
serve: {{max_instances: 3, max_item_cost: 40, load_in_background: false}}
""", encoding="utf-8")
    (root / "qa-test.yaml").write_text("""
name: qa-test
task: qa
data: {source: generated, generated_size: 60}
features: {doc_stride: 8, max_query_length: 12, max_answer_length: 8}
model: {max_length: 40, hidden_size: 32, num_layers: 1, num_heads: 2, intermediate_size: 64, vocab_min_freq: 1}
train: {max_steps: 6, batch_size: 8, lr: 0.003, monitor: f1, progress: false, device: cpu}
export: {quantize: false}
serve: {max_instances: 2, max_item_cost: 300, max_question_chars: 30, load_in_background: false}
""", encoding="utf-8")
    return {"classify": (SENTIMENT, TINY), "pretrain": (PRETRAIN, TINY),
            "qa": (str(root / "qa-test.yaml"), []), "ner": (str(root / "ner-test.yaml"), [])}


@pytest.fixture(scope="session")
def trained(recipes):
    """``trained(task) → run dir``: the task's tiny recipe trained once per session (through the CLI)."""
    done: dict[str, Path] = {}

    def get(task: str) -> Path:
        if task not in done:
            path, overrides = recipes[task]
            assert nlp("train", "--config", path, *overrides) == 0
            done[task] = runs.latest_run("nlp_app", recipe_name(path))
        return done[task]

    return get
