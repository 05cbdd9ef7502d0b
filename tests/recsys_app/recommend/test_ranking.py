"""Ranking metrics against hand-computed values, and the one tie rule."""
import numpy as np
import pytest
from sklearn.metrics import ndcg_score

from recsys_app.recommend.ranking import coverage, exclude, ranking_metrics, target_ranks, top_k

SCORES = np.array([[0.9, 0.1, 0.5, 0.5, 0.3]])


def test_rank_counts_higher_scores_and_lower_index_ties():
    assert target_ranks(SCORES, [np.array([3])])[0].tolist() == [2]  # 0.9 and item 2 (tie, lower id) ahead
    assert target_ranks(SCORES, [np.array([2])])[0].tolist() == [1]
    assert target_ranks(SCORES, [np.array([0, 4])])[0].tolist() == [0, 3]


def test_single_target_metrics_by_hand():
    m = ranking_metrics([np.array([2])], ks=[2, 3, 5])
    assert m["recall@2"] == 0 and m["recall@3"] == 1 and m["ndcg@2"] == 0
    assert m["ndcg@3"] == pytest.approx(1 / np.log2(4)) == pytest.approx(0.5)
    assert m["mrr@3"] == pytest.approx(1 / 3) and m["mrr@2"] == 0


def test_two_targets_and_averaging_over_users_by_hand():
    m = ranking_metrics([np.array([0, 3]), np.array([7])], ks=[5])
    user1 = (1 + 1 / np.log2(5)) / (1 + 1 / np.log2(3))  # hits at ranks 0 and 3; ideal ranks 0 and 1
    assert m["ndcg@5"] == pytest.approx((user1 + 0) / 2)
    assert m["recall@5"] == pytest.approx((1.0 + 0) / 2)
    assert m["mrr@5"] == pytest.approx((1.0 + 0) / 2)


def test_excluded_items_sink_and_stop_counting():
    scores = exclude(SCORES.copy(), [np.array([0, 2])])
    assert np.isneginf(scores[0, [0, 2]]).all()
    assert target_ranks(scores, [np.array([3])])[0].tolist() == [0]
    assert top_k(scores, 3).tolist() == [[3, 4, 1]]


@pytest.mark.parametrize("n", [5, 200])  # the full sort and the partition path
def test_top_k_agrees_with_target_ranks(n):
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 4, size=(3, n)).astype(np.float32)  # many ties
    top = top_k(scores, 4)
    assert top[:, 0].tolist() == [int(np.flatnonzero(r == r.max())[0]) for r in scores]
    for row in range(3):
        ranks = target_ranks(scores[row:row + 1], [top[row]])[0]
        assert ranks.tolist() == [0, 1, 2, 3]


def test_ndcg_matches_scikit_learn_without_ties():
    rng = np.random.default_rng(1)
    scores = rng.random((40, 25))
    targets = rng.integers(0, 25, size=40)
    ours = ranking_metrics(target_ranks(scores, [np.array([t]) for t in targets]), ks=[10])["ndcg@10"]
    relevance = np.zeros_like(scores)
    relevance[np.arange(40), targets] = 1
    assert ours == pytest.approx(ndcg_score(relevance, scores, k=10))


def test_coverage():
    assert coverage(np.array([[0, 1], [1, 2]]), 10) == pytest.approx(0.3)
