"""The ``export`` stage of extractive QA: ``model.onnx`` (+ ``model.int8.onnx``) in the run,
checked against torch; and the runner every other stage uses (:func:`runner_for`), which runs
this stage first when ``serve.backend`` wants an ONNX file the run lacks."""
from __future__ import annotations

from pathlib import Path

from nlp_app.common.runners import bert_runner, export_onnx_files
from nlp_app.common.tokenization import load_tokenizer
from nlp_app.qa.config import QAConfig
from nlp_app.qa.model import HEAD
from shared import runs


def export(cfg: QAConfig, run: Path) -> dict:
    """Write ``model.onnx`` (dynamic batch and sequence axes) and, with ``export.quantize``,
    ``model.int8.onnx``; their paths and the largest logit difference from torch go to
    ``<run>/export.json``."""
    report = export_onnx_files(run, HEAD, load_tokenizer(str(run)), cfg.export.opset, cfg.export.quantize)
    runs.write_json(run / "export.json", report)
    return {"run": str(run), **report}


def runner_for(cfg: QAConfig, run: Path):
    """The run's model on ``serve.backend`` (torch, onnx or onnx-int8), and its tokenizer."""
    runner = bert_runner(run, HEAD, cfg.serve.backend, export=lambda: export(cfg, run), threads=cfg.serve.threads)
    return runner, load_tokenizer(str(run))
