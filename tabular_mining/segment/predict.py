"""The predict stage of ``task: segment``: the segment of every row of a CSV/Parquet file and its
distance to the segment's centre (k-means) or to the nearest training row (HDBSCAN; -1 = noise),
in bounded-memory chunks.

    python -m tabular_mining predict --run runs/tabular_mining/segments/latest --input new.csv --output seg.csv
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from tabular_mining.common.table import score_file
from tabular_mining.segment.config import SegmentConfig
from tabular_mining.segment.model import load_segment_run


def predict(cfg: SegmentConfig, run: Path, input: Path, output: Path) -> dict:
    """The predict stage: the id columns, ``segment`` and ``distance`` of every row of ``input``."""
    loaded = load_segment_run(run)

    def score(chunk: pd.DataFrame) -> pd.DataFrame:
        _, seg, dist = loaded.assign_frame(chunk, str(input))
        out = chunk[[c for c in loaded.schema.id_columns if c in chunk.columns]].copy()
        out["segment"], out["distance"] = seg, dist
        return out

    return score_file(score, input, output, na_values=cfg.data.na_values, column_names=cfg.data.column_names)
