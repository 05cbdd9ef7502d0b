"""Typed recipe for extractive question answering (``task: qa``): ``configs/nlp_app/qa.yaml``."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from nlp_app.common.config import BertArch, EvalConfig, ExportConfig, NlpServeConfig
from shared.config import StrictModel
from shared.loop_config import LoopConfig


class QADataConfig(StrictModel):
    """SQuAD v1.1 JSON files (CMRC 2018 is in this format), or a generated toy set.

    ``source: squad``: ``train_file`` is fitted on; ``valid_file`` picks the best checkpoint (when
    absent, ``valid_fraction`` of the training *contexts* is held out); ``test_file`` is scored at
    the end of training. ``source: generated``: templated biographies (tests, quick recipe).
    """

    source: Literal["squad", "generated"] = "squad"
    train_file: str | None = None
    valid_file: str | None = None
    test_file: str | None = None
    valid_fraction: float = Field(0.1, ge=0, lt=0.5)
    max_train_examples: int | None = Field(None, ge=1, description="first N training questions (quick runs)")
    generated_size: int = Field(600, ge=20)
    seed: int = 42

    @model_validator(mode="after")
    def _files(self) -> QADataConfig:
        if self.source == "squad" and not (self.train_file and self.test_file):
            raise ValueError("data.source=squad needs data.train_file and data.test_file (SQuAD v1.1 JSON)")
        return self


class QAFeatureConfig(StrictModel):
    """Windows over long contexts and answer decoding (see :mod:`nlp_app.qa.features`)."""

    doc_stride: int = Field(128, ge=0, description="tokens shared by consecutive windows")
    max_query_length: int = Field(64, ge=4)
    n_best: int = Field(20, ge=1)
    max_answer_length: int = Field(30, ge=1, description="tokens")
    no_answer_fraction: float = Field(1.0, gt=0, le=1, description="share of training windows without the "
                                      "answer that are kept (seeded); below 1 trains faster on long contexts")


class QAModelConfig(BertArch):
    max_length: int = Field(384, ge=32, le=512)


class QAServeConfig(NlpServeConfig):
    max_instances: int = Field(16, ge=1, description="questions in one request")
    max_item_cost: float | None = Field(5000, gt=0, description="characters in one context")
    max_question_chars: int = Field(200, ge=1, description="characters in one question; more is a 422")


class QAConfig(StrictModel):
    name: str = "qa"
    task: Literal["qa"] = "qa"
    data: QADataConfig = QADataConfig(source="generated")
    features: QAFeatureConfig = QAFeatureConfig()
    model: QAModelConfig = QAModelConfig()
    train: LoopConfig = LoopConfig(lr=5e-5, monitor="f1", batch_size=16)
    eval: EvalConfig = EvalConfig()
    serve: QAServeConfig = QAServeConfig()
    export: ExportConfig = ExportConfig()
