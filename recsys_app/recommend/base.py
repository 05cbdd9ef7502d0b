"""The interface every recommender implements, and what the models share (no model code here,
so :mod:`~recsys_app.recommend.model` and :mod:`~recsys_app.recommend.sasrec` both build on it
without importing each other).

A :class:`Recommender` is fitted on a data set's training interactions and then scores every
catalogue item for any number of user histories (item-index arrays in time order; the
sequential model reads the order, the others a set). Higher score = recommend first. Weights go
to ``model.safetensors`` (no pickle); hyper-parameters come back from the run's config.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import safetensors.numpy
import scipy.sparse as sp

from recsys_app.recommend.config import RecsysConfig
from recsys_app.recommend.dataset import Interactions
from shared.errors import UserError
from shared.runs import atomic_path

WEIGHTS = "model.safetensors"


def history_matrix(histories: Sequence[np.ndarray], n_items: int) -> sp.csr_matrix:
    """Binary rows, one per history."""
    lengths = [len(h) for h in histories]
    indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    indices = np.concatenate([np.asarray(h, dtype=np.int64) for h in histories]) if sum(lengths) else np.zeros(0, int)
    m = sp.csr_matrix((np.ones(len(indices), np.float32), indices, indptr), shape=(len(histories), n_items))
    m.sum_duplicates()
    m.data[:] = 1.0
    return m


class Recommender:
    """What every model implements."""

    name = "base"

    def __init__(self, cfg: RecsysConfig, n_items: int):
        self.cfg, self.n_items = cfg, n_items

    def fit(self, ds: Interactions, out_dir: Path) -> dict:
        """Learn from ``ds``'s train split; return a small JSON-able summary."""
        raise NotImplementedError

    def score(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        """``(len(histories), n_items)`` float32 scores."""
        raise NotImplementedError

    def to(self, device: str) -> Recommender:
        """Where scoring runs; the closed-form models score with NumPy on the CPU."""
        return self

    def tensors(self) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def set_tensors(self, tensors: dict[str, np.ndarray]) -> None:
        raise NotImplementedError

    def save(self, out_dir: Path) -> Path:
        path = Path(out_dir) / WEIGHTS
        with atomic_path(path) as tmp:
            safetensors.numpy.save_file({k: np.ascontiguousarray(v) for k, v in self.tensors().items()}, str(tmp))
        return path

    def load(self, out_dir: Path) -> Recommender:
        path = Path(out_dir) / WEIGHTS
        if not path.exists():
            raise UserError(f"{path} is missing: train this run again")
        self.set_tensors(safetensors.numpy.load_file(str(path)))
        return self
