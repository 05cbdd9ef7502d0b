"""FT-Transformer (Gorishniy et al., 2021, "Revisiting Deep Learning Models for Tabular Data")
behind the classify models' interface, trained with the shared torch loop.

Every feature becomes a token: a numeric value ``x`` gives ``x · w_j + b_j`` (its own learned
vector per feature), a category its row of an embedding table plus a per-feature bias. A learned
[CLS] token goes first, pre-norm transformer blocks mix the tokens, and the head reads the [CLS]
output: one logit for two classes, K logits (softmax, cross-entropy) for K > 2. Numerics are median-imputed and z-scored with training statistics; a missing or unseen
category has its own embedding row (index 0 of each feature's slice).

    python -m tabular_mining train --config configs/tabular_mining/churn.yaml model.name=ft_transformer

On disk, in the run's ``models/ft_transformer/``: ``ft_transformer.safetensors`` (weights),
``ft_transformer.json`` (architecture and the numeric statistics), and the shared loop's
``history.jsonl``, ``curves.png`` and ``checkpoints/`` (a killed ``train`` resumes from them); no
pickle. Scoring goes through :class:`shared.inference.TorchRunner`. This is the only module of
the app that imports torch, and only :func:`tabular_mining.classify.model.model_class` imports it.
"""
from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from scipy.special import expit, softmax
from sklearn.metrics import log_loss, roc_auc_score
from torch import nn
from torch.utils.data import Dataset

from shared.checkpoint import load_weights, save_weights
from shared.inference import TorchRunner, batched
from shared.runs import read_json, write_json
from shared.training import fit
from tabular_mining.classify.config import FTTransformerParams
from tabular_mining.common.features import CATEGORICAL, FeatureSchema

log = logging.getLogger(__name__)


class FTTransformer(nn.Module):
    def __init__(self, n_numeric: int, cardinalities: list[int], d_token: int = 64, n_blocks: int = 3,
                 n_heads: int = 8, ffn_factor: float = 4 / 3, attention_dropout: float = 0.2,
                 ffn_dropout: float = 0.1, residual_dropout: float = 0.0, n_outputs: int = 1):
        super().__init__()
        self.num_weight = nn.Parameter(torch.empty(n_numeric, d_token))
        self.num_bias = nn.Parameter(torch.empty(n_numeric, d_token))
        # one table for all categoricals; +1 row per feature for missing/unseen
        sizes = [c + 1 for c in cardinalities]
        self.register_buffer("cat_offsets", torch.tensor([0] + np.cumsum(sizes)[:-1].tolist(), dtype=torch.long),
                             persistent=False)
        self.cat_embed = nn.Embedding(max(sum(sizes), 1), d_token)
        self.cat_bias = nn.Parameter(torch.empty(len(cardinalities), d_token))
        self.cls = nn.Parameter(torch.empty(1, 1, d_token))
        for p in (self.num_weight, self.num_bias, self.cat_bias, self.cls):
            nn.init.uniform_(p, -d_token ** -0.5, d_token ** -0.5)  # the paper's token initialisation
        self.blocks = nn.ModuleList(_Block(d_token, n_heads, int(d_token * ffn_factor), attention_dropout,
                                           ffn_dropout, residual_dropout) for _ in range(n_blocks))
        self.head = nn.Sequential(nn.LayerNorm(d_token), nn.ReLU(), nn.Linear(d_token, n_outputs))

    def forward(self, x_num: torch.Tensor, x_cat: torch.Tensor) -> torch.Tensor:
        """``x_num``: (batch, n_numeric) floats; ``x_cat``: (batch, n_categorical) codes (0 = missing).
        Returns the positive-class logit, (batch,), or with K outputs the class logits, (batch, K)."""
        tokens = [x_num.unsqueeze(-1) * self.num_weight + self.num_bias]
        if x_cat.shape[1]:
            tokens.append(self.cat_embed(x_cat + self.cat_offsets) + self.cat_bias)
        x = torch.cat([self.cls.expand(len(x_num), -1, -1), *tokens], dim=1)
        for block in self.blocks:
            x = block(x)
        return self.head(x[:, 0]).squeeze(-1)


