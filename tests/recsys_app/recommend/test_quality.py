"""Quality floors on the embedded MovieLens data (slow: minutes on a CPU).

Reference (same protocol, measured elsewhere): NDCG@10 popularity 0.0198, ItemKNN 0.0338,
EASE 0.0407. The closed-form models must land near those and beat popularity.
"""
import pytest

from recsys_app.recommend.config import RecsysConfig
from recsys_app.recommend.data import load_or_preprocess
from recsys_app.recommend.evaluate import evaluate_split
from recsys_app.recommend.model import build_model
from shared.config import load_config


@pytest.mark.slow
def test_closed_form_models_reach_the_reference_on_movielens(tmp_path):
    cfg = load_config(RecsysConfig, "configs/recsys_app/movielens.yaml", ["eval.plot=false"])
    ds = load_or_preprocess(cfg)
    assert (ds.n_users, ds.n_items, len(ds.frame)) == (671, 9066, 100_004)
    ndcg = {}
    for name in ("popularity", "itemknn", "ease"):
        model = build_model(cfg, ds.n_items, name)
        model.fit(ds, tmp_path)
        ndcg[name] = evaluate_split(model, ds, "test", cfg)["ndcg@10"]
    assert ndcg["popularity"] == pytest.approx(0.0198, abs=0.002)
    assert ndcg["itemknn"] > 0.030 and ndcg["ease"] > 0.037
    assert ndcg["ease"] > ndcg["itemknn"] > ndcg["popularity"]
