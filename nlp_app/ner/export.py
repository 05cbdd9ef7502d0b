"""The ``export`` stage of NER: ``model.onnx`` (+ ``model.int8.onnx``) in the run, checked against
torch. The graph is the encoder (per-tag scores), for either model kind; a CRF run decodes the
scores with Viterbi in NumPy over the run's ``crf.json`` on every backend
(:mod:`nlp_app.ner.tagger`), so ONNX Runtime tags exactly as torch does."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from nlp_app.common.runners import export_onnx_files, pad_inputs
from nlp_app.ner.config import NERConfig
from nlp_app.ner.features import encode, input_names
from nlp_app.ner.model import CRF_FILE, HEAD, emissions, load_model, load_run_tokenizer, quiet_transformers
from shared import runs
from shared.inference import ONNX_FILES, OnnxRunner, TorchRunner

SAMPLE = ("示例文本：北京是中国的首都。", "好")
CHECK = ("短句。", "另一个稍微长一点的句子，用来检查动态长度。", "上海")


def export(cfg: NERConfig, run: Path) -> dict:
    """Write ``model.onnx`` (dynamic batch and sequence axes) and, with ``export.quantize``,
    ``model.int8.onnx``; their paths, the largest score difference from torch and the decoding
    go to ``<run>/export.json``."""
    tokenizer = load_run_tokenizer(run)
    if cfg.model.encoder == "bert":
        with quiet_transformers():
            report = export_onnx_files(run, HEAD, tokenizer, cfg.export.opset, cfg.export.quantize)
    else:
        report = _export_char_tagger(cfg, run, tokenizer)
    report["decoding"] = "viterbi over crf.json (numpy)" if (run / CRF_FILE).exists() else "argmax"
    runs.write_json(run / "export.json", report)
    return {"run": str(run), **report}


class _Positional(torch.nn.Module):
    """The ONNX exporter passes inputs by position."""

    def __init__(self, model, names):
        super().__init__()
        self.model, self.names = model, list(names)

    def forward(self, *inputs):
        return emissions(self.model, dict(zip(self.names, inputs)))


def _features(cfg: NERConfig, tokenizer, texts, names) -> dict[str, np.ndarray]:
    feats = encode([list(t) for t in texts], tokenizer, None, cfg.model.max_length, cfg.model.word_features)
    return pad_inputs(feats, names)


def _export_char_tagger(cfg: NERConfig, run: Path, tokenizer) -> dict:
    from shared.onnx_export import export_onnx, quantize_int8

    names = list(input_names(cfg.model))
    model = load_model(run)
    # trace with padding in the batch, so the length-dependent paths are part of the graph
    sample = _features(cfg, tokenizer, SAMPLE, names)
    axes = {k: {0: "batch", 1: "sequence"} for k in [*names, "logits"]}
    with warnings.catch_warnings():
        # the tracer's notes on LSTM shapes: the graph is checked on other batch sizes and lengths below
        warnings.simplefilter("ignore")
        path = export_onnx(_Positional(model, names), tuple(torch.as_tensor(sample[k]) for k in names),
                           run / ONNX_FILES["onnx"], input_names=names, output_names=["logits"], dynamic_axes=axes,
                           opset=cfg.export.opset)
    check = _features(cfg, tokenizer, CHECK, names)
    (ref,), (got,) = TorchRunner(model, forward=emissions)(check), OnnxRunner(path)(check)
    out = {"onnx": str(path), "max_abs_diff": float(np.abs(ref - got).max())}
    if cfg.export.quantize:
        out["onnx_int8"] = str(quantize_int8(path, run / ONNX_FILES["onnx-int8"]))
    return out