class _Block(nn.Module):
    """Pre-norm attention + feed-forward, each with its own dropout (as in the paper)."""

    def __init__(self, d: int, heads: int, d_ffn: int, attention_dropout: float, ffn_dropout: float, residual: float):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, heads, dropout=attention_dropout, batch_first=True)
        self.ffn = nn.Sequential(nn.Linear(d, d_ffn), nn.GELU(), nn.Dropout(ffn_dropout), nn.Linear(d_ffn, d))
        self.drop = nn.Dropout(residual)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm1(x)
        x = x + self.drop(self.attn(h, h, h, need_weights=False)[0])
        return x + self.drop(self.ffn(self.norm2(x)))


class _Rows(Dataset):
    def __init__(self, x_num: np.ndarray, x_cat: np.ndarray, y: np.ndarray | None = None):
        self.x_num, self.x_cat = torch.from_numpy(x_num), torch.from_numpy(x_cat)
        self.y = torch.from_numpy(y.astype(np.float32)) if y is not None else torch.zeros(len(x_num))

    def __len__(self) -> int:
        return len(self.x_num)

    def __getitem__(self, i: int) -> dict:
        return {"x_num": self.x_num[i], "x_cat": self.x_cat[i], "y": self.y[i]}


class _BinaryTask:
    def loss(self, model, batch):
        return nn.functional.binary_cross_entropy_with_logits(model(batch["x_num"], batch["x_cat"]).float(), batch["y"])

    def evaluate(self, model, loader):
        logits, ys = [], []
        for batch in loader:
            logits.append(model(batch["x_num"], batch["x_cat"]).float().cpu())
            ys.append(batch["y"].cpu())
        p = torch.sigmoid(torch.cat(logits)).numpy()
        y = torch.cat(ys).numpy()
        out = {"log_loss": float(log_loss(y, np.clip(p, 1e-7, 1 - 1e-7), labels=[0, 1]))}
        if len(np.unique(y)) == 2:
            out["roc_auc"] = float(roc_auc_score(y, p))
        return out


class _MulticlassTask:
    """K > 2 classes: cross-entropy on the K logits; log-loss and the macro one-vs-rest ROC-AUC."""

    def loss(self, model, batch):
        return nn.functional.cross_entropy(model(batch["x_num"], batch["x_cat"]).float(), batch["y"].long())

    def evaluate(self, model, loader):
        logits, ys = [], []
        for batch in loader:
            logits.append(model(batch["x_num"], batch["x_cat"]).float().cpu())
            ys.append(batch["y"].cpu())
        p = torch.softmax(torch.cat(logits), dim=1).numpy()
        y = torch.cat(ys).numpy().astype(np.int64)
        labels = list(range(p.shape[1]))
        out = {"log_loss": float(log_loss(y, np.clip(p, 1e-7, 1), labels=labels))}
        if len(np.unique(y)) == p.shape[1]:
            out["roc_auc"] = float(roc_auc_score(y, p, multi_class="ovr", average="macro", labels=labels))
        return out


def _n_outputs(schema: FeatureSchema) -> int:
    return 1 if len(schema.classes) == 2 else len(schema.classes)


