"""Each model on a tiny generated interaction set: fit, score, save/load, and closed-form checks."""
import numpy as np
import pytest
from sklearn.metrics.pairwise import cosine_similarity

from recsys_app.recommend.config import MODEL_NAMES
from recsys_app.recommend.data import build_dataset
from recsys_app.recommend.evaluate import evaluate_split
from recsys_app.recommend.model import build_model
from recsys_app.recommend.readers import standardize_interactions, standardize_items

from .conftest import make_interactions


@pytest.fixture
def tiny_ds(tiny_cfg):
    frame, items = make_interactions()
    return build_dataset(standardize_interactions(frame, tiny_cfg.data, "tiny.csv"),
                         standardize_items(items, tiny_cfg.data, "items.csv"), tiny_cfg.data)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_each_model_fits_scores_and_round_trips(name, tiny_cfg, tiny_ds, tmp_path):
    model = build_model(tiny_cfg, tiny_ds.n_items, name)
    model.fit(tiny_ds, tmp_path)
    model.save(tmp_path)
    histories = [np.array([0, 3]), np.array([20]), np.zeros(0, np.int64)]
    scores = model.score(histories)
    assert scores.shape == (3, tiny_ds.n_items) and scores.dtype == np.float32 and np.isfinite(scores).all()
    again = build_model(tiny_cfg, tiny_ds.n_items, name).load(tmp_path)
    np.testing.assert_allclose(again.score(histories), scores, rtol=1e-5, atol=1e-6)
    metrics = evaluate_split(model, tiny_ds, "test", tiny_cfg)
    assert 0 <= metrics["ndcg@10"] <= 1 and metrics["users"] == tiny_ds.n_users


def test_co_occurrence_models_beat_popularity_on_clustered_data(tiny_cfg, tiny_ds, tmp_path):
    ndcg = {}
    for name in ("popularity", "itemknn", "ease", "als"):
        model = build_model(tiny_cfg, tiny_ds.n_items, name)
        model.fit(tiny_ds, tmp_path)
        ndcg[name] = evaluate_split(model, tiny_ds, "test", tiny_cfg)["ndcg@10"]
    assert min(ndcg["itemknn"], ndcg["ease"], ndcg["als"]) > ndcg["popularity"]


def test_ease_matches_the_closed_form(tiny_cfg, tiny_ds, tmp_path):
    model = build_model(tiny_cfg, tiny_ds.n_items, "ease")
    model.fit(tiny_ds, tmp_path)
    x = tiny_ds.matrix(("train",)).toarray().astype(np.float64)
    p = np.linalg.inv(x.T @ x + tiny_cfg.model.ease.l2 * np.eye(x.shape[1]))
    b = np.eye(x.shape[1]) - p / np.diag(p)[None, :]
    np.testing.assert_allclose(model.b, b, atol=1e-5)
    assert np.allclose(np.diag(model.b), 0)


def test_itemknn_keeps_the_k_most_cosine_similar_items(tiny_cfg, tiny_ds, tmp_path):
    cfg = tiny_cfg.model_copy(deep=True)
    cfg.model.itemknn.k = 3
    model = build_model(cfg, tiny_ds.n_items, "itemknn")
    model.fit(tiny_ds, tmp_path)
    sim = cosine_similarity(tiny_ds.matrix(("train",)).T.toarray())
    np.fill_diagonal(sim, 0)
    kept = model.sim.toarray()
    for j in range(tiny_ds.n_items):
        col = kept[:, j]
        assert (col > 0).sum() <= 3
        np.testing.assert_allclose(col[col > 0], sim[col > 0, j], rtol=1e-5)
        if (col > 0).sum() == 3:
            assert col[col > 0].min() >= np.sort(sim[:, j])[-3] - 1e-6


def test_als_folds_a_history_in_as_implicit_solves_a_user(tiny_cfg, tiny_ds, tmp_path):
    from implicit.als import AlternatingLeastSquares
    from scipy.sparse import csr_matrix

    model = build_model(tiny_cfg, tiny_ds.n_items, "als")
    model.fit(tiny_ds, tmp_path)
    p = tiny_cfg.model.als
    reference = AlternatingLeastSquares(factors=p.factors, regularization=p.regularization, alpha=p.alpha)
    reference.item_factors = model.y
    history = np.array([0, 3, 5])
    row = csr_matrix((np.ones(3, np.float32), history, [0, 3]), shape=(1, tiny_ds.n_items))
    expected = reference.recalculate_user(0, row)
    np.testing.assert_allclose(model.user_vectors([history])[0], expected, rtol=1e-3, atol=1e-5)
    assert model.score([np.zeros(0, np.int64)]).max() == 0  # an empty history scores nothing


def test_ease_too_big_for_its_memory_is_refused_with_what_to_do(tiny_cfg, tiny_ds, tmp_path):
    from shared.errors import UserError

    cfg = tiny_cfg.model_copy(deep=True)
    cfg.model.ease.max_memory_gb = 1e-6
    with pytest.raises(UserError, match=r"EASE on 30 items .* more than the 0.0 GB model.ease.max_memory_gb.*als"):
        build_model(cfg, tiny_ds.n_items, "ease").fit(tiny_ds, tmp_path)
