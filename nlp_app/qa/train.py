"""Extractive question answering: BERT span prediction over question + context windows, trained
with the shared loop, scored with the CMRC 2018 exact match / F1::

    python -m nlp_app preprocess --config configs/nlp_app/qa-quick.yaml
    python -m nlp_app train      --config configs/nlp_app/qa-quick.yaml
    python -m nlp_app evaluate   --config configs/nlp_app/qa.yaml [--data cmrc2018_dev.json]
    python -m nlp_app predict    --config configs/nlp_app/qa.yaml --input questions.jsonl --output -
    python -m nlp_app export     --config configs/nlp_app/qa.yaml
    python -m nlp_app serve      --config configs/nlp_app/qa.yaml

Data: SQuAD v1.1 JSON (:mod:`nlp_app.qa_data`); windows and decoding: :mod:`nlp_app.qa_features`.
"""
from __future__ import annotations

import json
import logging
import random
import re
from collections.abc import Sequence
from pathlib import Path

from nlp_app import qa_ner_model
from nlp_app.bert import build_tokenizer
from nlp_app.qa_config import QAConfig
from nlp_app.qa_data import QAExample, generate_examples, read_squad, split_by_context, to_squad
from nlp_app.qa_features import QAFeatures, Span, best_spans, prepare_features
from shared import metrics, runs
from shared.errors import UserError

log = logging.getLogger(__name__)
APP = "nlp_app"
SPLITS = ("train", "valid", "test")
HEAD = "question_answering"


# ---- preprocess -------------------------------------------------------------------------------

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


# ---- features and scoring ---------------------------------------------------------------------

def feature_items(feats: QAFeatures) -> list[dict]:
    """Rows for the data loader (targets included when the features have them)."""
    items = []
    for i in range(len(feats)):
        item = {"input_ids": feats.input_ids[i], "attention_mask": feats.attention_mask[i],
                "token_type_ids": feats.token_type_ids[i]}
        if feats.start_positions is not None:
            item["start_positions"], item["end_positions"] = feats.start_positions[i], feats.end_positions[i]
        items.append(item)
    return items


def _features(examples: Sequence[QAExample], tokenizer, cfg: QAConfig, with_labels: bool = False) -> QAFeatures:
    f = cfg.features
    return prepare_features(examples, tokenizer, cfg.model.max_length, f.doc_stride, f.max_query_length, with_labels)


def score(examples: Sequence[QAExample], spans: Sequence[Span]) -> dict[str, float]:
    return metrics.span_em_f1([s.text for s in spans], [e.answer_texts for e in examples])


class QATask:
    """The loss, and validation EM/F1 over whole examples (windows decoded back into answers)."""

    def __init__(self, examples: Sequence[QAExample], features: QAFeatures, cfg: QAConfig):
        self.examples, self.features, self.cfg = list(examples), features, cfg

    def loss(self, model, batch):
        return model(**batch).loss

    def evaluate(self, model, loader) -> dict[str, float]:
        starts, ends = [], []
        for batch in loader:
            out = model(**batch)
            mask = batch["attention_mask"].bool().cpu().numpy()
            for s, e, m in zip(out.start_logits.float().cpu().numpy(), out.end_logits.float().cpu().numpy(), mask):
                starts.append(s[m])
                ends.append(e[m])
        starts, ends = qa_ner_model.gather(starts), qa_ner_model.gather(ends)
        f = self.cfg.features
        spans = best_spans(self.examples, self.features, starts, ends, f.n_best, f.max_answer_length)
        return score(self.examples, spans)


def answer(runner, tokenizer, examples: Sequence[QAExample], cfg: QAConfig, batch_size: int) -> list[Span]:
    """The best span of each example (any number of windows each)."""
    feats = _features(examples, tokenizer, cfg)
    outputs = qa_ner_model.run_outputs(runner, feature_items(feats), batch_size)
    f = cfg.features
    return best_spans(examples, feats, [o[0] for o in outputs], [o[1] for o in outputs], f.n_best, f.max_answer_length)


# ---- stages -----------------------------------------------------------------------------------

