"""Tiny generated interaction data for the recsys tests."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi import FastAPI

import shared.serving
from recsys_app.recommend.config import RecsysConfig
from shared.config import apply_overrides, validate


def make_interactions(n_users: int = 24, n_items: int = 30, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Users walk through items in two clusters (so co-occurrence models have signal), with
    integer timestamps, ratings 1-5, string user ids; plus item metadata."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        cluster = u % 2
        pool = np.arange(cluster * n_items // 2, (cluster + 1) * n_items // 2)
        items = rng.choice(pool, size=int(rng.integers(4, 10)), replace=False)
        for t, item in enumerate(items):
            rows.append({"uid": f"u{u:02d}", "iid": int(item), "stars": int(rng.integers(1, 6)),
                         "ts": 1_000 + 10 * t + u})
    frame = pd.DataFrame(rows).sample(frac=1.0, random_state=seed).reset_index(drop=True)  # file order ≠ time
    items = pd.DataFrame({"iid": np.arange(n_items), "name": [f"Item {i}" for i in range(n_items)],
                          "tags": ["A|B" if i < n_items // 2 else "C" for i in range(n_items)]})
    return frame, items


FILE_KEYS = {"data.source": "file", "data.user_col": "uid", "data.item_col": "iid", "data.rating_col": "stars",
             "data.timestamp_col": "ts", "data.items_id_col": "iid", "data.title_col": "name",
             "data.genres_col": "tags"}
TINY_SASREC = ["model.sasrec.max_len=8", "model.sasrec.dim=16", "train.epochs=2", "train.batch_size=8",
               "train.progress=false", "train.device=cpu", "eval.plot=false"]


def write_interactions(folder: Path) -> tuple[Path, Path]:
    """``make_interactions()`` written as ``interactions.csv`` and ``items.csv`` in ``folder``."""
    frame, items = make_interactions()
    path, items_path = folder / "interactions.csv", folder / "items.csv"
    frame.to_csv(path, index=False)
    items.to_csv(items_path, index=False)
    return path, items_path


@pytest.fixture
def tiny_files(tmp_path):
    return write_interactions(tmp_path)


@pytest.fixture
def tiny_overrides(tiny_files):
    path, items_path = tiny_files
    return [f"{k}={v}" for k, v in FILE_KEYS.items()] + [f"data.path={path}", f"data.items_path={items_path}",
                                                         "name=tiny"] + TINY_SASREC


@pytest.fixture
def tiny_cfg(tiny_overrides):
    return validate(RecsysConfig, apply_overrides({}, tiny_overrides))


def served_app(monkeypatch, cli, *argv: str) -> dict:
    """``serve`` through the CLI, with uvicorn replaced by a catch of the app it would run."""
    caught = {}

    def fake_serve(app, cfg=None, host=None, port=None):
        app = app if isinstance(app, FastAPI) else app()
        caught.update(app=app, host=host or cfg.host, port=port if port is not None else cfg.port)

    monkeypatch.setattr(shared.serving, "serve", fake_serve)
    assert cli("serve", *argv) == 0
    return caught
