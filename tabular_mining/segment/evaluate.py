"""The evaluate stage of ``task: segment``: assign rows to the run's segments and measure how well
they separate (silhouette, Davies–Bouldin), on the test split or on any file in the training format.

    python -m tabular_mining evaluate --run runs/tabular_mining/segments/latest [--data new.csv]

``--data FILE`` writes ``<run>/evaluations/<file stem>/``: ``metrics.json`` (``data/`` keys and the
row count), the file's segment profiles (``profiles.csv``, ``PROFILES.md``; the target rate per
segment when the file has the ``data.target`` column) and ``segments_pca.png``. Without it the test
split goes to ``<run>/evaluations/test-split/``. The run's own ``metrics.json`` is not changed.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA

from shared.errors import UserError
from shared.metrics import with_split
from shared.runs import write_json, write_text
from tabular_mining.common.plots import segment_scatter
from tabular_mining.common.runs import evaluation_rows
from tabular_mining.common.table import read_table
from tabular_mining.segment.config import SegmentConfig
from tabular_mining.segment.data import load_data
from tabular_mining.segment.model import cluster_quality, load_segment_run, profile, profiles_markdown


def feature_rows(path: Path, cfg: SegmentConfig, features: list[str]) -> pd.DataFrame:
    """A user's file to assign: read as the data config says; every feature column present."""
    df = read_table(path, cfg.data.format, cfg.data.na_values, cfg.data.column_names)
    missing = [n for n in features if n not in df.columns]
    if missing:
        raise UserError(f"{path}: feature column {missing[0]!r} is missing")
    return df


def evaluate(cfg: SegmentConfig, run: Path, data: Path | None) -> dict:
    """The evaluate stage: the segments of ``data`` (or of the test split), their quality, profiles
    and a PCA plot, written to ``evaluations/<stem>/``; returns the metrics and where they went."""
    loaded = load_segment_run(run)
    df, split, out = evaluation_rows(run, data, lambda: load_data(cfg).test,
                                     lambda path: feature_rows(path, cfg, loaded.schema.names))
    Z, labels, _ = loaded.assign_frame(df, str(data or "test split"))
    metrics = {**with_split(split, cluster_quality(Z, labels, cfg.eval.silhouette_sample, cfg.data.seed)),
               f"{split}/rows": len(df)}
    write_json(out / "metrics.json", metrics)
    target = cfg.data.target if cfg.data.target in df.columns else None
    positive = loaded.schema.classes[1] if target and len(loaded.schema.classes) == 2 else None
    table = profile(df, labels, loaded.schema, target, positive, cfg.eval.top_categories)
    write_text(out / "profiles.csv", table.to_csv(index=False))
    write_text(out / "PROFILES.md", profiles_markdown(table, cfg.model.algorithm))
    if cfg.eval.plots:
        plot_segments(Z, labels, out / "segments_pca.png", cfg)
    return {"evaluation": str(out), **metrics}


def plot_segments(Z: np.ndarray, labels: np.ndarray, path: Path, cfg: SegmentConfig) -> None:
    """The rows on their first two principal components, coloured by segment."""
    pca = PCA(n_components=2, random_state=cfg.data.seed).fit(Z)
    var = pca.explained_variance_ratio_
    segment_scatter(pca.transform(Z), labels, path,
                    title=f"Segments ({cfg.model.algorithm}) on the first two principal components",
                    axis_labels=(f"PC 1 ({var[0]:.0%} of variance)", f"PC 2 ({var[1]:.0%})"), seed=cfg.data.seed)

