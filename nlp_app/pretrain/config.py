"""The typed recipe of masked-LM domain pre-training (``task: pretrain``): ``configs/nlp_app/pretrain.yaml``."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from nlp_app.common.config import BertArch, DataConfig
from shared.config import StrictModel
from shared.loop_config import LoopConfig


class PretrainDataConfig(DataConfig):
    """Unlabelled text for masked-LM pre-training: the training split's texts (labels ignored)
    and/or plain-text files, one text per line."""

    use_train_texts: bool = True
    text_files: list[str] = Field(default_factory=list)


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
