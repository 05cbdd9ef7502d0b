"""Batch scoring of a file with a trained classify run, in chunks so memory stays bounded
whatever the file size. Output: the id columns, ``probability`` and ``label``; CSV or Parquet
by the output suffix, written atomically.

    python -m tabular_mining predict --input new.csv --output scored.csv [--run DIR]
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pandas as pd
from tqdm import tqdm

from shared.errors import UserError
from shared.runs import atomic_path
from tabular_mining.evaluate import ClassifyRun
from tabular_mining.features import encode_frame

log = logging.getLogger(__name__)


def iter_chunks(path: str | Path, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """Read a CSV or Parquet file ``chunk_rows`` rows at a time."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"input file not found: {path}")
    if path.suffix.lower() in {".parquet", ".pq"}:
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_rows):
            yield batch.to_pandas()
    else:
        try:
            yield from pd.read_csv(path, chunksize=chunk_rows, skipinitialspace=True, na_values=["", " "])
        except pd.errors.EmptyDataError:
            raise UserError(f"{path} is empty") from None


def score_frame(loaded: ClassifyRun, df: pd.DataFrame, source: str = "input") -> pd.DataFrame:
    """Probability and label for each row of ``df`` with the run's served model."""
    model = loaded.models[loaded.served]
    p = model.predict_proba(encode_frame(df, loaded.schema, source))
    out = df[[c for c in loaded.schema.id_columns if c in df.columns]].copy()
    out["probability"] = p
    out["label"] = np.where(p >= loaded.cfg.eval.threshold, loaded.schema.classes[1], loaded.schema.classes[0])
    return out


def predict_file(loaded: ClassifyRun, input_path: str, output_path: str, chunk_rows: int = 100_000) -> dict:
    summary = score_file(lambda chunk: score_frame(loaded, chunk, str(input_path)), input_path, output_path, chunk_rows)
    return {**summary, "model": loaded.served}


def score_file(score: Callable[[pd.DataFrame], pd.DataFrame], input_path: str, output_path: str,
               chunk_rows: int = 100_000) -> dict:
    """Apply ``score`` chunk by chunk and append each scored chunk to ``output_path`` (CSV or
    Parquet by suffix), so memory holds one chunk whatever the file size. Used by every task."""
    output = Path(output_path)
    rows = 0
    with atomic_path(output) as tmp:
        writer = None
        for chunk in tqdm(iter_chunks(input_path, chunk_rows), desc="scoring", unit="chunk"):
            scored = score(chunk)
            if output.suffix.lower() in {".parquet", ".pq"}:
                import pyarrow as pa
                import pyarrow.parquet as pq

                table = pa.Table.from_pandas(scored, preserve_index=False)
                writer = writer or pq.ParquetWriter(tmp, table.schema)
                writer.write_table(table)
            else:
                scored.to_csv(tmp, mode="a", header=rows == 0, index=False)
            rows += len(scored)
        if writer is not None:
            writer.close()
    if rows == 0:
        raise UserError(f"{input_path} has no rows to score")
    log.info("scored %d rows → %s", rows, output)
    return {"rows": rows, "output": str(output)}
