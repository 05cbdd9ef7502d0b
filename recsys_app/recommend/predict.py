"""The ``predict`` stage: batch top-K for the users of a file, with the predictor ``serve`` runs
(so a batch list is exactly what the server would answer).

    python -m recsys_app predict --run runs/recsys_app/movielens/latest --input users.csv --output recs.csv
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

from recsys_app.recommend.config import RecsysConfig
from recsys_app.recommend.readers import as_ids, match_columns
from recsys_app.recommend.serve import RecsysPredictor
from recsys_app.recommend.tables import read_table
from shared.runs import write_text

COLUMNS = ["user", "rank", "item", "title", "score", "fallback"]


def predict(cfg: RecsysConfig, run: Path, input: Path, output: Path | str) -> dict:
    """The ``predict`` stage: top-``serve.default_k`` for each user in ``input`` (see
    :func:`read_users`), written to ``output`` as CSV (``.csv``: one row per user and rank) or JSON
    lines (anything else; ``-`` = stdout)."""
    predictor = RecsysPredictor.from_run(cfg, run)
    users = read_users(input, cfg)
    outputs = []
    for start in range(0, len(users), cfg.eval.batch_size):
        batch = [predictor.prepare(predictor.instance_model(user=u)) for u in users[start:start + cfg.eval.batch_size]]
        outputs.extend(predictor.predict_batch(batch))
    if str(output).endswith(".csv"):
        rows = [{"user": o["user"], "rank": r + 1, **it, "fallback": o["fallback"]}
                for o in outputs for r, it in enumerate(o["items"])]
        write_text(output, pd.DataFrame(rows, columns=COLUMNS).to_csv(index=False))
    else:
        text = "".join(json.dumps(o, ensure_ascii=False) + "\n" for o in outputs)
        if str(output) == "-":
            sys.stdout.write(text)
            return {}  # stdout holds the recommendations; keep it parseable
        write_text(output, text)
    return {"users": len(users), "fallback_users": sum(o["fallback"] for o in outputs), "output": str(output)}


def read_users(path: Path, cfg: RecsysConfig) -> list:
    """The users of a ``predict`` file, in file order, once each: the column named like
    ``data.user_col`` or ``user`` when the first line names one (a header), else the first column
    (a plain list of ids, ``user_001`` included). Ids are read as the training file's were
    (:func:`~recsys_app.recommend.readers.as_ids`), so ``0001`` stays the user ``0001``."""
    col_name = str(cfg.data.user_col or "user")
    frame = read_table(path, header="auto", names={col_name.lower(), "user"}, text=(col_name, "user", 0))
    if all(isinstance(c, int) for c in frame.columns):  # no header: the first column holds the users
        col = frame.columns[0]
    else:
        spelt = any(str(c).strip().casefold() == col_name.casefold() for c in frame.columns)
        col = match_columns(frame, {"user_col": col_name if spelt else "user"}, str(path))["user_col"]
    return pd.unique(as_ids(frame[col].dropna())).tolist()
