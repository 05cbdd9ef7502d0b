"""Named-entity recognition: BERT token classification over characters, one label per character
(on its first sub-token), trained with the shared loop, scored with seqeval at entity level::

    python -m nlp_app preprocess --config configs/nlp_app/ner-quick.yaml
    python -m nlp_app train      --config configs/nlp_app/ner-quick.yaml
    python -m nlp_app evaluate   --config configs/nlp_app/ner.yaml [--data sentences.bio]
    python -m nlp_app predict    --config configs/nlp_app/ner.yaml --input texts.txt --output -
    python -m nlp_app export     --config configs/nlp_app/ner.yaml
    python -m nlp_app serve      --config configs/nlp_app/ner.yaml

Data formats and the People's Daily conversion: :mod:`nlp_app.ner_data`.
"""
from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from nlp_app import qa_ner_model
from nlp_app.bert import build_tokenizer
from nlp_app.ner_config import NERConfig
from nlp_app.ner_data import Sentence, label_list, peoples_daily_path, read_bio, read_peoples_daily, write_bio
from nlp_app.preprocess import to_half_width
from shared import metrics, runs
from shared.errors import UserError

log = logging.getLogger(__name__)
APP = "nlp_app"
SPLITS = ("train", "valid", "test")
IGNORE = -100  # label of special tokens and continuation sub-tokens: not scored, not trained


# ---- preprocess -------------------------------------------------------------------------------

def dedupe_and_split(sentences: list[Sentence], valid_fraction: float, test_fraction: float, seed: int,
                     max_sentences: int | None = None) -> dict[str, list[Sentence]]:
    """Drop repeated sentences (same characters; the first tagging kept), optionally keep a seeded
    subset, and split seeded into train/valid/test, so no sentence is in two splits."""
    seen, unique = set(), []
    for tokens, tags in sentences:
        key = "\u0000".join(tokens)
        if key not in seen:
            seen.add(key)
            unique.append((tokens, tags))
    order = list(range(len(unique)))
    random.Random(seed).shuffle(order)
    if max_sentences:
        order = order[:max_sentences]
    n_test, n_valid = max(1, round(len(order) * test_fraction)), max(1, round(len(order) * valid_fraction))
    if n_test + n_valid >= len(order):
        raise UserError(f"{len(order)} distinct sentences are too few to split into train/valid/test")
    parts = {"test": order[:n_test], "valid": order[n_test:n_test + n_valid], "train": order[n_test + n_valid:]}
    return {name: [unique[i] for i in sorted(idx)] for name, idx in parts.items()}


def _read_sentences(cfg: NERConfig) -> dict[str, list[Sentence]]:
    d = cfg.data
    if d.source == "splits":
        return {name: read_bio(getattr(d, name), d.scheme) for name in SPLITS}
    sentences = read_peoples_daily(peoples_daily_path(), d.max_chars) if d.source == "peoples_daily" \
        else read_bio(d.path, d.scheme)
    return dedupe_and_split(sentences, d.valid_fraction, d.test_fraction, d.seed, d.max_sentences)


def data_dir(cfg: NERConfig) -> Path:
    return runs.cache_dir(APP, cfg.name, {"task": "ner", **cfg.data.model_dump(mode="json")})


def preprocess(cfg: NERConfig) -> dict:
    """Read, convert, de-duplicate and split; write ``{train,valid,test}.bio`` + ``labels.json`` +
    ``manifest.json`` into the cache, and the training sentences as text for masked-LM
    pre-training into ``data/generated/nlp_app/<name>_train_texts.txt``."""
    out = data_dir(cfg)
    splits = _read_sentences(cfg)
    labels = label_list(s for part in splits.values() for s in part)
    manifest = {"task": "ner", "config": cfg.data.model_dump(mode="json"), "labels": labels, "splits": {}}
    for name, part in splits.items():
        path = write_bio(part, out / f"{name}.bio")
        entities = sum(t.startswith("B-") for _, tags in part for t in tags)
        manifest["splits"][name] = {"sentences": len(part), "characters": sum(len(t) for t, _ in part),
                                    "entities": entities, "sha256": runs.file_sha256(path)}
    text_file = runs.write_text(runs.data_root() / "generated" / APP / f"{cfg.name}_train_texts.txt",
                                "".join("".join(tokens) + "\n" for tokens, _ in splits["train"]))
    manifest["pretraining_text"] = str(text_file)
    runs.write_json(out / "labels.json", labels)
    runs.write_json(out / "manifest.json", manifest)
    log.info("NER data in %s: %s", out, {k: v["sentences"] for k, v in manifest["splits"].items()})
    return {"data_dir": str(out), **{f"{k}_sentences": v["sentences"] for k, v in manifest["splits"].items()}}


