"""Top-K ranking and its metrics over the full catalogue (never sampled negatives).

One ordering everywhere: higher score first, ties to the lower item index. :func:`top_k` (what
the server returns) and :func:`target_ranks` (what the metrics use) both follow it, so an offline
hit at rank r is the item the server shows at position r. Excluded (already seen) items get
``-inf`` and sink to the bottom.

Metrics per user with targets T and 0-based ranks r_t: Recall@K = |{t: r_t < K}| / |T| (HR@K
when |T| = 1); NDCG@K = sum_{r_t < K} 1/log2(r_t + 2) / IDCG@K, with IDCG@K the same sum for
ranks 0..min(K, |T|)-1; MRR@K = 1 / (min r_t + 1) when min r_t < K, else 0. Averaged over
users. Coverage@K: the share of the catalogue that appears in at least one user's top K.
(scikit-learn's ``ndcg_score`` gives the same NDCG but needs a dense relevance row per user and
leaves tie order to chance; the tests check the two agree.)
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def exclude(scores: np.ndarray, histories: Sequence[np.ndarray]) -> np.ndarray:
    """Set each row's already-seen items to ``-inf`` (in place) and return ``scores``."""
    for row, items in enumerate(histories):
        if len(items):
            scores[row, items] = -np.inf
    return scores


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` best items per row, best first (ties: lower index first)."""
    scores = np.atleast_2d(scores)
    n = scores.shape[1]
    k = min(k, n)
    if 4 * k >= n:
        return np.argsort(-scores, axis=1, kind="stable")[:, :k]
    # The k-th largest score bounds the candidates; a stable sort among them settles ties.
    kth = -np.partition(-scores, k - 1, axis=1)[:, k - 1]
    out = np.empty((scores.shape[0], k), dtype=np.int64)
    for row in range(scores.shape[0]):
        cand = np.flatnonzero(scores[row] >= kth[row])
        out[row] = cand[np.argsort(-scores[row, cand], kind="stable")[:k]]
    return out


def target_ranks(scores: np.ndarray, targets: Sequence[np.ndarray]) -> list[np.ndarray]:
    """0-based rank of each target item in its row's full ordering (see module docstring)."""
    scores = np.atleast_2d(scores)
    rows = np.repeat(np.arange(len(targets)), [len(t) for t in targets])
    items = np.concatenate([np.asarray(t, dtype=np.int64) for t in targets]) if len(rows) else np.zeros(0, int)
    own = scores[rows, items][:, None]
    ahead = (scores[rows] > own).sum(axis=1)
    ties = ((scores[rows] == own) & (np.arange(scores.shape[1]) < items[:, None])).sum(axis=1)
    ranks = ahead + ties
    return np.split(ranks, np.cumsum([len(t) for t in targets])[:-1])


def ranking_metrics(ranks: Sequence[np.ndarray], ks: Sequence[int]) -> dict[str, float]:
    """``recall@K``, ``ndcg@K``, ``mrr@K`` averaged over users (one rank array per user)."""
    out: dict[str, float] = {}
    ranks = [np.asarray(r) for r in ranks if len(r)]
    if not ranks:
        return out
    for k in ks:
        recall, ndcg, mrr = [], [], []
        for r in ranks:
            hit = r[r < k]
            recall.append(len(hit) / len(r))
            ideal = np.sum(1.0 / np.log2(np.arange(min(k, len(r))) + 2))
            ndcg.append(np.sum(1.0 / np.log2(hit + 2)) / ideal)
            mrr.append(1.0 / (r.min() + 1) if r.min() < k else 0.0)
        out[f"recall@{k}"] = float(np.mean(recall))
        out[f"ndcg@{k}"] = float(np.mean(ndcg))
        out[f"mrr@{k}"] = float(np.mean(mrr))
    return out


def coverage(top_items: np.ndarray, n_items: int) -> float:
    """Share of the ``n_items`` catalogue that appears anywhere in ``top_items``."""
    return float(len(np.unique(top_items)) / n_items) if n_items else 0.0