class FTTransformerModel:
    """The classify-model interface (``predict_proba``, ``contributions``, ``save``/``load``)."""

    name = "ft_transformer"

    def __init__(self, module: FTTransformer, schema: FeatureSchema, stats: dict, info: dict | None = None):
        self.module, self.schema, self.stats, self.info = module.eval(), schema, stats, info or {}
        self._num = [j for j, f in enumerate(schema.features) if f.kind != CATEGORICAL]
        self._cat = [j for j, f in enumerate(schema.features) if f.kind == CATEGORICAL]
        self._runner: TorchRunner | None = None

    def _inputs(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        num = X[:, self._num].astype(np.float32)
        median, mean, std = (np.asarray(self.stats[k], np.float32) for k in ("median", "mean", "std"))
        num = (np.where(np.isnan(num), median, num) - mean) / std
        cat = X[:, self._cat]
        return num.astype(np.float32), np.where(np.isnan(cat), 0, cat + 1).astype(np.int64)

    @classmethod
    def fit(cls, schema: FeatureSchema, X, y, X_valid, y_valid, params: FTTransformerParams, seed: int = 0,
            checkpoints: Path | None = None):
        """Train with the shared loop. ``checkpoints``: the folder the loop writes its checkpoints
        and history to, resuming from them when they exist; ``None``: a temporary one."""
        num = [j for j, f in enumerate(schema.features) if f.kind != CATEGORICAL]
        median = np.array([schema.features[j].median or 0.0 for j in num], np.float32)
        filled = np.where(np.isnan(X[:, num]), median, X[:, num])
        std = filled.std(axis=0)
        stats = {"median": median.tolist(), "mean": filled.mean(axis=0).tolist(),
                 "std": np.where(std > 0, std, 1.0).tolist()}
        arch = params.model_dump(exclude={"train"})
        cards = [len(f.categories) for f in schema.features if f.kind == CATEGORICAL]
        torch.manual_seed(seed)
        module = FTTransformer(len(num), cards, **arch, n_outputs=_n_outputs(schema))
        model = cls(module, schema, stats, {"arch": arch, "cardinalities": cards})
        task = _BinaryTask() if _n_outputs(schema) == 1 else _MulticlassTask()
        loop = params.train.model_copy(update={"seed": seed})
        work = Path(checkpoints) if checkpoints is not None else Path(tempfile.mkdtemp(prefix="ft_transformer-"))
        try:
            result = fit(model.module, task, _Rows(*model._inputs(X), y), _Rows(*model._inputs(X_valid), y_valid),
                         loop, work, resume=checkpoints is not None)
        finally:
            if checkpoints is None:
                shutil.rmtree(work, ignore_errors=True)
        model.info.update({"steps": result.steps, "epochs": result.epochs_completed, "best_step": result.best_step,
                           "best_valid": result.best_metrics, "stopped_early": result.stopped_early})
        model.module.to("cpu").eval()
        return model

    def predict_proba(self, X: np.ndarray, batch_size: int = 4096) -> np.ndarray:
        k = _n_outputs(self.schema)
        if not len(X):
            return np.empty(0 if k == 1 else (0, k), np.float32)
        num, cat = self._inputs(X)
        self._runner = self._runner or TorchRunner(self.module)
        (logits,) = batched(self._runner, {"x_num": num, "x_cat": cat}, batch_size)
        return expit(logits) if k == 1 else softmax(logits, axis=1)

    def contributions(self, X: np.ndarray) -> np.ndarray:
        """Gradient × (input − the training-median input) in log-odds per feature, with the
        reference row's logit as the bias column: an approximation (attention mixes features),
        unlike the exact TreeSHAP of the boosted trees. For K > 2 classes: of each row's predicted
        class's logit."""
        num, cat = self._inputs(X)
        ref_num = np.zeros((1, num.shape[1]), np.float32)  # z-scored median ≈ 0
        ref_cat = np.zeros((1, cat.shape[1]), np.int64)
        t_num = torch.from_numpy(num).requires_grad_(True)
        logit = self.module(t_num, torch.from_numpy(cat))
        rows = torch.arange(len(X))
        predicted = logit.argmax(dim=1) if logit.ndim == 2 else None

        def pick(z: torch.Tensor) -> torch.Tensor:  # the logit explained: the only one, or the predicted class's
            return z if predicted is None else z[rows, predicted]

        (grad,) = torch.autograd.grad(pick(logit).sum(), t_num)
        with torch.no_grad():
            base = self.module(torch.from_numpy(ref_num), torch.from_numpy(ref_cat))
            out = np.zeros((len(X), len(self.schema.features) + 1), np.float32)
            out[:, self._num] = (grad * t_num).numpy()
            for k, j in enumerate(self._cat):  # a category's effect: switch it to "missing" and compare
                alt = cat.copy()
                alt[:, k] = 0
                out[:, j] = (pick(logit) - pick(self.module(torch.from_numpy(num), torch.from_numpy(alt)))).numpy()
        out[:, -1] = base.item() if predicted is None else base[0, predicted].numpy()
        return out

    def save(self, directory: Path) -> None:
        save_weights(self.module, directory / "ft_transformer.safetensors")
        write_json(directory / "ft_transformer.json", {"stats": self.stats, **self.info})

    @classmethod
    def load(cls, directory: Path, schema: FeatureSchema) -> FTTransformerModel:
        meta = read_json(directory / "ft_transformer.json")
        n_num = sum(f.kind != CATEGORICAL for f in schema.features)
        module = FTTransformer(n_num, meta["cardinalities"], **meta["arch"], n_outputs=_n_outputs(schema))
        load_weights(module, directory / "ft_transformer.safetensors")
        return cls(module, schema, meta.pop("stats"), meta)

