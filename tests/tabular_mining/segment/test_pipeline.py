"""Segments: the clustering space and profiles on three-row inputs, choosing k, assignment, and
the segment task end to end through the command line (k-means and HDBSCAN: train → evaluate →
predict → serve)."""
import json

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from shared.runs import latest_run
from tabular_mining.common.features import CATEGORICAL, NUMERIC, Feature, FeatureSchema, encode_frame
from tabular_mining.common.table import load_telco
from tabular_mining.segment.model import Segmenter, SegmentSpace, choose_k, load_segment_run, profile

SCHEMA = FeatureSchema([Feature("tenure", NUMERIC, median=2.0), Feature("plan", CATEGORICAL, categories=["a", "b"])],
                       target="churn", classes=["No", "Yes"])
ROWS = pd.DataFrame({"tenure": [1.0, 2.0, None], "plan": ["a", "b", "b"], "churn": ["No", "Yes", "Yes"]})


def test_space_scales_numerics_and_weighs_one_hots():
    X = encode_frame(ROWS, SCHEMA)
    space = SegmentSpace.fit(SCHEMA, X, categorical_weight=0.5)
    Z = space.transform(X)
    assert space.columns == ["tenure", "plan=a", "plan=b"]
    tenure = np.array([1.0, 2.0, 2.0])  # the missing value takes the median
    assert Z[:, 0] == pytest.approx((tenure - tenure.mean()) / tenure.std(), abs=1e-6)
    assert Z[:, 1:].tolist() == [[0.5, 0.0], [0.0, 0.5], [0.0, 0.5]]


def test_choose_k_by_silhouette_or_davies_bouldin():
    rows = [{"k": 2, "silhouette": 0.3, "davies_bouldin": 1.2}, {"k": 3, "silhouette": 0.4, "davies_bouldin": 1.3},
            {"k": 4, "silhouette": 0.4, "davies_bouldin": 0.9}]
    assert choose_k(rows, "silhouette") == 3  # ties go to the smaller k
    assert choose_k(rows, "davies_bouldin") == 4


def test_segmenter_assigns_nearest_centre_or_nearest_training_row():
    km = Segmenter(centers=np.array([[0.0, 0.0], [10.0, 0.0]], np.float32))
    seg, dist = km.assign(np.array([[1.0, 0.0], [9.0, 1.0]], np.float32))
    assert seg.tolist() == [0, 1] and dist == pytest.approx([1.0, np.sqrt(2)], abs=1e-5)
    dens = Segmenter(points=np.array([[0.0], [1.0], [5.0]], np.float32), point_labels=np.array([0, 0, -1]))
    assert dens.assign(np.array([[0.8], [4.0]], np.float32))[0].tolist() == [0, -1]
    again = Segmenter.from_tensors(dens.tensors())
    assert again.assign(np.array([[4.0]], np.float32))[0].tolist() == [-1]


def test_a_rows_distance_does_not_depend_on_the_rows_beside_it():
    """A served row's answer must be the same alone or in a batch of 33 (a BLAS product rounds
    differently with the number of rows; this failed in CI before the distance was taken row-wise)."""
    rng = np.random.default_rng(0)
    km = Segmenter(centers=rng.normal(size=(6, 47)))
    batch = rng.normal(size=(33, 47)) * 3
    seg, dist = km.assign(batch)
    for i in range(len(batch)):
        one_seg, one_dist = km.assign(batch[i:i + 1])
        assert one_seg[0] == seg[i] and one_dist[0] == dist[i]  # bit for bit


def test_profile_sizes_means_top_categories_and_target_rate():
    table = profile(ROWS, np.array([0, 1, 1]), SCHEMA, "churn", "Yes", top_categories=1)
    assert table["segment"].tolist() == ["0", "1", "all"]
    assert table["size"].tolist() == [1, 2, 3]
    assert table["churn_rate"].tolist() == pytest.approx([0.0, 1.0, 2 / 3])
    assert table["tenure"].tolist()[:2] == pytest.approx([1.0, 2.0])  # mean of what is there
    assert table["plan"].tolist() == ["a (100%)", "b (100%)", "b (67%)"]


QUICK = "configs/tabular_mining/segments-quick.yaml"
SMALL = ["data.sample=600", "model.k_max=4", "model.n_init=1", "eval.silhouette_sample=300"]


def test_kmeans_run_artifacts(segment_run):
    run = segment_run
    for name in ["config.yaml", "metrics.json", "README.md", "segments.csv", "profiles.csv", "PROFILES.md",
                 "k_selection.json", "k_selection.png", "segments_pca.png", "segment_space.json",
                 "segmenter.safetensors", "feature_schema.json"]:
        assert (run / name).exists(), name
    metrics = json.loads((run / "metrics.json").read_text())
    k = int(metrics["segments/count"])
    assert 2 <= k <= 4 and metrics["test/silhouette"] > 0.05  # real structure, not noise
    curve = json.loads((run / "k_selection.json").read_text())
    assert [r["k"] for r in curve] == [2, 3, 4]
    assert max(curve, key=lambda r: r["silhouette"])["k"] == k
    seg = pd.read_csv(run / "segments.csv")
    assert len(seg) == 600 and set(seg["segment"]) == set(range(k)) and set(seg["split"]) == {"train", "test"}
    prof = pd.read_csv(run / "profiles.csv")
    assert prof["size"].iloc[:-1].sum() == 600 and "churn_rate" in prof.columns
    assert "## Segments" in (run / "README.md").read_text()


def test_evaluate_predict_and_serve_agree(segment_run, tmp_path, cli_json, served):
    rows = load_telco().head(25)
    path = tmp_path / "new.csv"
    rows.to_csv(path, index=False)
    out = cli_json("evaluate", "--run", segment_run, "--data", path)
    assert out["data/rows"] == 25 and (segment_run / "evaluations" / "new" / "profiles.csv").exists()
    profiles = pd.read_csv(segment_run / "evaluations" / "new" / "profiles.csv")
    assert profiles["size"].iloc[-1] == 25 and "churn_rate" in profiles.columns
    seg_csv = tmp_path / "seg.csv"
    cli_json("predict", "--run", segment_run, "--input", path, "--output", seg_csv)
    offline = pd.read_csv(seg_csv)
    assert len(offline) == 25
    loaded = load_segment_run(segment_run)
    records = json.loads(rows[loaded.schema.names].head(3).to_json(orient="records"))
    with TestClient(served("--run", segment_run)["app"]) as c:
        r = c.post("/predict", json={"instances": records})
        assert r.status_code == 200
        predictions = r.json()["predictions"]
        assert [p["segment"] for p in predictions] == offline["segment"].head(3).tolist()
        assert [p["distance"] for p in predictions] == pytest.approx(offline["distance"].head(3).tolist(), abs=1e-4)
        assert "churn_rate" in predictions[0] and 0 < predictions[0]["segment_share"] <= 1
        bad = dict(records[0], tenure="long")
        assert c.post("/predict", json={"instances": [bad]}).status_code == 422
        assert c.get("/metadata").json()["task"] == "segment"


def test_hdbscan_run(cli):
    assert cli("train", "--config", QUICK, *SMALL, "name=segments-hdbscan", "model.algorithm=hdbscan",
               "model.hdbscan.min_cluster_size=20") == 0
    run = latest_run("tabular_mining", "segments-hdbscan")
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["segments/count"] >= 2 and 0 <= metrics["segments/noise_share"] < 0.9
    assert not (run / "k_selection.png").exists()
