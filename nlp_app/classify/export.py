"""The ``export`` stage: a BERT run to ONNX (``model.onnx``) and a dynamically quantised int8
copy (``model.int8.onnx``), each scored on the test split next to torch::

    python -m nlp_app export --run runs/nlp_app/sentiment/latest
    python -m nlp_app serve serve.backend=onnx-int8
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from nlp_app.config import DataConfig, ExportConfig, load_recipe
from nlp_app.data import load_splits
from nlp_app.evaluate import score
from nlp_app.inference import ONNX_FILES, BertClassifier, load_classifier
from shared import runs
from shared.errors import UserError
from shared.onnx_export import export_onnx, quantize_int8

log = logging.getLogger(__name__)


class _Logits(torch.nn.Module):
    """``(input_ids, attention_mask) -> logits``: the plain signature ONNX wants."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask):
        return self.model(input_ids=input_ids, attention_mask=attention_mask).logits


def export_bert(run: Path, cfg: ExportConfig) -> list[Path]:
    """Write ``model.onnx`` (+ ``model.int8.onnx``) into ``run``; returns the paths."""
    from transformers import AutoModelForSequenceClassification

    # eager attention traces to plain MatMul/Softmax, which every runtime and the quantiser handle
    model = AutoModelForSequenceClassification.from_pretrained(str(run), attn_implementation="eager").eval()
    clf = BertClassifier(run, "torch")
    enc = clf.tokenizer(["导出用的例句，长短不一。", "好"], padding=True, return_tensors="pt")
    axes = {"batch": 0, "seq": 1}
    dynamic = {name: {i: n for n, i in axes.items()} for name in ("input_ids", "attention_mask")}
    dynamic["logits"] = {0: "batch"}
    onnx_path = export_onnx(_Logits(model), (enc["input_ids"], enc["attention_mask"]), run / ONNX_FILES["onnx"],
                            input_names=["input_ids", "attention_mask"], output_names=["logits"],
                            dynamic_axes=dynamic, opset=cfg.opset)
    paths = [onnx_path]
    if cfg.quantize:
        paths.append(quantize_int8(onnx_path, run / ONNX_FILES["onnx-int8"]))
    return paths


def export(run: Path, cfg: ExportConfig, data: DataConfig | None = None, batch_size: int = 64) -> dict:
    """Export, then score torch and each ONNX variant on the run's test split (metrics.json keys
    ``test/accuracy_onnx``, ``test/agreement_onnx`` …)."""
    if not (run / "config.json").exists():
        raise UserError(f"{run} is not a BERT run; export applies to model.name=bert")
    paths = export_bert(run, cfg)
    data = data or DataConfig.model_validate(runs.load_run_config(run)["data"])
    test = load_splits(data)[0]["test"]
    reference = load_classifier(run, "torch", batch_size)
    ref_proba = reference.predict_proba(test.texts)
    values = score(reference, test, "test")
    out = {"test/accuracy_torch": values["test/accuracy"]}
    for backend in [b for b in ("onnx", "onnx-int8") if (run / ONNX_FILES[b]).exists()]:
        clf = load_classifier(run, backend, batch_size)
        proba = clf.predict_proba(test.texts)
        values = score(clf, test, "test")
        out[f"test/accuracy_{backend}"] = values["test/accuracy"]
        out[f"test/macro_f1_{backend}"] = values["test/macro_f1"]
        out[f"test/agreement_{backend}"] = float((proba.argmax(1) == ref_proba.argmax(1)).mean())
        out[f"test/max_abs_prob_diff_{backend}"] = float(np.abs(proba - ref_proba).max())
    runs.update_metrics(run, out)
    sizes = {p.name: round(p.stat().st_size / 1e6, 2) for p in paths}
    return {"run": str(run), "files_mb": sizes, **{k: round(v, 4) for k, v in out.items()}}


def export_stage(args) -> dict:
    recipe = load_recipe(args.config, args.overrides)
    run = runs.resolve_run(args.run or runs.task_dir("nlp_app", recipe.name) / "latest")
    return export(run, recipe.export, batch_size=recipe.eval.batch_size)
