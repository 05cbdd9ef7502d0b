"""The recommenders (:class:`~recsys_app.recommend.base.Recommender`), the explicit name → class
map, and loading a trained run's model back.

- ``popularity``: training interaction counts; the same list for everyone (and the fallback).
- ``itemknn``: cosine similarity of item columns of the binary user × item matrix; each item
  keeps its ``k`` most similar items; a history's score for item j sums its similarities to j.
- ``ease``: Steck's EASE: B = -P / diag(P) with P = (XᵀX + λI)⁻¹, zero diagonal; score = x B.
- ``als``: implicit-feedback matrix factorisation (:mod:`recsys_app.recommend.als`).
- ``sasrec``: the self-attentive sequential model (:mod:`recsys_app.recommend.sasrec`).
"""
from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from recsys_app.recommend.base import Recommender, history_matrix
from recsys_app.recommend.config import RecsysConfig
from recsys_app.recommend.dataset import Interactions, load_dataset
from shared.device import resolve_device
from shared.errors import UserError

log = logging.getLogger(__name__)


class Popularity(Recommender):
    name = "popularity"

    def fit(self, ds: Interactions, out_dir: Path) -> dict:
        self.counts = np.asarray(ds.matrix(("train",)).sum(axis=0)).ravel().astype(np.float32)
        return {"items_seen_in_train": int((self.counts > 0).sum())}

    def score(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        return np.tile(self.counts, (len(histories), 1))

    def tensors(self):
        return {"counts": self.counts}

    def set_tensors(self, tensors):
        self.counts = tensors["counts"]


class ItemKNN(Recommender):
    name = "itemknn"

    def fit(self, ds: Interactions, out_dir: Path, block: int = 1024) -> dict:
        k, shrink = self.cfg.model.itemknn.k, self.cfg.model.itemknn.shrink
        x = ds.matrix(("train",)).tocsc()
        norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=0)).ravel()).astype(np.float32)
        keep = min(k, self.n_items - 1)
        rows, cols, vals = [], [], []
        for start in range(0, self.n_items if keep > 0 else 0, block):
            # one dense block of target items, as rows (the similarity is symmetric): every pass
            # below then runs along contiguous memory, which is what makes 50,000 items affordable
            stop = min(start + block, self.n_items)
            sims = (x[:, start:stop].T @ x).toarray()
            sims /= np.outer(norms[start:stop], norms) + (shrink + 1e-12)
            sims[np.arange(stop - start), np.arange(start, stop)] = 0.0  # an item is not its own neighbour
            top = np.argpartition(-sims, keep - 1, axis=1)[:, :keep]
            top_vals = np.take_along_axis(sims, top, axis=1)
            nz = top_vals > 0
            rows.append(top[nz])
            cols.append(np.broadcast_to(np.arange(start, stop)[:, None], top.shape)[nz])
            vals.append(top_vals[nz])
        cat = (lambda parts, dt: np.concatenate(parts).astype(dt) if parts else np.zeros(0, dt))
        self.sim = sp.csr_matrix((cat(vals, np.float32), (cat(rows, np.int64), cat(cols, np.int64))),
                                 shape=(self.n_items, self.n_items))
        return {"neighbour_links": int(self.sim.nnz)}

    def score(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        return np.asarray((history_matrix(histories, self.n_items) @ self.sim).toarray(), dtype=np.float32)

    def tensors(self):
        return {"data": self.sim.data.astype(np.float32), "indices": self.sim.indices.astype(np.int64),
                "indptr": self.sim.indptr.astype(np.int64)}

    def set_tensors(self, tensors):
        self.sim = sp.csr_matrix((tensors["data"], tensors["indices"], tensors["indptr"]),
                                 shape=(self.n_items, self.n_items))


def ease_peak_bytes(n_items: int) -> int:
    """EASE's peak memory: three dense float32 items × items matrices (Gram, factor, inverse)."""
    return 12 * n_items * n_items


def free_memory_bytes(device: torch.device) -> int:
    """What ``device`` can give now: CUDA's free memory, else the host's available RAM (free pages
    plus the page cache the kernel hands back on demand: ``MemAvailable``)."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as f:
            available = next(line for line in f if line.startswith("MemAvailable:"))
        return int(available.split()[1]) * 1024
    except (OSError, StopIteration, ValueError, IndexError):  # not Linux: free pages, else the config's limit
        try:
            return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError, AttributeError):
            return 1 << 62


def check_ease_fits(n_items: int, device: torch.device, max_memory_gb: float | None) -> None:
    """Refuse, with what to do instead, an EASE whose dense solve would not fit."""
    need = ease_peak_bytes(n_items)
    limit = max_memory_gb * 1e9 if max_memory_gb is not None else free_memory_bytes(device)
    if need > limit:
        where = f"model.ease.max_memory_gb={max_memory_gb:g}" if max_memory_gb is not None else f"available on {device}"
        raise UserError(f"EASE on {n_items:,} items solves a dense {n_items:,}² float32 system: ~{need / 1e9:.1f} GB "
                        f"at its peak, more than the {limit / 1e9:.1f} GB {where}. Use model.name=als or itemknn "
                        "(sparse), drop rare items with data.min_item_interactions, or a bigger device")


class EASE(Recommender):
    name = "ease"

    def fit(self, ds: Interactions, out_dir: Path) -> dict:
        x = ds.matrix(("train",))
        device = resolve_device(self.cfg.train.device)
        check_ease_fits(self.n_items, device, self.cfg.model.ease.max_memory_gb)
        # float32 is enough: the ridge term keeps the Gram matrix well conditioned.
        gram = torch.as_tensor((x.T @ x).toarray(), dtype=torch.float32, device=device)
        gram.diagonal().add_(self.cfg.model.ease.l2)
        p = torch.cholesky_inverse(torch.linalg.cholesky(gram))
        del gram
        b = p / (-p.diagonal())[None, :]
        b.diagonal().zero_()
        self.b = np.ascontiguousarray(b.float().cpu().numpy())  # LAPACK may hand back column-major
        return {"device": str(device)}

    def score(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        # Summing the history's rows of B reads |history| rows, not the whole matrix.
        out = np.zeros((len(histories), self.n_items), dtype=np.float32)
        for row, items in enumerate(histories):
            if len(items):
                out[row] = self.b[np.unique(items)].sum(axis=0)
        return out

    def tensors(self):
        return {"b": self.b}

    def set_tensors(self, tensors):
        self.b = tensors["b"]


def build_als(cfg: RecsysConfig, n_items: int) -> Recommender:
    from recsys_app.recommend.als import ALS  # implicit only when asked for

    return ALS(cfg, n_items)


def build_sasrec(cfg: RecsysConfig, n_items: int) -> Recommender:
    from recsys_app.recommend.sasrec import SASRecRecommender  # torch model code only when asked for

    return SASRecRecommender(cfg, n_items)


MODELS = {
    "popularity": Popularity,
    "itemknn": ItemKNN,
    "ease": EASE,
    "als": build_als,
    "sasrec": build_sasrec,
}


def build_model(cfg: RecsysConfig, n_items: int, name: str | None = None) -> Recommender:
    """The recommender named ``name`` (default ``cfg.model.name``), untrained."""
    return MODELS[name or cfg.model.name](cfg, n_items)


def load_trained(cfg: RecsysConfig, run: Path) -> tuple[Interactions, Recommender]:
    """A trained run's data (what it knows about users and items) and its model, ready to score."""
    if not (Path(run) / "vocab.json").exists():
        raise UserError(f"{run} has no vocab.json / interactions.parquet: it is not a finished recommend run "
                        "(train it again)")
    ds = load_dataset(run)
    return ds, build_model(cfg, ds.n_items).load(run).to(cfg.train.device)
