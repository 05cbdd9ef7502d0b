"""The train stage of ``task: segment``: customer segments on the classify feature pipeline.

    python -m tabular_mining train --config configs/tabular_mining/segments.yaml [model.algorithm=hdbscan]

The feature schema and the clustering space are fitted on the training rows only, and the test
rows are assigned to the fitted segments to check that the structure holds on rows the clusterer
never saw. A run holds ``segments.csv`` (segment per row), ``profiles.csv`` + ``PROFILES.md``,
``k_selection.json`` + ``k_selection.png`` (the silhouette / Davies–Bouldin curve),
``segments_pca.png``, ``segment_space.json`` + ``segmenter.safetensors`` (what serving loads) and
``metrics.json``. Clustering takes seconds, so a resumed run simply clusters again.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
from safetensors.numpy import save_file

from shared.metrics import with_split
from shared.runs import atomic_path, write_json, write_text
from tabular_mining.common.features import encode_frame
from tabular_mining.common.plots import k_selection_chart
from tabular_mining.segment.config import SegmentConfig
from tabular_mining.segment.data import SegmentSplits, load_data
from tabular_mining.segment.evaluate import plot_segments
from tabular_mining.segment.model import (
    SegmentSpace,
    cluster_quality,
    fit_segments,
    profile,
    profiles_markdown,
)

log = logging.getLogger(__name__)


def train(cfg: SegmentConfig, run: Path) -> dict:
    """The train stage: fit the space and the clusterer on the training rows, assign the test
    rows, write the segments, profiles and plots; returns the cluster-quality metrics."""
    data = load_data(cfg)
    schema = data.schema
    X_train, X_test = encode_frame(data.train, schema), encode_frame(data.test, schema)
    space = SegmentSpace.fit(schema, X_train, cfg.model.categorical_weight)
    Z_train, Z_test = space.transform(X_train), space.transform(X_test)
    segmenter, train_labels, curve, extra = fit_segments(cfg, Z_train)
    test_labels, _ = segmenter.assign(Z_test)

    write_json(run / "feature_schema.json", schema.to_dict())
    write_json(run / "data_manifest.json", data.manifest)
    write_json(run / "segment_space.json", {"columns": space.columns, "shift": space.shift, "scale": space.scale})
    with atomic_path(run / "segmenter.safetensors") as tmp:
        save_file(segmenter.tensors(), str(tmp))

    sample = cfg.eval.silhouette_sample
    n_segments = len(set(train_labels.tolist()) - {-1})
    metrics = {**with_split("train", cluster_quality(Z_train, train_labels, sample, cfg.data.seed)),
               **with_split("test", cluster_quality(Z_test, test_labels, sample, cfg.data.seed)),
               "segments/count": n_segments, **{f"segments/{k}": v for k, v in extra.items()}}
    _write_segments(run, cfg, data, np.concatenate([train_labels, test_labels]))
    write_json(run / "k_selection.json", curve)
    if cfg.eval.plots:
        _plots(run, cfg, curve, Z_train, train_labels)
    log.info("%d segments (%s) → %s", n_segments, cfg.model.algorithm, run)
    return {**metrics, "card": card_section(cfg, data, metrics)}


def _write_segments(run: Path, cfg: SegmentConfig, data: SegmentSplits, labels: np.ndarray) -> None:
    """``segments.csv`` (the segment of every row, train then test) and the profile tables."""
    schema = data.schema
    rows = pd.concat([data.train, data.test], ignore_index=True)
    ids = [c for c in schema.id_columns if c in rows.columns]
    assigned = rows[ids].copy() if ids else pd.DataFrame({"row": np.arange(len(rows))})
    assigned["split"] = ["train"] * len(data.train) + ["test"] * len(data.test)
    assigned["segment"] = labels
    write_text(run / "segments.csv", assigned.to_csv(index=False))
    profiles = profile(rows, labels, schema, schema.target, data.positive, cfg.eval.top_categories)
    write_text(run / "profiles.csv", profiles.to_csv(index=False))
    write_text(run / "PROFILES.md", profiles_markdown(profiles, cfg.model.algorithm))


def _plots(run: Path, cfg: SegmentConfig, curve: list[dict], Z: np.ndarray, labels: np.ndarray) -> None:
    if len(curve) > 1:
        k_selection_chart(curve, len(set(labels.tolist()) - {-1}), run / "k_selection.png")
    plot_segments(Z, labels, run / "segments_pca.png", cfg)


def card_section(cfg: SegmentConfig, data: SegmentSplits, metrics: dict) -> str:
    """The segment part of the run's model card."""
    m = cfg.model
    k = str(m.k) if m.k else f"chosen by {m.select_by} over {m.k_min}..{m.k_max}"
    how = (f"HDBSCAN (min_cluster_size={m.hdbscan.min_cluster_size})" if m.algorithm == "hdbscan"
           else f"{m.algorithm} with k={k}")
    return (f"\n## Segments\n{data.manifest['rows']['train']} rows clustered, {data.manifest['rows']['test']} held "
            f"out and assigned. Model: {how}; {metrics['segments/count']} segments. Silhouette train "
            f"{metrics.get('train/silhouette', float('nan')):.3f}, test {metrics.get('test/silhouette', float('nan')):.3f}."
            "\n\nSegments describe similarity in the features chosen; they are not causes. See `PROFILES.md` "
            "before naming them.\n")
