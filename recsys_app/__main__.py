"""recsys_app: top-K recommendation (popularity, ItemKNN, EASE, SASRec) from interactions.

    python -m recsys_app preprocess --config configs/recsys_app/movielens.yaml
    python -m recsys_app train      --config configs/recsys_app/movielens.yaml [model.name=ease]
    python -m recsys_app compare    --config configs/recsys_app/movielens.yaml   # every model, one split
    python -m recsys_app evaluate   [--run runs/recsys_app/movielens/latest] [--data future.csv]
    python -m recsys_app predict    --input users.csv --output recs.csv [--run DIR]
    python -m recsys_app serve      [--run DIR] [--host 127.0.0.1] [--port 8000]

Quick CPU run: ``python -m recsys_app train --config configs/recsys_app/movielens-quick.yaml``.
"""
from recsys_app import evaluate, serve, train
from recsys_app.config import RecsysConfig
from recsys_app.preprocess import preprocess
from shared.cli import Stage, legacy_main as main
from shared.config import load_config


def _preprocess(args) -> dict:
    return preprocess(load_config(RecsysConfig, args.config, args.overrides))


STAGES = {
    "preprocess": Stage(_preprocess, "validate, filter, split and cache the interactions"),
    "train": Stage(train.train, "train the recipe's model.name (preprocesses first if needed)"),
    "compare": Stage(train.compare, "train every model on the same split and rank them"),
    "evaluate": Stage(evaluate.evaluate, "score a run on its test split or on --data FILE"),
    "predict": Stage(serve.predict, "top-K for each user of --input FILE into --output FILE"),
    "serve": Stage(serve.serve, "serve a run over HTTP (POST /predict)"),
}

if __name__ == "__main__":
    main("recsys_app", STAGES, default_config="configs/recsys_app/movielens.yaml")
