"""The small stages: ``preprocess`` and ``pretrain`` (the others have modules of their own)."""
from __future__ import annotations

from nlp_app.config import PretrainConfig, load_recipe
from nlp_app.data import preprocess
from shared.config import load_config


def preprocess_stage(args) -> dict:
    return preprocess(load_recipe(args.config, args.overrides).data)


def pretrain_stage(args) -> dict:
    from nlp_app.pretrain import pretrain

    path = args.config
    if path.endswith(("sentiment.yaml", "sentiment-quick.yaml")):
        path = path.replace("sentiment", "pretrain")  # the default --config is the sentiment recipe
    return pretrain(load_config(PretrainConfig, path, args.overrides))
