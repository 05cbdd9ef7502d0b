"""Customer segments: the clustering space, choosing k, the clusterers, assignment and profiles.

The space is the classify pipeline's :func:`~tabular_mining.common.features.design_matrix` (numerics
median-imputed, categoricals one-hot) with the numerics z-scored on the training rows and the
one-hot columns scaled by ``categorical_weight``: distances then weigh one standard deviation of
a number like one category switch. Everything a fitted segmenter needs is plain numbers (JSON
and safetensors), so serving loads no pickles.

- KMeans / MiniBatchKMeans: k fixed, or chosen over ``k_min..k_max`` by silhouette (highest) or
  Davies–Bouldin (lowest); new rows go to the nearest centre (what ``KMeans.predict`` does).
- HDBSCAN (scikit-learn): the number of segments comes from the density; ``-1`` is noise. It
  has no ``predict``, so a new row takes the segment of its nearest training row.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from safetensors.numpy import load_file
from sklearn.cluster import HDBSCAN, KMeans, MiniBatchKMeans
from sklearn.metrics import adjusted_rand_score, davies_bouldin_score, silhouette_score
from sklearn.neighbors import NearestNeighbors

from shared.errors import UserError
from shared.runs import read_json
from tabular_mining.common.features import (
    CATEGORICAL,
    FeatureSchema,
    clean,
    design_columns,
    design_matrix,
    encode_frame,
)
from tabular_mining.segment.config import SegmentConfig

log = logging.getLogger(__name__)


@dataclass
class SegmentSpace:
    """Encoded features → the clustering space (``(design - shift) / scale``)."""

    schema: FeatureSchema
    shift: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, schema: FeatureSchema, X: np.ndarray, categorical_weight: float = 1.0) -> SegmentSpace:
        D = design_matrix(X, schema)
        numeric = np.array([f.kind != CATEGORICAL for f in schema.features
                            for _ in (f.categories if f.kind == CATEGORICAL else [None])])
        shift = np.where(numeric, D.mean(axis=0), 0.0)
        std = D.std(axis=0)
        scale = np.where(numeric, np.where(std > 0, std, 1.0), 1.0 / categorical_weight)
        return cls(schema, shift.astype(np.float32), scale.astype(np.float32))

    def transform(self, X: np.ndarray, dtype: type = np.float32) -> np.ndarray:
        """Rows of the clustering space; ``dtype=np.float64`` for rows that may lie far outside the
        training data (a served record), whose squared distances a float32 could not hold."""
        D = design_matrix(X, self.schema).astype(dtype)
        return ((D - self.shift) / self.scale).astype(dtype)

    @property
    def columns(self) -> list[str]:
        return design_columns(self.schema)


def cluster_quality(Z: np.ndarray, labels: np.ndarray, sample: int, seed: int = 0) -> dict[str, float]:
    """Silhouette (on a sample of at most ``sample`` rows) and Davies–Bouldin, noise (-1) left out;
    empty when fewer than two segments remain."""
    keep = labels >= 0
    Z, labels = Z[keep], labels[keep]
    if len(np.unique(labels)) < 2 or len(labels) < 3:
        return {}
    n = min(sample, len(labels))
    return {
        "silhouette": float(silhouette_score(Z, labels, sample_size=n if n < len(labels) else None, random_state=seed)),
        "davies_bouldin": float(davies_bouldin_score(Z, labels)),
    }


def fit_kmeans(Z: np.ndarray, k: int, algorithm: str, n_init: int, batch_size: int, seed: int):
    if algorithm == "minibatch_kmeans":
        return MiniBatchKMeans(n_clusters=k, n_init=n_init, batch_size=batch_size, random_state=seed).fit(Z)
    return KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit(Z)


def scan_k(Z: np.ndarray, k_values: Sequence[int], algorithm: str, n_init: int, batch_size: int,
           sample: int, seed: int) -> tuple[list[dict], dict]:
    """Fit one model per k; returns the curve rows (k, silhouette, davies_bouldin, inertia) and models."""
    rows, models = [], {}
    for k in k_values:
        if k >= len(Z):
            break
        model = fit_kmeans(Z, k, algorithm, n_init, batch_size, seed)
        rows.append({"k": k, **cluster_quality(Z, model.labels_, sample, seed), "inertia": float(model.inertia_)})
        models[k] = model
        log.info("k=%d silhouette=%.4f davies_bouldin=%.4f", k, rows[-1].get("silhouette", np.nan),
                 rows[-1].get("davies_bouldin", np.nan))
    return rows, models


def choose_k(rows: list[dict], select_by: str) -> int:
    """The k with the best ``select_by`` (silhouette: max, davies_bouldin: min); ties: the smaller k."""
    scored = [r for r in rows if select_by in r]
    if not scored:
        raise ValueError("no k gave two or more segments")
    sign = 1.0 if select_by == "silhouette" else -1.0
    return max(scored, key=lambda r: (sign * r[select_by], -r["k"]))["k"]


def fit_hdbscan(Z: np.ndarray, min_cluster_size: int, min_samples: int | None, epsilon: float) -> np.ndarray:
    return HDBSCAN(min_cluster_size=min_cluster_size, min_samples=min_samples,
                   cluster_selection_epsilon=epsilon, copy=True).fit_predict(Z)


class Segmenter:
    """Assigns rows in the clustering space: nearest centre (k-means) or nearest training row (HDBSCAN)."""

    def __init__(self, centers: np.ndarray | None = None, points: np.ndarray | None = None,
                 point_labels: np.ndarray | None = None):
        if (centers is None) == (points is None):
            raise ValueError("give centers (k-means) or points + labels (HDBSCAN)")
        self.centers, self.points, self.point_labels = centers, points, point_labels
        self._nn = NearestNeighbors(n_neighbors=1).fit(points) if points is not None else None

    def assign(self, Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(segment per row, distance to its centre or nearest training row)``."""
        if len(Z) == 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
        if self.centers is not None:
            d2 = (Z * Z).sum(1)[:, None] - 2 * Z @ self.centers.T + (self.centers * self.centers).sum(1)[None, :]
            seg = d2.argmin(axis=1)
            # the distance row by row, not from the matrix product: a BLAS product rounds
            # differently with the number of rows, and a served row's answer must not depend on
            # which other requests shared its batch
            return seg.astype(np.int64), np.sqrt(np.square(Z - self.centers[seg]).sum(axis=1))
        dist, idx = self._nn.kneighbors(Z)
        return self.point_labels[idx[:, 0]].astype(np.int64), dist[:, 0]

    def tensors(self) -> dict[str, np.ndarray]:
        if self.centers is not None:
            return {"centers": self.centers.astype(np.float32)}
        return {"points": self.points.astype(np.float32), "point_labels": self.point_labels.astype(np.int64)}

    @classmethod
    def from_tensors(cls, t: dict[str, np.ndarray]) -> Segmenter:
        if "centers" in t:
            return cls(centers=t["centers"])
        return cls(points=t["points"], point_labels=t["point_labels"])


