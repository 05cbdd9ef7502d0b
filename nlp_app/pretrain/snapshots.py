"""Encoders saved at minute marks of a pre-training run (``snapshots.minutes``), so one run gives
the start points of a lift-against-pre-training-time curve (``bench/nlp_pretrain.py``).

The clock starts at the first training batch (tokenising the corpus is not counted) and includes
validation. Each mark writes ``<run>/snapshots/<m>min/``: a Hugging Face model directory
(``config.json``, ``model.safetensors``, tokenizer files) that fine-tuning takes as
``model.pretrained``, and ``mark.json`` (minutes asked, seconds, optimizer steps, sequences seen).
Mark 0 is the initial weights. Passing the last mark ends training there (the task's
``after_update`` hook of :func:`shared.training.fit`): the run is validated, saved and drawn as
at a planned end (its weights: the last snapshot's, or its best validation's under ``train.monitor``).
"""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

from nlp_app.pretrain.masking import MaskedLMTask
from shared import runs

log = logging.getLogger(__name__)


def mark_dir(run: Path, minutes: float) -> Path:
    return run / "snapshots" / f"{minutes:g}min"


def save_snapshot(folder: Path, model, tokenizer, record: dict) -> Path:
    """Write the model, tokenizer and ``mark.json`` to ``folder`` through a temporary folder
    renamed into place, so a half-written snapshot is never read."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
    try:
        model.config.architectures = [type(model).__name__]
        model.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        runs.write_json(tmp / "mark.json", record)
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return folder


class SnapshottingMLMTask(MaskedLMTask):
    """The masked-LM task, checking the clock after each update (and before the first, for mark
    0): a mark that has passed saves the model as it is then; after the last, training stops."""

    def __init__(self, run: Path, tokenizer, minutes: list[float]):
        self.run, self.tokenizer, self.pending = run, tokenizer, list(minutes)
        self.start: float | None = None
        self.steps = self.sequences = 0
        self.written: list[dict] = []

    def loss(self, model, batch):
        if self.start is None:  # the clock starts at the first batch; mark 0 is the initial weights
            self.start = time.perf_counter()
            self._save_due(getattr(model, "module", model))
        self.sequences += int(batch["input_ids"].shape[0])
        return super().loss(model, batch)

    def after_update(self, model, step: int) -> bool:
        """Save the marks that have passed; True (stop) once the last one is written."""
        self.steps = step  # one micro-batch per update (snapshots refuse gradient accumulation)
        self._save_due(model)
        return not self.pending

    def _save_due(self, model) -> None:
        elapsed = time.perf_counter() - self.start
        while self.pending and elapsed >= self.pending[0] * 60:
            minutes = self.pending.pop(0)
            record = {"minutes": minutes, "seconds": round(elapsed, 1), "steps": self.steps,
                      "sequences": self.sequences}
            record["path"] = str(save_snapshot(mark_dir(self.run, minutes), model, self.tokenizer, record))
            self.written.append(record)
            log.info("snapshot at %.1f min: step %d, %d sequences -> %s", elapsed / 60, self.steps,
                     self.sequences, record["path"])
