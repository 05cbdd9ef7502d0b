"""FT-Transformer: token shapes, a tiny fit that learns a planted signal, save/load round trip,
contributions, and the classify pipeline with ``model.name=ft_transformer`` (tiny, CPU)."""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import roc_auc_score

from shared.config import load_config
from tabular_mining.config import ClassifyConfig, FTTransformerParams
from tabular_mining.features import encode_frame, encode_target, infer_schema
from tabular_mining.ft_transformer import FTTransformer, FTTransformerModel
from tabular_mining.models import load_model, save_model
from tabular_mining.train import train

TINY = {"d_token": 16, "n_blocks": 1, "n_heads": 2,
        "train": {"epochs": 5, "batch_size": 64, "lr": 3e-3, "monitor": "log_loss", "monitor_mode": "min",
                  "progress": False, "device": "cpu"}}


def test_forward_shapes_missing_categories_and_no_categoricals():
    model = FTTransformer(n_numeric=3, cardinalities=[2, 4], d_token=16, n_blocks=2, n_heads=4)
    out = model(torch.randn(5, 3), torch.tensor([[0, 0], [1, 4], [2, 1], [0, 3], [1, 2]]))
    assert out.shape == (5,) and torch.isfinite(out).all()
    only_numeric = FTTransformer(n_numeric=2, cardinalities=[], d_token=8, n_blocks=1, n_heads=2)
    assert only_numeric(torch.randn(4, 2), torch.empty(4, 0, dtype=torch.long)).shape == (4,)


def planted(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    plan = rng.choice(["basic", "plus", "max"], size=n)
    logit = 2.5 * x + np.where(plan == "max", 2.0, 0.0) - 0.7
    y = rng.random(n) < 1 / (1 + np.exp(-logit))
    df = pd.DataFrame({"x": x, "noise": rng.normal(size=n), "plan": plan, "y": np.where(y, "yes", "no")})
    df.loc[::17, "x"] = np.nan  # missing numerics take the median
    return df


@pytest.fixture(scope="module")
def fitted():
    train_df, valid_df, test_df = planted(500, 0), planted(200, 1), planted(300, 2)
    schema = infer_schema(train_df, "y", ["no", "yes"])
    enc = lambda d: (encode_frame(d, schema), encode_target(d["y"], schema))
    params = FTTransformerParams.model_validate(TINY)
    model = FTTransformerModel.fit(schema, *enc(train_df), *enc(valid_df), params, seed=0)
    return model, schema, enc(test_df)


def test_learns_the_planted_signal(fitted):
    model, _, (X, y) = fitted
    p = model.predict_proba(X)
    assert p.shape == (len(y),) and ((p > 0) & (p < 1)).all()
    assert roc_auc_score(y, p) > 0.75
    assert model.info["steps"] > 0 and "log_loss" in model.info["best_valid"]


def test_save_load_round_trip_and_contributions(fitted, tmp_path):
    model, schema, (X, _) = fitted
    save_model(model, tmp_path / "ft")
    assert {"ft_transformer.safetensors", "ft_transformer.json", "model.json", "history.jsonl"} <= \
        {p.name for p in (tmp_path / "ft").iterdir()}
    again = load_model(tmp_path / "ft", schema)
    assert again.predict_proba(X[:50]) == pytest.approx(model.predict_proba(X[:50]), abs=1e-6)
    contrib = again.contributions(X[:4])
    assert contrib.shape == (4, len(schema.features) + 1) and np.isfinite(contrib).all()
    x_col = schema.names.index("x")
    assert np.abs(contrib[:, x_col]).mean() > np.abs(contrib[:, schema.names.index("noise")]).mean()


def test_classify_pipeline_with_ft_transformer():
    overrides = ["name=churn-ft-smoke", "data.sample=300", "model.name=ft_transformer", "eval.cv_folds=0",
                 "model.ft_transformer.d_token=16", "model.ft_transformer.n_blocks=1", "model.ft_transformer.n_heads=2",
                 "model.ft_transformer.train.epochs=1", "model.ft_transformer.train.max_steps=3",
                 "model.ft_transformer.train.device=cpu"]
    summary = train(load_config(ClassifyConfig, "configs/tabular_mining/churn-quick.yaml", overrides))
    run = Path(summary["run"])
    assert summary["served_model"] == "ft_transformer"
    assert (run / "models/ft_transformer/ft_transformer.safetensors").exists()
    assert "ft_transformer" in (run / "comparison.md").read_text()
    assert 0 <= json.loads((run / "metrics.json").read_text())["test/roc_auc"] <= 1
