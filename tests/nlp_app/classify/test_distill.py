"""Distillation into the BERT (``model.distill.teacher``): the loss, the collator, and a tiny
student taught by a baseline run, with teacher and student side by side in the run's table."""
import pytest
import torch
import torch.nn.functional as F

from nlp_app.classify.distill import WithTeacherPadding, distillation_loss
from nlp_app.common.bert import DynamicPadding
from shared import runs

QUICK = "configs/nlp_app/sentiment-quick.yaml"
TINY = ["data.max_examples=300", "model.hidden_size=32", "model.num_layers=1", "model.num_heads=2",
        "model.intermediate_size=64", "model.max_length=48", "train.batch_size=16", "train.max_steps=4",
        "train.device=cpu", "train.progress=false"]


def test_the_loss_mixes_soft_targets_and_labels():
    torch.manual_seed(0)
    logits, labels = torch.randn(6, 3), torch.tensor([0, 1, 2, 0, 1, 2])
    teacher = F.softmax(torch.randn(6, 3), -1)
    ce = F.cross_entropy(logits, labels)
    assert distillation_loss(logits, labels, teacher, alpha=0.0, temperature=2.0) == pytest.approx(ce.item())
    # a teacher that agrees with the student exactly adds nothing
    assert distillation_loss(logits, labels, F.softmax(logits, -1), 1.0, 1.0).item() == pytest.approx(0, abs=1e-6)
    t = 3.0
    kl = F.kl_div(F.log_softmax(logits / t, -1), F.softmax(teacher.log() / t, -1), reduction="batchmean")
    mixed = distillation_loss(logits, labels, teacher, alpha=0.25, temperature=t)
    assert mixed.item() == pytest.approx(0.25 * t * t * kl.item() + 0.75 * ce.item(), rel=1e-5)


def test_the_collator_stacks_teacher_rows_when_there_are_some():
    collate = WithTeacherPadding(DynamicPadding(0))
    train = collate([{"input_ids": [2, 5, 3], "labels": 1, "teacher": [0.2, 0.8]},
                     {"input_ids": [2, 3], "labels": 0, "teacher": [0.9, 0.1]}])
    assert train["teacher"].shape == (2, 2) and train["input_ids"].shape == (2, 3)
    valid = collate([{"input_ids": [2, 3], "labels": 0}])
    assert "teacher" not in valid and valid["labels"].tolist() == [0]


@pytest.fixture(scope="module")
def teacher_run(cli):
    assert cli("train", "--config", QUICK, *TINY, "model.name=baseline", "train.seed=7") == 0
    return runs.latest_run("nlp_app", "sentiment")


def test_a_student_taught_by_a_baseline_run(teacher_run, cli):
    assert cli("train", "--config", QUICK, *TINY, "model.name=bert", f"model.distill.teacher={teacher_run}",
               "model.distill.alpha=0.5") == 0
    run = runs.latest_run("nlp_app", "sentiment")
    metrics = runs.load_metrics(run)
    teacher = runs.load_metrics(teacher_run)
    assert metrics["test/accuracy_teacher"] == pytest.approx(teacher["test/accuracy"])  # the same split
    assert metrics["test/texts_per_second_teacher"] > 0 and metrics["test/texts_per_second"] > 0
    rows = {r["model"]: r for r in runs.read_json(run / "comparison.json")}
    assert set(rows) == {"bert", "teacher"} and rows["bert"]["served"] and not rows["teacher"]["served"]
    assert rows["teacher"]["fit_seconds"] is None
    assert runs.read_json(run / "selection.json")["models"] == ["bert"]  # the teacher is never a candidate
    assert "The teacher (model.distill.teacher)" in (run / "comparison.md").read_text(encoding="utf-8")


def test_a_teacher_with_other_labels_is_refused(teacher_run, cli, capsys, tmp_path):
    rows = "".join(f"文本{i},{'abc'[i % 3]}\n" for i in range(60))
    (tmp_path / "three.csv").write_text("text,label\n" + rows, encoding="utf-8")
    capsys.readouterr()
    assert cli("train", "--config", QUICK, *TINY, "model.name=bert", "data.source=file",
               f"data.path={tmp_path / 'three.csv'}", f"model.distill.teacher={teacher_run}") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "Traceback" not in "\n".join(err) and "same labels" in err[-1]
