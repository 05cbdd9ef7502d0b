"""tabular_mining: churn classification, customer segments and association rules.

    python -m tabular_mining preprocess --config configs/tabular_mining/churn.yaml
    python -m tabular_mining train      --config configs/tabular_mining/churn.yaml [model.name=xgboost]
    python -m tabular_mining evaluate   [--run runs/tabular_mining/churn/latest] [--data FILE] [eval.threshold=0.3]
    python -m tabular_mining predict    [--run DIR] --input new.csv --output scored.csv
    python -m tabular_mining serve      [--run DIR] [--host 127.0.0.1] [--port 8000]
    python -m tabular_mining export     [--run DIR]      # classify: XGBoost/LightGBM as ONNX in <run>/export/
    python -m tabular_mining tune       --config configs/tabular_mining/churn.yaml [tune.model=lightgbm tune.n_trials=40]
    python -m tabular_mining stream     [--run DIR] [--input records.jsonl|-|kafka] [--output FILE|-|kafka]

Other recipes: segments.yaml (task: segment), rules.yaml (task: rules); each has a -quick twin
(``train --config configs/tabular_mining/churn-quick.yaml`` runs in seconds on a CPU).
"""
from shared.cli import main
from tabular_mining.tasks import TASKS

if __name__ == "__main__":
    main("tabular_mining", TASKS, default_config="configs/tabular_mining/churn.yaml")
