"""FT-Transformer: token shapes, a tiny fit that learns a planted signal, save/load round trip,
contributions, the classify pipeline with ``model.name=ft_transformer`` (tiny, CPU), and a killed
training run that the same command resumes from its checkpoints."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import roc_auc_score

from shared.runs import latest_run, task_dir
from tabular_mining.classify.config import FTTransformerParams
from tabular_mining.classify.ft_transformer import FTTransformer, FTTransformerModel
from tabular_mining.classify.model import load_model
from tabular_mining.common.features import encode_frame, encode_target, infer_schema
from tabular_mining.common.runs import save_model

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
    assert {"ft_transformer.safetensors", "ft_transformer.json", "model.json"} <= {p.name for p in (tmp_path / "ft").iterdir()}
    again = load_model(tmp_path / "ft", schema)
    assert again.predict_proba(X[:50]) == pytest.approx(model.predict_proba(X[:50]), abs=1e-6)
    contrib = again.contributions(X[:4])
    assert contrib.shape == (4, len(schema.features) + 1) and np.isfinite(contrib).all()
    x_col = schema.names.index("x")
    assert np.abs(contrib[:, x_col]).mean() > np.abs(contrib[:, schema.names.index("noise")]).mean()


QUICK = "configs/tabular_mining/churn-quick.yaml"
TINY_RUN = ["data.sample=300", "model.name=ft_transformer", "eval.cv_folds=0", "model.ft_transformer.d_token=16",
            "model.ft_transformer.n_blocks=1", "model.ft_transformer.n_heads=2", "model.ft_transformer.train.device=cpu"]


def test_classify_pipeline_with_ft_transformer(cli_json):
    summary = cli_json("train", "--config", QUICK, "name=churn-ft-smoke", *TINY_RUN,
                       "model.ft_transformer.train.epochs=1", "model.ft_transformer.train.max_steps=3")
    run = latest_run("tabular_mining", "churn-ft-smoke")
    assert summary["served_model"] == "ft_transformer" and summary["run"] == str(run)
    ft = run / "models" / "ft_transformer"
    for name in ["ft_transformer.safetensors", "ft_transformer.json", "history.jsonl", "checkpoints/last.pt"]:
        assert (ft / name).exists(), name
    assert "ft_transformer" in (run / "comparison.md").read_text()
    assert 0 <= json.loads((run / "metrics.json").read_text())["test/roc_auc"] <= 1
    assert cli_json("evaluate", "--run", run)["model"] == "ft_transformer"


@pytest.mark.slow
def test_a_killed_run_resumes_from_its_checkpoints_with_the_same_result(cli_json):
    """kill -9 in the middle of training; the same command resumes that run directory from
    ``models/ft_transformer/checkpoints`` and ends where an uninterrupted run of the seed ends."""
    longer = [*TINY_RUN, "model.ft_transformer.train.epochs=40", "model.ft_transformer.train.early_stopping_patience=null",
              "model.ft_transformer.train.checkpoint_every_steps=1"]
    straight = cli_json("train", "--config", QUICK, "name=churn-ft-straight", *longer)
    argv = [sys.executable, "-m", "tabular_mining", "train", "--config", QUICK, "name=churn-ft-resume", *longer]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = task_dir("tabular_mining", "churn-ft-resume")
    try:
        for _ in range(6000):  # until some steps are checkpointed (at most 10 minutes)
            history = list(base.glob("*/models/ft_transformer/history.jsonl"))
            if history and sum(1 for _ in history[0].open()) >= 10 or proc.poll() is not None:
                break
            time.sleep(0.1)
        assert proc.poll() is None, "training ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    (killed,) = [p for p in base.iterdir() if p.is_dir() and not p.is_symlink()]
    assert json.loads((killed / "run.json").read_text())["status"] == "running"
    resumed = cli_json("train", "--config", QUICK, "name=churn-ft-resume", *longer)
    assert resumed["run"] == str(killed)  # the same directory, not a new one
    assert json.loads((killed / "run.json").read_text())["resumed"] == 1
    for key in ("test/roc_auc", "test/log_loss", "test/accuracy"):
        assert resumed[key] == pytest.approx(straight[key], abs=1e-6), key
