"""The ``export`` stage of text classification: the run's served BERT (or ``serve.model=bert``) to
ONNX (``models/bert/model.onnx``) and a dynamically quantised int8 copy (``model.int8.onnx``), each
scored on the test split next to torch::

    python -m nlp_app export --run runs/nlp_app/sentiment/latest [serve.model=bert]
    python -m nlp_app serve  --run runs/nlp_app/sentiment/latest serve.backend=onnx-int8

Serving, evaluating or predicting with an ONNX backend runs this stage first when the file is
missing (:func:`classifier_for`).
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from nlp_app.classify.config import ClassifyConfig
from nlp_app.classify.model import INPUTS, load_classifier, model_dir, served_model
from nlp_app.classify.scoring import score
from nlp_app.common.corpus import load_splits
from nlp_app.common.runners import export_onnx_files
from shared import runs
from shared.errors import UserError
from shared.inference import ONNX_FILES

log = logging.getLogger(__name__)


def export(cfg: ClassifyConfig, run: Path) -> dict:
    """Write ``model.onnx`` (+ ``model.int8.onnx``) beside the BERT's weights, then score torch and
    each ONNX variant on the test split; the report (``test/accuracy_onnx``, ``test/agreement_onnx``
    …, file sizes) goes to ``<run>/export.json``."""
    from transformers import AutoTokenizer

    name = cfg.serve.model or served_model(run)
    folder = model_dir(run, name)
    if not (folder / "config.json").exists():
        raise UserError(_not_a_bert(run, name))
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    files = export_onnx_files(folder, "sequence_classification", tokenizer, cfg.export.opset, cfg.export.quantize,
                              inputs=INPUTS)
    test = load_splits(cfg.data)[0]["test"]
    reference = load_classifier(run, "torch", cfg.eval.batch_size, model=name)
    ref_proba = reference.predict_proba(test.texts)
    out = {"test/accuracy_torch": score(reference, test, "test")["test/accuracy"]}
    for backend in [b for b in ("onnx", "onnx-int8") if (folder / ONNX_FILES[b]).exists()]:
        clf = load_classifier(run, backend, cfg.eval.batch_size, model=name)
        proba = clf.predict_proba(test.texts)
        values = score(clf, test, "test")
        out[f"test/accuracy_{backend}"] = values["test/accuracy"]
        out[f"test/macro_f1_{backend}"] = values["test/macro_f1"]
        out[f"test/agreement_{backend}"] = float((proba.argmax(1) == ref_proba.argmax(1)).mean())
        out[f"test/max_abs_prob_diff_{backend}"] = float(np.abs(proba - ref_proba).max())
    sizes = {Path(p).name: round(Path(p).stat().st_size / 1e6, 2) for k, p in files.items() if k.startswith("onnx")}
    report = {"model": "bert", "folder": str(folder.relative_to(run)), "files_mb": sizes,
              "max_abs_logit_diff": files["max_abs_diff"], **out}
    runs.write_json(run / "export.json", report)
    return {"run": str(run), **{k: round(v, 4) if isinstance(v, float) else v for k, v in report.items()}}


def _not_a_bert(run: Path, name: str | None) -> str:
    if name == "baseline":
        hint = "; serve.model=bert exports the run's BERT" if (run / "models" / "bert").is_dir() else ""
        return f"the served model of {run} is the TF-IDF baseline, which has no ONNX export{hint}"
    return f"{run} is not a BERT run; export applies to a BERT (model.name=bert or all)"


def classifier_for(cfg: ClassifyConfig, run: Path):
    """The run's served classifier (or ``serve.model``) on ``serve.backend`` (an ONNX file the run
    lacks is exported first; the baseline has one backend)."""
    return load_classifier(run, cfg.serve.backend, cfg.eval.batch_size, cfg.serve.threads,
                           export=lambda: export(cfg, run), model=cfg.serve.model)
