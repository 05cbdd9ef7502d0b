"""ALS for implicit feedback (Hu, Koren & Volinsky, 2008), fitted with the ``implicit`` library.

Each training interaction has confidence ``alpha`` (every other user-item pair confidence 1,
preference 0); ``implicit`` alternates least-squares solves for user and item factors
(``factors`` wide, ridge ``regularization``), on the GPU when ``train.device`` picks CUDA and
``implicit`` was built with it, else on the CPU.

Scoring folds a history in: the user vector is the same least-squares solve ALS makes for a
training user, against the trained item factors Y::

    x = (YᵀY + λI + (alpha − 1) Σ_{i∈S} y_i y_iᵀ)⁻¹ · alpha Σ_{i∈S} y_i,   scores = x Yᵀ

so a known user's current history (training + validation for the test split), a session of item
ids and a training user all score the same way. Only the item factors are stored.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from recsys_app.recommend.base import Recommender
from recsys_app.recommend.dataset import Interactions
from shared.device import resolve_device

log = logging.getLogger(__name__)


class ALS(Recommender):
    name = "als"

    def fit(self, ds: Interactions, out_dir: Path) -> dict:
        import implicit.gpu
        from implicit.als import AlternatingLeastSquares
        from threadpoolctl import threadpool_limits

        p = self.cfg.model.als
        gpu = implicit.gpu.HAS_CUDA and resolve_device(self.cfg.train.device).type == "cuda"
        model = AlternatingLeastSquares(factors=p.factors, regularization=p.regularization, alpha=p.alpha,
                                        iterations=p.iterations, random_state=self.cfg.train.seed, use_gpu=gpu)
        # implicit runs its own threads; a multi-threaded BLAS underneath only makes them wait
        with threadpool_limits(1, "blas"):
            model.fit(ds.matrix(("train",)).tocsr(), show_progress=False)
        if gpu:
            model = model.to_cpu()
        self.set_tensors({"item_factors": np.asarray(model.item_factors, dtype=np.float32)})
        return {"device": "cuda" if gpu else "cpu"}

    def set_tensors(self, tensors: dict[str, np.ndarray]) -> None:
        p = self.cfg.model.als
        self.y = np.ascontiguousarray(tensors["item_factors"], dtype=np.float32)
        y64 = self.y.astype(np.float64)
        self.gram = y64.T @ y64 + p.regularization * np.eye(self.y.shape[1])

    def tensors(self) -> dict[str, np.ndarray]:
        return {"item_factors": self.y}

    def user_vectors(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        """The least-squares user vector of each history (zeros for an empty one)."""
        alpha = self.cfg.model.als.alpha
        out = np.zeros((len(histories), self.y.shape[1]), dtype=np.float64)
        for row, items in enumerate(histories):
            if len(items):
                ys = self.y[np.unique(items)].astype(np.float64)
                out[row] = np.linalg.solve(self.gram + (alpha - 1.0) * ys.T @ ys, alpha * ys.sum(axis=0))
        return out

    def score(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        return (self.user_vectors(histories).astype(np.float32) @ self.y.T).astype(np.float32)