def train(cfg: QAConfig) -> dict:
    """Preprocess if needed, fine-tune, score the test split, write the run."""
    splits = load_splits(cfg)
    run = runs.create_run(APP, cfg.name)
    texts = [e.question for e in splits["train"]] + list(dict.fromkeys(e.context for e in splits["train"]))
    tokenizer = build_tokenizer(cfg.model, texts)
    model = qa_ner_model.build_model(HEAD, cfg.model, tokenizer, seed=cfg.train.seed)
    train_feats = _features(splits["train"], tokenizer, cfg, with_labels=True)
    valid_feats = _features(splits["valid"], tokenizer, cfg)
    log.info("QA windows: %d train (%d with the answer), %d valid", len(train_feats),
             sum(s > 0 for s in train_feats.start_positions), len(valid_feats))
    train_items = feature_items(train_feats)
    if cfg.features.no_answer_fraction < 1:
        rng = random.Random(cfg.train.seed)
        train_items = [it for it in train_items if it["start_positions"] or rng.random() < cfg.features.no_answer_fraction]
        log.info("kept %d of %d training windows", len(train_items), len(train_feats))
    result = qa_ner_model.fit_model(model, QATask(splits["valid"], valid_feats, cfg), train_items,
                                    feature_items(valid_feats), cfg, run)
    test_feats = _features(splits["test"], tokenizer, cfg)
    test = qa_ner_model.evaluate_on(model, QATask(splits["test"], test_feats, cfg), feature_items(test_feats), cfg)
    qa_ner_model.save_run(run, cfg, model, tokenizer, None, {
        **metrics.with_split("valid", result.best_metrics), **metrics.with_split("test", test),
        "train/seconds": result.train_seconds, "train/steps": result.steps}, card=_card(cfg, splits, test))
    return {"run": str(run), "valid/f1": result.best_metrics.get("f1"), "test/exact_match": test["exact_match"],
            "test/f1": test["f1"]}


def _card(cfg: QAConfig, splits, test: dict) -> str:
    start = cfg.model.pretrained or f"from scratch ({cfg.model.num_layers} layers, hidden {cfg.model.hidden_size})"
    return (f"# QA model `{cfg.name}`\n\nBERT span extraction, start: {start}.\n"
            f"Data: {cfg.data.source}; {len(splits['train'])} training questions, {len(splits['test'])} test questions.\n"
            f"Windows: {cfg.model.max_length} tokens, doc_stride {cfg.features.doc_stride}.\n\n"
            f"Test exact match {test['exact_match']:.4f}, F1 {test['f1']:.4f} (CMRC 2018 scoring, character level).\n")


def load(run: str | None, default_name: str = "qa", backend: str = "torch", threads: int | None = None):
    """``(run_dir, cfg, runner, tokenizer)`` for scoring, predicting and serving."""
    run_dir, cfg, model, tokenizer, _ = qa_ner_model.load_run(APP, QAConfig, run, default_name, HEAD)
    return run_dir, cfg, qa_ner_model.make_runner(run_dir, model, HEAD, backend, threads), tokenizer


def evaluate(cfg: QAConfig, run: str | None = None, data: str | None = None) -> dict:
    """Score a run on its test split, or on ``data`` (a SQuAD v1.1 JSON file)."""
    run_dir, run_cfg, runner, tokenizer = load(run, cfg.name)
    examples = read_squad(data) if data else load_splits(run_cfg)["test"]
    scores = score(examples, answer(runner, tokenizer, examples, run_cfg, cfg.eval.batch_size))
    split = "data" if data else "test"
    runs.update_metrics(run_dir, metrics.with_split(split, scores))
    return {"run": str(run_dir), **metrics.with_split(split, scores)}


def read_questions(path: str | None) -> list[QAExample]:
    """A SQuAD JSON file, or JSON lines ``{"question": ..., "context": ...}`` (``id`` optional)."""
    if path and path.endswith(".json"):
        return read_squad(path, require_answers=False)
    rows = qa_ner_model.read_lines(path)
    out = []
    for n, line in enumerate(rows, 1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UserError(f"{path}:{n}: not a JSON line: {exc}") from None
        if not isinstance(row, dict) or not str(row.get("question", "")).strip() or not str(row.get("context", "")).strip():
            raise UserError(f"{path}:{n}: each line needs non-empty 'question' and 'context'")
        out.append(QAExample(str(row.get("id", n)), str(row["question"]).strip(), str(row["context"])))
    return out


def predict(cfg: QAConfig, run: str | None, input_path: str | None, output: str | None) -> dict:
    """Questions in (see :func:`read_questions`), one JSON line of answer per question out."""
    _, run_cfg, runner, tokenizer = load(run, cfg.name)
    examples = read_questions(input_path)
    spans = answer(runner, tokenizer, examples, run_cfg, cfg.eval.batch_size)
    rows = [{"id": e.id, "answer": s.text, "start": s.start, "end": s.end, "score": round(s.score, 6)}
            for e, s in zip(examples, spans)]
    return qa_ner_model.write_lines(rows, output)


def export(cfg: QAConfig, run: str | None = None) -> dict:
    """``model.onnx`` (+ ``model.int8.onnx``) in the run directory."""
    run_dir, _, _, tokenizer, _ = qa_ner_model.load_run(APP, QAConfig, run, cfg.name, HEAD)
    return qa_ner_model.export(run_dir, tokenizer, HEAD, cfg.export.opset, cfg.export.quantize)

