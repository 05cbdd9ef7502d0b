"""The predict stage of ``task: classify``: batch scoring of a file with the run's served model,
in chunks so memory stays bounded whatever the file size. Output: the id columns,
``probability`` and ``label`` (at ``eval.threshold``, which an override changes); for K > 2
classes ``label`` (the most probable class) and ``probability_<class>`` per class. CSV or Parquet
by the output suffix, written atomically.

    python -m tabular_mining predict --input new.csv --output scored.csv [--run DIR] [eval.threshold=0.3]
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from tabular_mining.classify.config import ClassifyConfig
from tabular_mining.classify.evaluate import load_classify_run
from tabular_mining.common.features import encode_frame
from tabular_mining.common.runs import TrainedRun
from tabular_mining.common.table import score_file


def score_frame(loaded: TrainedRun, df: pd.DataFrame, threshold: float, source: str = "input") -> pd.DataFrame:
    """Probability and label for each row of ``df`` with the run's served model (for K > 2
    classes: the most probable class and each class's probability)."""
    model = loaded.models[loaded.served]
    p = model.predict_proba(encode_frame(df, loaded.schema, source))
    out = df[[c for c in loaded.schema.id_columns if c in df.columns]].copy()
    if p.ndim == 2:
        out["label"] = np.asarray(loaded.schema.classes)[p.argmax(axis=1)]
        for k, name in enumerate(loaded.schema.classes):
            out[f"probability_{name}"] = p[:, k]
        return out
    out["probability"] = p
    out["label"] = np.where(p >= threshold, loaded.schema.classes[1], loaded.schema.classes[0])
    return out


def predict(cfg: ClassifyConfig, run: Path, input: Path, output: Path, chunk_rows: int = 100_000) -> dict:
    """The predict stage: every row of ``input`` (CSV/Parquet) scored into ``output``."""
    loaded = load_classify_run(run, only_served=True)
    threshold = cfg.eval.threshold
    summary = score_file(lambda chunk: score_frame(loaded, chunk, threshold, str(input)), input, output, chunk_rows,
                         cfg.data.na_values, cfg.data.column_names)
    return {**summary, "model": loaded.served, "threshold": threshold if len(loaded.schema.classes) == 2 else None}
