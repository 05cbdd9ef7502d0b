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
from recsys_app.recommend.readers import require_columns
from recsys_app.recommend.serve import RecsysPredictor
from recsys_app.recommend.tables import read_table
from shared.runs import write_text

COLUMNS = ["user", "rank", "item", "title", "score", "fallback"]


def predict(cfg: RecsysConfig, run: Path, input: Path, output: Path | str) -> dict:
    """The ``predict`` stage: top-``serve.default_k`` for each user in ``input`` (a column named
    like ``data.user_col`` or ``user``, or the first column of a headerless file), written to ``output`` as CSV (``.csv``: one row per user and rank) or
    JSON lines (anything else; ``-`` = stdout)."""
    predictor = RecsysPredictor.from_run(cfg, run)
    frame = read_table(input)
    if all(isinstance(c, int) for c in frame.columns):  # no header: the first column holds the users
        col = frame.columns[0]
    else:
        col = cfg.data.user_col if cfg.data.user_col in frame.columns else "user"
        require_columns(frame, {"data.user_col": col}, str(input))
    users = frame[col].dropna().drop_duplicates().tolist()
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