def load_splits(cfg: NERConfig) -> tuple[dict[str, list[Sentence]], list[str]]:
    out = data_dir(cfg)
    if not (out / "manifest.json").exists():
        preprocess(cfg)
    return {name: read_bio(out / f"{name}.bio") for name in SPLITS}, runs.read_json(out / "labels.json")


# ---- features ---------------------------------------------------------------------------------

def encode(sentences: Sequence[Sentence] | Sequence[list[str]], tokenizer, label2id: dict[str, int] | None,
           max_length: int) -> list[dict]:
    """Token lists (+ tags) → model inputs; each token's tag goes on its first sub-token, every other
    position is :data:`IGNORE`. Also returns ``word_ids`` to map predictions back to tokens."""
    # half-width forms as in pre-training (a one-to-one map: one token stays one token)
    token_lists = [[to_half_width(t) for t in (s[0] if isinstance(s, tuple) else s)] for s in sentences]
    enc = tokenizer(token_lists, is_split_into_words=True, truncation=True, max_length=max_length)
    out = []
    for i, sent in enumerate(sentences):
        word_ids = enc.word_ids(i)
        item = {"input_ids": enc["input_ids"][i], "attention_mask": enc["attention_mask"][i],
                "token_type_ids": enc["token_type_ids"][i], "word_ids": word_ids}
        if label2id is not None and isinstance(sent, tuple):
            tags, prev, labels = sent[1], None, []
            for w in word_ids:
                labels.append(IGNORE if w is None or w == prev else label2id.get(tags[w], 0))
                prev = w
            item["labels"] = labels
        out.append(item)
    return out


def tags_from_logits(logits: np.ndarray, word_ids: Sequence[int | None], n_tokens: int, id2label: Sequence[str]) -> list[str]:
    """Per-token tags from one sequence's logits: the first sub-token's argmax; tokens that got no
    sub-token (truncated, or whitespace) are ``O``."""
    tags = ["O"] * n_tokens
    prev = None
    pred = np.asarray(logits).argmax(-1)
    for pos, w in enumerate(word_ids):
        if w is not None and w != prev:
            tags[w] = id2label[int(pred[pos])]
        prev = w
    return tags


class NERTask:
    """What :func:`shared.training.fit` needs: the loss and the validation entity F1."""

    def __init__(self, labels: Sequence[str]):
        self.labels = list(labels)

    def loss(self, model, batch):
        return model(**batch).loss

    def evaluate(self, model, loader) -> dict[str, float]:
        y_true, y_pred = [], []
        for batch in loader:
            logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits.float()
            pred, gold = logits.argmax(-1).cpu().numpy(), batch["labels"].cpu().numpy()
            for p, g in zip(pred, gold):
                keep = g != IGNORE
                y_true.append([self.labels[i] for i in g[keep]])
                y_pred.append([self.labels[i] for i in p[keep]])
        y_true, y_pred = qa_ner_model.gather(y_true), qa_ner_model.gather(y_pred)
        return metrics.entity_f1(y_true, y_pred)


# ---- stages -----------------------------------------------------------------------------------

def train(cfg: NERConfig) -> dict:
    """Preprocess if needed, fine-tune, score the test split, write the run."""
    splits, labels = load_splits(cfg)
    run = runs.create_run(APP, cfg.name)
    # characters as separate words, so each is in the vocabulary as a word start
    tokenizer = build_tokenizer(cfg.model, [" ".join(t) for t, _ in splits["train"]])
    model = qa_ner_model.build_model("token_classification", cfg.model, tokenizer, labels, cfg.train.seed)
    label2id = {t: i for i, t in enumerate(labels)}
    data = {name: encode(part, tokenizer, label2id, cfg.model.max_length) for name, part in splits.items()}
    task = NERTask(labels)
    result = qa_ner_model.fit_model(model, task, data["train"], data["valid"], cfg, run)
    test = qa_ner_model.evaluate_on(model, task, data["test"], cfg)
    qa_ner_model.save_run(run, cfg, model, tokenizer, labels, {
        **metrics.with_split("valid", result.best_metrics), **metrics.with_split("test", test),
        "train/seconds": result.train_seconds, "train/steps": result.steps}, card=_card(cfg, splits, test))
    return {"run": str(run), "valid/f1": result.best_metrics.get("f1"), "test/f1": test["f1"],
            "test/precision": test["precision"], "test/recall": test["recall"]}


