"""``snapshots.minutes``: encoders saved at minute marks of a pre-training run (mark 0 = the initial
weights), training stopped at the last mark, and fine-tuning started from a snapshot."""
import pytest
from safetensors.torch import load_file

from shared import runs


@pytest.fixture(scope="module")
def marked_run(recipes, cli):
    path, tiny = recipes["pretrain"]
    tiny = [o for o in tiny if not o.startswith("train.max_steps")]
    # train.monitor off: the run's weights are its last update's (with a monitor, its best validation's)
    assert cli("train", "--config", path, *tiny, "name=pretrain-marks", "train.epochs=200",
               "train.monitor=null", "snapshots.minutes=[0,0.001]") == 0
    return runs.latest_run("nlp_app", "pretrain-marks")


def test_marks_are_saved_and_the_last_one_stops_training(marked_run):
    first = runs.read_json(marked_run / "snapshots/0min/mark.json")
    last = runs.read_json(marked_run / "snapshots/0.001min/mark.json")
    assert first["steps"] == 0 and first["sequences"] == 0
    assert 1 <= last["steps"] < 200 and last["sequences"] >= last["steps"]
    metrics = runs.load_metrics(marked_run)
    assert metrics["train/steps"] == last["steps"] and "valid/mlm_loss" in metrics
    assert (marked_run / "curves.png").exists()  # ended as a planned end is
    # the run holds the last mark's weights; mark 0 differs from them (training happened in between)
    run_weights = load_file(marked_run / "model.safetensors")
    last_weights = load_file(marked_run / "snapshots/0.001min/model.safetensors")
    first_weights = load_file(marked_run / "snapshots/0min/model.safetensors")
    name = next(k for k in run_weights if k.endswith("word_embeddings.weight"))
    assert (run_weights[name] == last_weights[name]).all()
    assert not (first_weights[name] == last_weights[name]).all()


def test_fine_tuning_starts_from_a_snapshot(marked_run, recipes, cli):
    path, tiny = recipes["classify"]
    snapshot = marked_run / "snapshots/0min"
    assert cli("train", "--config", path, *tiny, "model.name=bert", f"model.pretrained={snapshot}",
               "name=from-snapshot") == 0
    run = runs.latest_run("nlp_app", "from-snapshot")
    assert runs.read_json(run / "models/bert/config.json")["vocab_size"] == \
        runs.read_json(snapshot / "config.json")["vocab_size"]


def test_marks_must_increase(recipes, cli, capsys):
    path, tiny = recipes["pretrain"]
    assert cli("train", "--config", path, *tiny, "snapshots.minutes=[5,1]") == 2
    assert "snapshots.minutes" in capsys.readouterr().err
