"""SASRec (Kang & McAuley, 2018): a causal transformer over a user's recent items that scores
the next item against every item embedding (the input embeddings, tied). Trained with
:func:`shared.training.fit`; validation is full-catalogue NDCG@10 with seen items excluded, the
same ranking as :mod:`recsys_app.recommend.ranking`, so ``train.monitor: ndcg@10`` early-stops on it.

Tokens: 0 pads, catalogue item i is token i + 1. Inputs are left-padded to ``max_len``; a real
position attends to itself and earlier real positions only, so padding never changes a score.
Loss per position: cross-entropy over the full catalogue, or a sampled softmax against
``num_negatives`` uniform negatives shared by the batch (hits on the positive are masked).
"""
from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from recsys_app.recommend.base import WEIGHTS, Recommender
from recsys_app.recommend.config import RecsysConfig, SASRecConfig
from recsys_app.recommend.dataset import Interactions
from recsys_app.recommend.ranking import ranking_metrics
from shared.checkpoint import load_weights, unwrap_model
from shared.device import resolve_device
from shared.distributed import gather_cat
from shared.errors import UserError
from shared.inference import Runner, TorchRunner, build_runner
from shared.training import fit

log = logging.getLogger(__name__)


class SASRec(nn.Module):
    def __init__(self, n_items: int, cfg: SASRecConfig):
        super().__init__()
        self.n_items, self.max_len, self.heads = n_items, cfg.max_len, cfg.heads
        self.item_emb = nn.Embedding(n_items + 1, cfg.dim, padding_idx=0)
        self.pos_emb = nn.Embedding(cfg.max_len, cfg.dim)
        self.drop = nn.Dropout(cfg.dropout)
        block = nn.TransformerEncoderLayer(cfg.dim, cfg.heads, dim_feedforward=cfg.dim * 4, dropout=cfg.dropout,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(block, cfg.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(cfg.dim)
        nn.init.normal_(self.item_emb.weight, std=cfg.dim ** -0.5)
        with torch.no_grad():
            self.item_emb.weight[0].zero_()

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        """``(B, L)`` tokens → ``(B, L, dim)`` hidden states (L ≤ max_len, left-padded)."""
        length = seq.shape[1]
        pos = torch.arange(self.max_len - length, self.max_len, device=seq.device)
        x = self.item_emb(seq) * math.sqrt(self.item_emb.embedding_dim) + self.pos_emb(pos)[None]
        x = self.drop(x)
        idx = torch.arange(length, device=seq.device)
        # True = may not attend: the future, and padding (except a padded query's own slot, so
        # that no softmax row is all masked).
        blocked = (idx[None, :] > idx[:, None])[None] | ((seq == 0)[:, None, :] & (idx[None, :] != idx[:, None])[None])
        mask = blocked.repeat_interleave(self.heads, dim=0)
        return self.norm(self.encoder(x, mask=mask))

    def item_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Scores of every catalogue item (token 1..n) in float32: ``(..., n_items)``."""
        with torch.autocast(hidden.device.type, enabled=False):
            return hidden.float() @ self.item_emb.weight[1:].float().T


def left_pad(seqs: Sequence[np.ndarray], length: int) -> torch.Tensor:
    """Catalogue-index sequences → ``(B, length)`` tokens, keeping each one's last ``length`` items."""
    out = torch.zeros(len(seqs), length, dtype=torch.long)
    for row, s in enumerate(seqs):
        s = np.asarray(s[-length:], dtype=np.int64) + 1
        if len(s):
            out[row, length - len(s):] = torch.from_numpy(s)
    return out


def training_windows(sequences: Sequence[np.ndarray], max_len: int) -> list[np.ndarray]:
    """Each user's sequence cut, from its end, into windows of at most ``max_len + 1`` items (input
    = window[:-1], target = window[1:]); windows overlap by one item so every transition counts."""
    windows = []
    for s in sequences:
        for end in range(len(s), 1, -max_len):
            windows.append(s[max(0, end - max_len - 1):end])
    return windows


class SASRecTask:
    """The loss and validation metrics :func:`shared.training.fit` calls."""

    def __init__(self, n_items: int, cfg: SASRecConfig, ks: Sequence[int] = (10,)):
        self.n_items, self.cfg, self.ks = n_items, cfg, tuple(ks)

    def loss(self, model, batch) -> torch.Tensor:
        hidden = model(batch["input"])
        target = batch["target"]
        real = target > 0
        h, t = hidden[real], target[real]
        if self.cfg.loss == "full_softmax":
            return F.cross_entropy(unwrap_model(model).item_logits(h), t - 1)
        emb = unwrap_model(model).item_emb.weight
        neg = torch.randint(1, self.n_items + 1, (self.cfg.num_negatives,), device=t.device)
        with torch.autocast(h.device.type, enabled=False):
            pos_logit = (h.float() * emb[t].float()).sum(-1, keepdim=True)
            neg_logit = h.float() @ emb[neg].float().T
        neg_logit = neg_logit.masked_fill(neg[None, :] == t[:, None], float("-inf"))
        logits = torch.cat([pos_logit, neg_logit], dim=1)
        return F.cross_entropy(logits, torch.zeros(len(t), dtype=torch.long, device=t.device))

    def evaluate(self, model, loader) -> dict[str, float]:
        ranks = []
        for batch in loader:
            scores = unwrap_model(model).item_logits(model(batch["input"])[:, -1])
            scores = torch.cat([torch.full_like(scores[:, :1], float("-inf")), scores], dim=1)  # token 0
            scores.scatter_(1, batch["seen"], float("-inf"))
            own = scores.gather(1, batch["target"][:, None])
            idx = torch.arange(scores.shape[1], device=scores.device)
            ranks.append((scores > own).sum(1) + ((scores == own) & (idx < batch["target"][:, None])).sum(1))
        ranks = gather_cat(torch.cat(ranks)).cpu().numpy()
        metrics = ranking_metrics([np.array([r]) for r in ranks], self.ks)
        return {k: v for k, v in metrics.items() if not k.startswith("mrr")}


def collate_train(windows: list[np.ndarray], max_len: int) -> dict:
    return {"input": left_pad([w[:-1] for w in windows], max_len), "target": left_pad([w[1:] for w in windows], max_len)}


def collate_eval(cases: list[tuple[np.ndarray, int]], max_len: int) -> dict:
    histories = [h for h, _ in cases]
    longest = max(1, max(len(h) for h in histories))
    seen = torch.zeros(len(cases), longest, dtype=torch.long)  # token 0 is -inf anyway
    for row, h in enumerate(histories):
        seen[row, :len(h)] = torch.as_tensor(np.asarray(h, dtype=np.int64) + 1)
    return {"input": left_pad(histories, max_len), "seen": seen,
            "target": torch.as_tensor([t + 1 for _, t in cases], dtype=torch.long)}


class Collate:
    """One ``collate_fn`` for both data sets fit() loads: training windows (arrays) and
    validation cases ((history, target) pairs). A class, so DataLoader workers can pickle it."""

    def __init__(self, max_len: int):
        self.max_len = max_len

    def __call__(self, batch: list) -> dict:
        if isinstance(batch[0], tuple):
            return collate_eval(batch, self.max_len)
        return collate_train(batch, self.max_len)


class NextItemScorer(nn.Module):
    """What is scored, served and exported: left-padded item tokens ``(B, max_len)`` → a score for
    every catalogue item ``(B, n_items)``, read at the last position."""

    def __init__(self, net: SASRec):
        super().__init__()
        self.net = net

    def forward(self, items: torch.Tensor) -> torch.Tensor:
        return self.net.item_logits(self.net(items)[:, -1])


class SASRecRecommender(Recommender):
    """SASRec behind the :class:`Recommender` interface; it scores through a
    :class:`shared.inference.Runner` (torch by default, ONNX with :meth:`use_backend`)."""

    name = "sasrec"

    def __init__(self, cfg: RecsysConfig, n_items: int):
        super().__init__(cfg, n_items)
        # Seeded initial weights (torch's own seed differs per process), without touching the
        # global RNG: the same recipe and seed train the same model, and a resumed run matches.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.train.seed)
            self.net = SASRec(n_items, cfg.model.sasrec)
        self.device = torch.device("cpu")
        self.runner: Runner | None = None

    def fit(self, ds: Interactions, out_dir: Path) -> dict:
        scfg = self.cfg.model.sasrec
        windows = training_windows(ds.sequences(("train",)), scfg.max_len)
        if not windows:
            raise UserError("SASRec needs users with at least two training interactions")
        _, histories, targets = ds.eval_cases("valid")
        valid = [(h, int(t[0])) for h, t in zip(histories, targets)] or None
        result = fit(self.net, SASRecTask(self.n_items, scfg, self.cfg.eval.ks), windows, valid, self.cfg.train,
                     out_dir, collate_fn=Collate(scfg.max_len), extra_state={"config": self.cfg.model_dump(mode="json")})
        self.net.cpu().eval()
        self.runner = None
        return {"steps": result.steps, "epochs": result.epochs_completed, "stopped_early": result.stopped_early,
                "best_step": result.best_step, "train_seconds": result.train_seconds,
                "samples_per_second": result.samples_per_second,
                **{f"best_valid/{k}": v for k, v in result.best_metrics.items()}}

    def tokens(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        """The model input for these histories: ``(len(histories), max_len)`` left-padded tokens."""
        return left_pad(histories, self.cfg.model.sasrec.max_len).numpy()

    def score(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        if self.runner is None:
            self.runner = TorchRunner(NextItemScorer(self.net), device=self.device)
        return self.runner({"items": self.tokens(histories)})[0]

    def use_backend(self, run: Path, backend: str, export) -> SASRecRecommender:
        """Score with ``backend`` (``torch``, ``onnx``): the run's ``model.onnx`` is written by
        ``export()`` on first use (the shared missing-file policy)."""
        self.runner = build_runner(run, backend, lambda: NextItemScorer(self.net), export, device=self.device,
                                   threads=self.cfg.serve.torch_threads)
        return self

    def to(self, device: str | torch.device) -> SASRecRecommender:
        """Score on ``device`` (``auto`` picks the accelerator); training leaves it on the CPU."""
        self.device = resolve_device(device) if isinstance(device, str) else device
        self.net.to(self.device)
        self.runner = None
        return self

    def save(self, out_dir: Path) -> Path:
        return Path(out_dir) / WEIGHTS  # fit() already wrote the best weights there

    def load(self, out_dir: Path) -> SASRecRecommender:
        path = Path(out_dir) / WEIGHTS
        if not path.exists():
            raise UserError(f"{path} is missing: train this run again")
        load_weights(self.net, path)
        self.net.eval()
        return self