def _card(cfg: NERConfig, splits, test: dict) -> str:
    per_type = ", ".join(f"{k.split('/')[0]} {v:.3f}" for k, v in test.items() if k.endswith("/f1") and "/" in k)
    start = cfg.model.pretrained or f"from scratch ({cfg.model.num_layers} layers, hidden {cfg.model.hidden_size})"
    return (f"# NER model `{cfg.name}`\n\nBERT token classification, start: {start}.\n"
            f"Data: {cfg.data.source}; {len(splits['train'])} training sentences, {len(splits['test'])} test sentences.\n\n"
            f"Test entity F1 {test['f1']:.4f} (P {test['precision']:.4f}, R {test['recall']:.4f}); per type: {per_type}.\n")


def predict_tags(runner, tokenizer, token_lists: Sequence[list[str]], labels: Sequence[str], max_length: int,
                 batch_size: int = 32) -> list[list[str]]:
    """BIO tags for each token list; lists longer than the model's window are cut into chunks."""
    step = max_length - 2
    chunks, owner = [], []
    for i, tokens in enumerate(token_lists):
        for start in range(0, max(len(tokens), 1), step):
            chunks.append(tokens[start:start + step])
            owner.append(i)
    feats = encode(chunks, tokenizer, None, max_length)
    outputs = qa_ner_model.run_outputs(runner, feats, batch_size)
    out: list[list[str]] = [[] for _ in token_lists]
    for i, chunk, feat, (logits,) in zip(owner, chunks, feats, outputs):
        out[i].extend(tags_from_logits(logits, feat["word_ids"], len(chunk), labels))
    return out


def entities(text: str, tags: Sequence[str]) -> list[dict]:
    """``[{"type", "text", "start", "end"}]`` (character offsets, ``end`` exclusive) from per-character tags."""
    from seqeval.metrics.sequence_labeling import get_entities

    return [{"type": t, "text": text[a:b + 1], "start": a, "end": b + 1} for t, a, b in get_entities(list(tags))]


def load(run: str | None, default_name: str = "ner", backend: str = "torch", threads: int | None = None):
    """``(run_dir, cfg, runner, tokenizer, labels)`` for scoring, predicting and serving."""
    run_dir, cfg, model, tokenizer, labels = qa_ner_model.load_run(APP, NERConfig, run, default_name,
                                                                   "token_classification")
    return run_dir, cfg, qa_ner_model.make_runner(run_dir, model, "token_classification", backend, threads), \
        tokenizer, labels


def evaluate(cfg: NERConfig, run: str | None = None, data: str | None = None) -> dict:
    """Score a run on its test split, or on ``data`` (a BIO/BMES file in ``data.scheme``)."""
    run_dir, run_cfg, runner, tokenizer, labels = load(run, cfg.name)
    sentences = read_bio(data, cfg.data.scheme) if data else load_splits(run_cfg)[0]["test"]
    pred = predict_tags(runner, tokenizer, [t for t, _ in sentences], labels, run_cfg.model.max_length,
                        cfg.eval.batch_size)
    scores = metrics.entity_f1([tags for _, tags in sentences], pred)
    split = "data" if data else "test"
    runs.update_metrics(run_dir, metrics.with_split(split, scores))
    return {"run": str(run_dir), "sentences": len(sentences),
            **metrics.with_split(split, {k: scores[k] for k in ("precision", "recall", "f1")})}


def predict(cfg: NERConfig, run: str | None, input_path: str | None, output: str | None) -> dict:
    """One text per line in, one JSON line ``{"text", "entities"}`` per text out."""
    _, run_cfg, runner, tokenizer, labels = load(run, cfg.name)
    texts = qa_ner_model.read_lines(input_path)
    tags = predict_tags(runner, tokenizer, [list(t) for t in texts], labels, run_cfg.model.max_length,
                        cfg.eval.batch_size)
    return qa_ner_model.write_lines([{"text": t, "entities": entities(t, tg)} for t, tg in zip(texts, tags)], output)


def export(cfg: NERConfig, run: str | None = None) -> dict:
    """``model.onnx`` (+ ``model.int8.onnx``) in the run directory."""
    run_dir, _, _, tokenizer, _ = qa_ner_model.load_run(APP, NERConfig, run, cfg.name, "token_classification")
    return qa_ner_model.export(run_dir, tokenizer, "token_classification", cfg.export.opset, cfg.export.quantize)
