"""The tune stage: parameter updates, Optuna on inner CV of the training rows only, its own run
(``<recipe>-tune``), and train picking the best parameters up through ``model.params_from`` with
the tuned values recorded in the train run's ``config.yaml``."""
import json
from pathlib import Path

import pytest
import yaml

from shared.config import load_config
from shared.errors import UserError
from shared.runs import latest_run
from tabular_mining.classify import tune as tune_module
from tabular_mining.classify.config import ClassifyConfig, FTTransformerParams, XGBoostParams
from tabular_mining.classify.data import load_splits

QUICK = "configs/tabular_mining/churn-quick.yaml"
SMALL = ["name=churn-tune-smoke", "data.sample=400", "eval.cv_folds=0", "model.xgboost.n_estimators=40",
         "model.xgboost.early_stopping_rounds=10", "tune.model=xgboost", "tune.n_trials=4", "tune.cv_folds=2"]


def test_with_params_updates_nested_sections_and_validates():
    ft = tune_module.with_params(FTTransformerParams(), {"d_token": 32, "train.lr": 0.002})
    assert ft.d_token == 32 and ft.train.lr == 0.002 and ft.train.monitor == "log_loss"
    with pytest.raises(UserError, match="max_depth"):
        tune_module.with_params(XGBoostParams(), {"max_depth": 0})


def test_tune_then_train_with_the_best_parameters(monkeypatch, cli, cli_json):
    cfg = load_config(ClassifyConfig, QUICK, SMALL)
    seen_rows = []
    real = tune_module.cv_score
    monkeypatch.setattr(tune_module, "cv_score",
                        lambda c, rows, *a, **k: seen_rows.append(len(rows)) or real(c, rows, *a, **k))
    summary = cli_json("tune", "--config", QUICK, *SMALL)
    run = latest_run("tabular_mining", "churn-tune-smoke-tune")
    assert summary["run"] == str(run) and run.parent.name == "churn-tune-smoke-tune"
    splits = load_splits(cfg.name, cfg.data)
    assert set(seen_rows) == {len(splits.train)}  # inner CV never sees valid or test rows
    best = json.loads((run / "best_params.json").read_text())
    assert best["model"] == "xgboost" and set(best["params"]) >= {"learning_rate", "max_depth"}
    trials = (run / "trials.csv").read_text().splitlines()
    assert len(trials) == 1 + 4 and (run / "tune_history.png").exists()
    metrics = json.loads((run / "metrics.json").read_text())
    assert 0.5 < metrics["tune/best_roc_auc"] <= 1 and metrics["tune/best_roc_auc"] >= metrics["tune/default_roc_auc"]
    assert metrics["tune/trials_complete"] + metrics["tune/trials_pruned"] == 4
    assert "## Tuning" in (run / "README.md").read_text()

    # trial 0 is the recipe's own parameters
    first = dict(zip(trials[0].split(","), trials[1].split(",")))
    assert float(first["params_learning_rate"]) == pytest.approx(cfg.model.xgboost.learning_rate)

    trained = cli_json("train", "--config", QUICK, *SMALL, "model.name=xgboost",
                       f"model.params_from={run.parent / 'latest'}")
    saved = yaml.safe_load(Path(trained["run"], "config.yaml").read_text())["model"]
    assert saved["xgboost"]["learning_rate"] == pytest.approx(best["params"]["learning_rate"])
    assert saved["xgboost"]["max_depth"] == best["params"]["max_depth"]
    assert saved["params_from"] == str(run)  # the tune run itself, not the moving latest link


def test_tune_refuses_other_tasks_and_missing_runs(tmp_path, cli, capsys):
    assert cli("tune", "--config", "configs/tabular_mining/rules-quick.yaml") == 2
    assert "the rules task has no tune stage" in capsys.readouterr().err
    assert cli("train", "--config", QUICK, f"model.params_from={tmp_path}") == 2
    assert "not a run directory" in capsys.readouterr().err
