"""The predict stage of ``task: regress``: batch scoring of a file with the run's served model, in
chunks so memory stays bounded whatever the file size. Output: the id columns and ``prediction``;
CSV or Parquet by the output suffix, written atomically.

    python -m tabular_mining predict --run runs/tabular_mining/house_prices/latest --input new.csv --output priced.csv
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from tabular_mining.common.features import encode_frame
from tabular_mining.common.runs import TrainedRun
from tabular_mining.common.table import score_file
from tabular_mining.regress.config import RegressConfig
from tabular_mining.regress.evaluate import load_regress_run


def score_frame(loaded: TrainedRun, df: pd.DataFrame, source: str = "input") -> pd.DataFrame:
    """The id columns and the served model's ``prediction`` for each row of ``df``."""
    values = loaded.models[loaded.served].predict(encode_frame(df, loaded.schema, source))
    out = df[[c for c in loaded.schema.id_columns if c in df.columns]].copy()
    out["prediction"] = values
    return out


def predict(cfg: RegressConfig, run: Path, input: Path, output: Path, chunk_rows: int = 100_000) -> dict:
    """The predict stage: every row of ``input`` (CSV/Parquet) scored into ``output``."""
    loaded = load_regress_run(run, only_served=True)
    summary = score_file(lambda chunk: score_frame(loaded, chunk, str(input)), input, output, chunk_rows,
                         cfg.data.na_values, cfg.data.column_names)
    return {**summary, "model": loaded.served}
