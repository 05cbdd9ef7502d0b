"""recsys_app: top-K recommendation (popularity, ItemKNN, EASE, SASRec) from interactions.

    python -m recsys_app preprocess --config configs/recsys_app/movielens.yaml
    python -m recsys_app train      --config configs/recsys_app/movielens.yaml [model.name=sasrec]
    python -m recsys_app compare    --config configs/recsys_app/movielens.yaml   # every model, one split
    python -m recsys_app evaluate   [--run runs/recsys_app/movielens/latest] [--data future.csv]
    python -m recsys_app predict    [--run DIR] --input users.csv --output recs.csv
    python -m recsys_app serve      [--run DIR] [--host 127.0.0.1] [--port 8000]

Quick CPU run: ``python -m recsys_app train --config configs/recsys_app/movielens-quick.yaml``.
"""
from recsys_app.tasks import TASKS
from shared.cli import main

if __name__ == "__main__":
    main("recsys_app", TASKS, default_config="configs/recsys_app/movielens.yaml")
