"""Knowledge distillation into the BERT (``model.distill.teacher``): a trained run's model (the
served one, or ``model.distill.teacher_model``; any kind: the TF-IDF baseline, a BERT fine-tuned
from a pre-trained checkpoint) labels the training texts with probabilities once, and the BERT
learns from both::

    loss = alpha · T² · KL(teacher_T ‖ student_T) + (1 − alpha) · cross-entropy(labels)

where ``_T`` is a distribution softened by the temperature ``T`` (Hinton et al., 2015)::

    python -m nlp_app train --config configs/nlp_app/sentiment.yaml model.name=bert \\
        model.distill.teacher=runs/nlp_app/sentiment/<teacher run>

``train`` then also scores the teacher on the same valid and test texts: accuracy and texts/s of
teacher and student sit side by side in ``comparison.md`` (row ``teacher``; never served).
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from nlp_app.classify.config import ClassifyConfig
from nlp_app.classify.model import load_classifier
from nlp_app.classify.scoring import score
from nlp_app.common.corpus import load_splits
from shared import runs
from shared.errors import UserError

log = logging.getLogger(__name__)


def load_teacher(cfg: ClassifyConfig, labels: list[str]):
    """The teacher classifier of ``model.distill``; its labels must be the student's."""
    teacher = load_classifier(cfg.model.distill.teacher, "torch", cfg.eval.batch_size,
                              model=cfg.model.distill.teacher_model)
    if list(teacher.labels) != list(labels):
        raise UserError(f"model.distill.teacher={cfg.model.distill.teacher} has labels {teacher.labels}, "
                        f"this data has {labels}: distil from a run trained on the same labels")
    return teacher


def warn_on_overlap(cfg: ClassifyConfig, splits: dict) -> int:
    """How many of this split's valid and test texts the teacher was trained on (logged when any:
    the student's scores on them would be flattered by the teacher's memory)."""
    teacher_cfg = ClassifyConfig.model_validate(runs.load_run_config(cfg.model.distill.teacher))
    seen = set(load_splits(teacher_cfg.data)[0]["train"].texts)
    overlap = sum(t in seen for name in ("valid", "test") for t in splits[name].texts)
    if overlap:
        log.warning("the teacher was trained on %d of this split's valid/test texts: distil from a teacher "
                    "trained on the same split (same data section) for honest scores", overlap)
    return overlap


class WithTeacher(Dataset):
    """Training examples with the teacher's probabilities under ``teacher``."""

    def __init__(self, data: Dataset, probabilities: np.ndarray):
        self.data, self.probabilities = data, probabilities.astype(np.float32)

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> dict:
        return {**self.data[i], "teacher": self.probabilities[i]}

    @property
    def lengths(self) -> list[int]:
        return self.data.lengths


class WithTeacherPadding:
    """A collator that also stacks ``teacher`` rows (validation batches have none)."""

    def __init__(self, collate):
        self.collate = collate

    def __call__(self, examples: list[dict]) -> dict[str, torch.Tensor]:
        batch = self.collate([{k: v for k, v in e.items() if k != "teacher"} for e in examples])
        if "teacher" in examples[0]:
            batch["teacher"] = torch.as_tensor(np.stack([e["teacher"] for e in examples]))
        return batch


def distillation_loss(logits: torch.Tensor, labels: torch.Tensor, teacher: torch.Tensor,
                      alpha: float, temperature: float) -> torch.Tensor:
    """``alpha · T² · KL(teacher_T ‖ student_T) + (1 − alpha) · CE``; ``teacher`` holds probabilities."""
    logits = logits.float()
    soft_teacher = F.softmax(torch.log(teacher.float().clamp_min(1e-8)) / temperature, dim=-1)
    kl = F.kl_div(F.log_softmax(logits / temperature, dim=-1), soft_teacher, reduction="batchmean")
    return alpha * temperature ** 2 * kl + (1 - alpha) * F.cross_entropy(logits, labels)


def with_teacher(cfg: ClassifyConfig, task, train_data: Dataset, texts: list[str], labels: list[str], collate):
    """``(task, train data, collate)`` for :func:`shared.training.fit`: as given without a teacher,
    else distilling from it (the teacher's probabilities on ``texts`` computed once)."""
    if not cfg.model.distill.teacher:
        return task, train_data, collate
    teacher = load_teacher(cfg, labels)
    log.info("distilling from %s (%s), alpha %.2f, temperature %.1f", cfg.model.distill.teacher, teacher.name,
             cfg.model.distill.alpha, cfg.model.distill.temperature)
    return (DistillationTask(task, cfg.model.distill.alpha, cfg.model.distill.temperature),
            WithTeacher(train_data, teacher.predict_proba(texts)), WithTeacherPadding(collate))


class DistillationTask:
    """The classification task with the distillation loss; validation as the task's."""

    def __init__(self, task, alpha: float, temperature: float):
        self.task, self.alpha, self.temperature = task, alpha, temperature

    def loss(self, model, batch):
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        return distillation_loss(logits, batch["labels"], batch["teacher"], self.alpha, self.temperature)

    def evaluate(self, model, loader) -> dict[str, float]:
        return self.task.evaluate(model, loader)


def teacher_scores(cfg: ClassifyConfig, splits: dict, labels: list[str], plot_dir: Path | None = None) -> dict:
    """The teacher's valid and test scores on this split (accuracy, texts/s …), for the comparison."""
    teacher = load_teacher(cfg, labels)
    warn_on_overlap(cfg, splits)
    return {**score(teacher, splits["valid"], "valid"), **score(teacher, splits["test"], "test", plot_dir)}