def profile(df: pd.DataFrame, labels: np.ndarray, schema: FeatureSchema, target: str | None = None,
            positive: str | None = None, top_categories: int = 2) -> pd.DataFrame:
    """One row per segment (and ``all``): size, share, the target rate, each numeric's mean and
    each categorical's most frequent values with their shares. Pure."""
    labels = np.asarray(labels)
    groups = [(str(s), labels == s) for s in sorted(set(labels.tolist()))] + [("all", np.ones(len(df), bool))]
    rows = []
    for name, mask in groups:
        part = df[mask]
        row: dict = {"segment": "noise" if name == "-1" else name, "size": int(mask.sum()),
                     "share": float(mask.mean()) if len(df) else 0.0}
        if target and positive is not None and target in df.columns:
            row[f"{target}_rate"] = float((part[target].astype(str) == positive).mean()) if len(part) else np.nan
        for f in schema.features:
            col = part[f.name]
            if f.kind == CATEGORICAL:
                shares = col.astype("string").value_counts(normalize=True).head(top_categories)
                row[f.name] = ", ".join(f"{v} ({s:.0%})" for v, s in shares.items())
            else:
                row[f.name] = float(pd.to_numeric(col, errors="coerce").mean())
        rows.append(row)
    return pd.DataFrame(rows)


