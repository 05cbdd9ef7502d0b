"""Quality floor on a People's Daily subset: ner-quick.yaml (the character BiLSTM-CRF of ner.yaml
on 3,000 sentences) from random initialisation; measured 0.80 test F1, the floor is 0.70."""
import pytest

from shared import runs


@pytest.mark.slow
def test_quick_bilstm_crf_reaches_070_entity_f1_on_peoples_daily(cli):
    assert cli("train", "--config", "configs/nlp_app/ner-quick.yaml", "train.progress=false") == 0
    metrics = runs.load_metrics(runs.latest_run("nlp_app", "ner"))
    assert metrics["test/f1"] >= 0.70
    assert min(metrics[f"test/{t}/f1"] for t in ("PER", "LOC", "ORG")) >= 0.4
