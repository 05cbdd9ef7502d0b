"""The stages of ``task: segment``: customer segments on the classify feature pipeline.

    python -m tabular_mining train    --config configs/tabular_mining/segments.yaml [model.algorithm=hdbscan]
    python -m tabular_mining evaluate --config configs/tabular_mining/segments.yaml [--data FILE]
    python -m tabular_mining predict  --config configs/tabular_mining/segments.yaml --input new.csv --output seg.csv
    python -m tabular_mining serve    --config configs/tabular_mining/segments.yaml

The rows are split (seeded; stratified by the target when there is one); the feature schema and
the clustering space are fitted on the training rows only, and the test rows are assigned to the
fitted segments to check that the structure holds on rows the clusterer never saw. A run holds
``segments.csv`` (segment per row), ``profiles.csv`` + ``PROFILES.md``, ``k_selection.json`` +
``k_selection.png`` (the silhouette / Davies–Bouldin curve), ``segments_pca.png``,
``segment_space.json`` + ``segmenter.safetensors`` (what serving loads) and ``metrics.json``.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from safetensors.numpy import load_file, save_file
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_rand_score
from sklearn.model_selection import train_test_split

from shared.config import to_dict, validate
from shared.errors import UserError
from shared.metrics import with_split
from shared.runs import (
    atomic_path,
    cache_dir,
    create_run,
    load_run_config,
    mark_latest,
    read_json,
    resolve_run,
    update_metrics,
    write_json,
    write_text,
    write_yaml,
)
from tabular_mining.data import binary_target, check_columns, load_table, read_table
from tabular_mining.features import FeatureSchema, encode_frame, infer_schema
from tabular_mining.mining_plots import k_selection_chart, segment_scatter
from tabular_mining.predict import score_file
from tabular_mining.preprocess import clean
from tabular_mining.segments import (
    Segmenter,
    SegmentSpace,
    choose_k,
    cluster_quality,
    fit_hdbscan,
    fit_kmeans,
    profile,
    scan_k,
)
from tabular_mining.segments_config import SegmentConfig

log = logging.getLogger(__name__)
APP = "tabular_mining"


@dataclass
class SegmentData:
    train: pd.DataFrame
    test: pd.DataFrame
    schema: FeatureSchema
    manifest: dict

    @property
    def positive(self) -> str | None:
        return self.schema.classes[1] if len(self.schema.classes) == 2 else None


def preprocess(cfg: SegmentConfig) -> dict:
    """Read, validate, sample, split, infer the schema on the training rows, cache as Parquet."""
    d = cfg.data
    df, source = load_table(d)
    check_columns(df, d, source, need_target=d.target is not None)
    classes = binary_target(df[d.target], d.positive_class, source, d.target)[0] if d.target else []
    if d.sample and d.sample < len(df):
        df = df.sample(n=d.sample, random_state=d.seed)
    strat = df[d.target].astype(str) if d.target else None
    train, test = train_test_split(df, test_size=d.test_size, stratify=strat, random_state=d.seed)
    schema = infer_schema(train, d.target or "", classes, d.id_columns, d.drop_columns, d.categorical, d.numeric, source)
    out = cache_dir(APP, cfg.name, to_dict(d))
    rows = {}
    for split, part in (("train", train), ("test", test)):
        with atomic_path(out / f"{split}.parquet") as tmp:
            clean(part, schema, source).reset_index(drop=True).to_parquet(tmp, index=False)
        rows[split] = len(part)
    write_json(out / "feature_schema.json", schema.to_dict())
    manifest = {"source": source, "rows": rows, "features": len(schema.features), "config": to_dict(d)}
    write_json(out / "manifest.json", manifest)
    return {"cache": str(out), **rows}


def load_data(cfg: SegmentConfig) -> SegmentData:
    out = cache_dir(APP, cfg.name, to_dict(cfg.data))
    if not (out / "manifest.json").exists():
        preprocess(cfg)
    return SegmentData(pd.read_parquet(out / "train.parquet"), pd.read_parquet(out / "test.parquet"),
                       FeatureSchema.from_dict(read_json(out / "feature_schema.json")), read_json(out / "manifest.json"))


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


def train(cfg: SegmentConfig) -> dict:
    data = load_data(cfg)
    schema = data.schema
    X_train, X_test = encode_frame(data.train, schema), encode_frame(data.test, schema)
    space = SegmentSpace.fit(schema, X_train, cfg.model.categorical_weight)
    Z_train, Z_test = space.transform(X_train), space.transform(X_test)
    segmenter, train_labels, curve, extra = fit_segments(cfg, Z_train)
    test_labels, _ = segmenter.assign(Z_test)

    run = create_run(APP, cfg.name)
    write_yaml(run / "config.yaml", to_dict(cfg))
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
    update_metrics(run, metrics)

    rows = pd.concat([data.train, data.test], ignore_index=True)
    labels = np.concatenate([train_labels, test_labels])
    ids = [c for c in schema.id_columns if c in rows.columns]
    assigned = rows[ids].copy() if ids else pd.DataFrame({"row": np.arange(len(rows))})
    assigned["split"] = ["train"] * len(data.train) + ["test"] * len(data.test)
    assigned["segment"] = labels
    write_text(run / "segments.csv", assigned.to_csv(index=False))
    profiles = profile(rows, labels, schema, schema.target, data.positive, cfg.eval.top_categories)
    write_text(run / "profiles.csv", profiles.to_csv(index=False))
    write_text(run / "PROFILES.md", profiles_markdown(profiles, cfg))
    write_json(run / "k_selection.json", curve)
    if cfg.eval.plots:
        _plots(run, cfg, curve, Z_train, train_labels)
    write_text(run / "MODEL_CARD.md", _model_card(cfg, data, metrics))
    mark_latest(run)
    log.info("%d segments (%s) → %s", n_segments, cfg.model.algorithm, run)
    return {"run": str(run), "segments": n_segments, **{k: v for k, v in metrics.items() if "/" in k}}


@dataclass
class SegmentRun:
    path: Path
    cfg: SegmentConfig
    schema: FeatureSchema
    space: SegmentSpace
    segmenter: Segmenter

    def assign_frame(self, df: pd.DataFrame, source: str = "input") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(Z, segment, distance)`` for the rows of ``df`` (raw values; cleaned like training)."""
        Z = self.space.transform(encode_frame(clean(df, self.schema, source), self.schema, source))
        return (Z, *self.segmenter.assign(Z))


