"""A trained BERT run directory, run for predictions by every NLP task, and exported to ONNX.

One :func:`shared.inference.build_runner` underneath (torch / onnx / onnx-int8, and its
missing-file policy: an ONNX file the run lacks is written on first use by the task's ``export``
stage), fed length-sorted, dynamically padded batches::

    runner = bert_runner(run, "token_classification", cfg.serve.backend, export=lambda: export(cfg, run))
    outputs = run_batches(runner, feats, batch_size)   # per feature, each output cut to its length

A BERT run directory is a Hugging Face model directory (``config.json``, ``model.safetensors``,
tokenizer files), so the torch backend is ``from_pretrained(run)``.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from nlp_app.common.bert import pad_sequences
from shared.errors import UserError
from shared.inference import ONNX_FILES, OnnxRunner, Runner, TorchRunner, build_runner

# head → (transformers class name, output names in ONNX order)
HEADS = {
    "sequence_classification": ("AutoModelForSequenceClassification", ("logits",)),
    "question_answering": ("BertForQuestionAnswering", ("start_logits", "end_logits")),
    "token_classification": ("BertForTokenClassification", ("logits",)),
}
TOKEN_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def model_class(head: str):
    import transformers

    return getattr(transformers, HEADS[head][0])


def load_model(run: str | Path, head: str, **kwargs) -> torch.nn.Module:
    """The trained torch model of ``run`` in eval mode; a run without one is a clear error."""
    run = Path(run)
    if not (run / "config.json").exists():
        raise UserError(f"{run} has no BERT model (config.json): train it first, or pass a BERT run")
    return model_class(head).from_pretrained(str(run), **kwargs).eval()


def _forward(outputs: Sequence[str]) -> Callable:
    def forward(model, inputs: dict[str, torch.Tensor]):
        out = model(**inputs)
        return tuple(out[name] for name in outputs)
    return forward


def bert_runner(run: str | Path, head: str, backend: str = "torch", export: Callable[[], object] | None = None,
                threads: int | None = None, device: str = "cpu") -> Runner:
    """The ``backend`` runner of ``run``'s model; outputs in :data:`HEADS` order."""
    return build_runner(run, backend, load_model=lambda: load_model(run, head), export=export,
                        forward=_forward(HEADS[head][1]), device=device, threads=threads)


def pad_inputs(feats: Sequence[dict], names: Sequence[str]) -> dict[str, np.ndarray]:
    """Right-pad each named input of ``feats`` with 0 to the longest feature: a batch of arrays."""
    return {name: pad_sequences([f[name] for f in feats], 0)[0].numpy() for name in names}


def run_batches(runner: Runner, feats: Sequence[dict], batch_size: int,
                names: Sequence[str] = TOKEN_INPUTS) -> list[tuple[np.ndarray, ...]]:
    """Every per-token output of ``runner`` for each feature (batched by length: less padding),
    cut back to the feature's own length."""
    order = sorted(range(len(feats)), key=lambda i: len(feats[i]["input_ids"]))
    by_index: dict[int, tuple[np.ndarray, ...]] = {}
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        outs = runner(pad_inputs([feats[i] for i in idx], names))
        for row, i in enumerate(idx):
            n = len(feats[i]["input_ids"])
            by_index[i] = tuple(o[row, :n] for o in outs)
    return [by_index[i] for i in range(len(feats))]


class _TupleOutputs(torch.nn.Module):
    """ONNX export wants tensors out, not a ModelOutput."""

    def __init__(self, model, input_names: Sequence[str], output_names: Sequence[str]):
        super().__init__()
        self.model, self.input_names, self.names = model, list(input_names), list(output_names)

    def forward(self, *inputs):
        out = self.model(**dict(zip(self.input_names, inputs)))
        return tuple(out[n] for n in self.names)


def export_onnx_files(run: str | Path, head: str, tokenizer, opset: int, quantize: bool,
                      inputs: Sequence[str] = TOKEN_INPUTS) -> dict:
    """``model.onnx`` (dynamic batch and sequence axes) and, with ``quantize``, ``model.int8.onnx``
    in ``run``; reports how far ONNX Runtime is from torch (``max_abs_diff``) on other shapes than
    the traced sample."""
    from shared.onnx_export import export_onnx, quantize_int8

    run = Path(run)
    names = HEADS[head][1]
    # eager attention traces to plain MatMul/Softmax, which every runtime and the quantiser handle
    model = load_model(run, head, attn_implementation="eager")
    wrapped = _TupleOutputs(model, inputs, names)
    # trace with padding in the batch, so the attention-mask path is part of the graph
    sample = pad_inputs([tokenizer(t) for t in ("示例文本：北京是中国的首都。", "好")], inputs)
    axes = {k: {0: "batch", 1: "sequence"} for k in inputs}
    axes.update({k: {0: "batch"} if head == "sequence_classification" else {0: "batch", 1: "sequence"}
                 for k in names})
    path = export_onnx(wrapped, tuple(torch.as_tensor(sample[k]) for k in inputs), run / ONNX_FILES["onnx"],
                       input_names=list(inputs), output_names=list(names), dynamic_axes=axes, opset=opset)
    check = pad_inputs([tokenizer(t) for t in ("短句。", "另一个稍微长一点的句子，用来检查动态长度。", "上海")], inputs)
    torch_out = TorchRunner(model, forward=_forward(names))(check)
    diff = max(float(np.abs(a - b).max()) for a, b in zip(torch_out, OnnxRunner(path)(check)))
    out = {"onnx": str(path), "max_abs_diff": diff}
    if quantize:
        out["onnx_int8"] = str(quantize_int8(path, run / ONNX_FILES["onnx-int8"]))
    return out
