"""The typed recipe of text classification (``task: classify``): ``configs/nlp_app/sentiment.yaml``::

    cfg = load_config(ClassifyConfig, "configs/nlp_app/sentiment.yaml", ["model.name=baseline"])
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field

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


class ModelConfig(BertArch):
    name: Literal["baseline", "bert"] = "bert"
    baseline: BaselineConfig = BaselineConfig()


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
    serve: NlpServeConfig = NlpServeConfig()
    export: ExportConfig = ExportConfig()
    compare: CompareConfig = CompareConfig()