def load_segment_run(run: str | Path) -> SegmentRun:
    path = resolve_run(run)
    cfg = validate(SegmentConfig, load_run_config(path), source=f"{path}/config.yaml")
    schema = FeatureSchema.from_dict(read_json(path / "feature_schema.json"))
    saved = read_json(path / "segment_space.json")
    space = SegmentSpace(schema, np.asarray(saved["shift"], np.float32), np.asarray(saved["scale"], np.float32))
    return SegmentRun(path, cfg, schema, space, Segmenter.from_tensors(load_file(str(path / "segmenter.safetensors"))))


def evaluate(run: str | Path, data: str | None = None) -> dict:
    """Silhouette / Davies–Bouldin of the assigned segments on the test split or on ``data``;
    with ``data``, also its profile table (``eval_profiles.csv``)."""
    loaded = load_segment_run(run)
    if data:
        df, split = read_table(data), "data"
        missing = [n for n in loaded.schema.names if n not in df.columns]
        if missing:
            raise UserError(f"{data}: feature column {missing[0]!r} is missing")
    else:
        df, split = load_data(loaded.cfg).test, "test"
    Z, labels, _ = loaded.assign_frame(df, data or "test")
    out = with_split(split, cluster_quality(Z, labels, loaded.cfg.eval.silhouette_sample, loaded.cfg.data.seed))
    update_metrics(loaded.path, out)
    if data:
        positive = loaded.schema.classes[1] if len(loaded.schema.classes) == 2 else None
        table = profile(df, labels, loaded.schema, loaded.schema.target, positive, loaded.cfg.eval.top_categories)
        write_text(loaded.path / "eval_profiles.csv", table.to_csv(index=False))
    return {"run": str(loaded.path), "rows": len(df), **out}


def predict(run: str | Path, input_path: str, output_path: str) -> dict:
    """Segment and distance for every row of a CSV/Parquet file, in bounded-memory chunks."""
    loaded = load_segment_run(run)

    def score(chunk: pd.DataFrame) -> pd.DataFrame:
        _, seg, dist = loaded.assign_frame(chunk, str(input_path))
        out = chunk[[c for c in loaded.schema.id_columns if c in chunk.columns]].copy()
        out["segment"], out["distance"] = seg, dist
        return out

    return score_file(score, input_path, output_path)


def profiles_markdown(profiles: pd.DataFrame, cfg: SegmentConfig) -> str:
    """Features as rows, segments as columns: easier to read than the CSV's wide rows."""
    table = profiles.set_index("segment").T
    def fmt(v):
        return f"{v:.3g}" if isinstance(v, float) else str(v)
    head = "| | " + " | ".join(f"segment {c}" if c not in ("all", "noise") else c for c in table.columns) + " |"
    lines = [f"# Segment profiles ({cfg.model.algorithm})", "", head, "|---" * (len(table.columns) + 1) + "|"]
    for name, row in table.iterrows():
        lines.append(f"| {name} | " + " | ".join(fmt(v) for v in row.tolist()) + " |")
    return "\n".join(lines) + "\n"


def _plots(run: Path, cfg: SegmentConfig, curve: list[dict], Z: np.ndarray, labels: np.ndarray) -> None:
    if len(curve) > 1:
        k_selection_chart(curve, len(set(labels.tolist()) - {-1}), run / "k_selection.png")
    pca = PCA(n_components=2, random_state=cfg.data.seed).fit(Z)
    var = pca.explained_variance_ratio_
    segment_scatter(pca.transform(Z), labels, run / "segments_pca.png",
                    title=f"Segments ({cfg.model.algorithm}) on the first two principal components",
                    axis_labels=(f"PC 1 ({var[0]:.0%} of variance)", f"PC 2 ({var[1]:.0%})"), seed=cfg.data.seed)


def _model_card(cfg: SegmentConfig, data: SegmentData, metrics: dict) -> str:
    m = cfg.model
    k = str(m.k) if m.k else f"chosen by {m.select_by} over {m.k_min}..{m.k_max}"
    how = (f"HDBSCAN (min_cluster_size={m.hdbscan.min_cluster_size})" if m.algorithm == "hdbscan"
           else f"{m.algorithm} with k={k}")
    return (f"# Segments: {cfg.name}\n\nData: {data.manifest['source']} ({data.manifest['rows']['train']} rows "
            f"clustered, {data.manifest['rows']['test']} held out and assigned).\n\nModel: {how}; "
            f"{metrics['segments/count']} segments. Silhouette train {metrics.get('train/silhouette', float('nan')):.3f}, "
            f"test {metrics.get('test/silhouette', float('nan')):.3f}.\n\nSegments describe similarity in the "
            "features chosen; they are not causes. See PROFILES.md before naming them.\n")
