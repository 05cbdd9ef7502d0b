"""tabular_mining: churn classification (and, per recipe, segments and association rules).

    python -m tabular_mining preprocess --config configs/tabular_mining/churn.yaml
    python -m tabular_mining train      --config configs/tabular_mining/churn.yaml [model.name=xgboost]
    python -m tabular_mining evaluate   [--run runs/tabular_mining/churn/latest] [--data FILE]
    python -m tabular_mining predict    --input new.csv --output scored.csv [--run DIR]
    python -m tabular_mining serve      [--run DIR] [--host 127.0.0.1] [--port 8000]
    python -m tabular_mining tune       --config configs/tabular_mining/churn.yaml [tune.model=lightgbm tune.n_trials=40]
    python -m tabular_mining stream     [--run DIR] [--input records.jsonl|-|kafka] [--output -|FILE|kafka]

Quick CPU run: ``python -m tabular_mining train --config configs/tabular_mining/churn-quick.yaml``.
"""
from shared.cli import Stage, legacy_main as main
from tabular_mining import stages

STAGES = {
    "preprocess": Stage(stages.preprocess, "validate, clean, split and cache the data"),
    "train": Stage(stages.train, "train the recipe's models (preprocesses first if needed)"),
    "evaluate": Stage(stages.evaluate, "score a run on its test split or on --data FILE"),
    "predict": Stage(stages.predict, "batch-score --input FILE into --output FILE"),
    "serve": Stage(stages.serve, "serve a run over HTTP (POST /predict)"),
    "tune": Stage(stages.tune, "Optuna search on inner CV of the training rows; train with model.params_from=RUN"),
    "stream": Stage(stages.stream, "score JSON lines from --input (stdin, file, kafka) to --output, micro-batched"),
}

if __name__ == "__main__":
    main("tabular_mining", STAGES, default_config="configs/tabular_mining/churn.yaml")