def profiles_markdown(profiles: pd.DataFrame, algorithm: str) -> str:
    """Features as rows, segments as columns: easier to read than the CSV's wide rows."""
    table = profiles.set_index("segment").T

    def fmt(v):
        return f"{v:.3g}" if isinstance(v, float) else str(v)

    head = "| | " + " | ".join(f"segment {c}" if c not in ("all", "noise") else c for c in table.columns) + " |"
    lines = [f"# Segment profiles ({algorithm})", "", head, "|---" * (len(table.columns) + 1) + "|"]
    for name, row in table.iterrows():
        lines.append(f"| {name} | " + " | ".join(fmt(v) for v in row.tolist()) + " |")
    return "\n".join(lines) + "\n"


def fit_segments(cfg: SegmentConfig, Z: np.ndarray) -> tuple[Segmenter, np.ndarray, list[dict], dict]:
    """The configured clusterer on ``Z``: (segmenter, training labels, the k curve, extra metrics)."""
    m, seed, sample = cfg.model, cfg.data.seed, cfg.eval.silhouette_sample
    if m.algorithm == "hdbscan":
        labels = fit_hdbscan(Z, m.hdbscan.min_cluster_size, m.hdbscan.min_samples, m.hdbscan.cluster_selection_epsilon)
        if (labels >= 0).sum() == 0:
            raise UserError("HDBSCAN found no segment (every row is noise): lower model.hdbscan.min_cluster_size")
        return Segmenter(points=Z, point_labels=labels), labels, [], {"noise_share": float((labels < 0).mean())}
    ks = [m.k] if m.k else list(range(m.k_min, m.k_max + 1))
    curve, models = scan_k(Z, ks, m.algorithm, m.n_init, m.batch_size, sample, seed)
    if not models:
        raise UserError(f"too few rows ({len(Z)}) for k={ks[0]}")
    k = m.k or choose_k(curve, m.select_by)
    model = models[k]
    # stability: the same k from another seed should find the same segments
    other = fit_kmeans(Z, k, m.algorithm, m.n_init, m.batch_size, seed + 1)
    return (Segmenter(centers=model.cluster_centers_.astype(np.float32)), model.labels_, curve,
            {"stability_ari": float(adjusted_rand_score(model.labels_, other.labels_))})


@dataclass
class SegmentRun:
    """A trained segment run loaded back: the schema, the clustering space and the segmenter."""

    path: Path
    schema: FeatureSchema
    space: SegmentSpace
    segmenter: Segmenter

    def assign_frame(self, df: pd.DataFrame, source: str = "input") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(Z, segment, distance)`` for the rows of ``df`` (raw values; cleaned like training)."""
        Z = self.space.transform(encode_frame(clean(df, self.schema, source), self.schema, source))
        return (Z, *self.segmenter.assign(Z))


def load_segment_run(run: str | Path) -> SegmentRun:
    """The fitted space and segmenter of ``run`` (``segment_space.json``, ``segmenter.safetensors``)."""
    path = Path(run)
    if not (path / "segmenter.safetensors").exists():
        raise UserError(f"{path} has no segmenter.safetensors: it is not a finished segment run (train it first)")
    schema = FeatureSchema.from_dict(read_json(path / "feature_schema.json"))
    saved = read_json(path / "segment_space.json")
    space = SegmentSpace(schema, np.asarray(saved["shift"], np.float32), np.asarray(saved["scale"], np.float32))
    return SegmentRun(path, schema, space, Segmenter.from_tensors(load_file(str(path / "segmenter.safetensors"))))
