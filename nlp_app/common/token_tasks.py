"""What QA and NER share: a BERT with a token-level head (span start/end, or a tag per token)
built from scratch or from a pre-trained start, trained with :func:`shared.training.fit`, saved
as a run directory that is also a Hugging Face model directory, loaded back, run in batches
(torch or ONNX Runtime), and exported to ONNX.

A run directory holds ``config.json`` + ``model.safetensors`` (the model), the tokenizer files,
``labels.json`` (NER), ``config.yaml`` (the recipe), ``metrics.json``, ``history.jsonl`` and a
``MODEL_CARD.md``; so ``model.pretrained: runs/nlp_app/<name>/latest`` starts a new fine-tune from it.
"""
from __future__ import annotations

import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nlp_app.bert import bert_config, from_pretrained, pad_sequences, save_pretrained_files
from nlp_app.tokenization import load_tokenizer
from shared import distributed, runs
from shared.batching import LengthGroupedBatchSampler
from shared.config import to_dict
from shared.device import resolve_device, seed_everything
from shared.errors import UserError
from shared.training import evaluate_model, fit

log = logging.getLogger(__name__)
HEADS = ("question_answering", "token_classification")
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
_OUTPUTS = {"question_answering": ("start_logits", "end_logits"), "token_classification": ("logits",)}


def _model_class(head: str):
    from transformers import BertForQuestionAnswering, BertForTokenClassification

    return {"question_answering": BertForQuestionAnswering, "token_classification": BertForTokenClassification}[head]


def build_model(head: str, arch, tokenizer, labels: Sequence[str] | None = None, seed: int = 0):
    """A BERT with ``head`` on top: the encoder from ``arch.pretrained`` (its own head, if any, is
    replaced) or freshly initialised at ``arch``'s size over ``tokenizer``'s vocabulary."""
    seed_everything(seed)
    label_args = {}
    if labels is not None:
        label_args = {"num_labels": len(labels), "id2label": dict(enumerate(labels)),
                      "label2id": {t: i for i, t in enumerate(labels)}}
    if arch.pretrained:
        model = from_pretrained(_model_class(head), arch, **label_args)
        if model.config.max_position_embeddings < arch.max_length:
            raise UserError(f"model.max_length={arch.max_length} exceeds the pre-trained model's "
                            f"{model.config.max_position_embeddings} positions")
        return model
    return _model_class(head)(bert_config(arch, len(tokenizer), **label_args))


def collate(items: Sequence[dict]) -> dict[str, torch.Tensor]:
    """Dynamic padding: inputs with 0 (``[PAD]`` is id 0 in every BERT vocabulary here), token
    labels with -100; scalar targets (span start/end) stacked. Non-tensor keys are dropped."""
    batch: dict[str, torch.Tensor] = {}
    for key in items[0]:
        if key in _INPUTS or key == "labels":
            batch[key] = pad_sequences([it[key] for it in items], -100 if key == "labels" else 0)[0]
        elif isinstance(items[0][key], int):
            batch[key] = torch.tensor([it[key] for it in items])
    return batch


def fit_model(model, task, train_items: list[dict], valid_items: list[dict], cfg, run: Path):
    """:func:`shared.training.fit` with length-grouped batches (short sentences pad little)."""
    sampler = LengthGroupedBatchSampler([len(it["input_ids"]) for it in train_items], cfg.train.batch_size,
                                        seed=cfg.train.seed, drop_last=cfg.train.drop_last)
    return fit(model, task, train_items, valid_items, cfg.train, run, collate_fn=collate,
               train_batch_sampler=sampler, extra_state={"config": to_dict(cfg)})


def evaluate_on(model, task, items: list[dict], cfg) -> dict[str, float]:
    return evaluate_model(model, task, items, cfg.train, collate_fn=collate)


def gather(items: list) -> list:
    """This rank's list → everyone's, in rank order (a no-op in one process)."""
    return distributed.gather_list(items)


def save_run(run: Path, cfg, model, tokenizer, labels: Sequence[str] | None, scores: dict, card: str) -> None:
    """Write everything but the weights (``fit`` wrote ``model.safetensors``) and mark the run latest."""
    if not distributed.is_main_process():
        return
    save_pretrained_files(run, model, tokenizer)
    if labels is not None:
        runs.write_json(run / "labels.json", list(labels))
    runs.write_yaml(run / "config.yaml", to_dict(cfg))
    runs.update_metrics(run, scores)
    runs.write_text(run / "MODEL_CARD.md", card)
    runs.mark_latest(run)


def load_run(app: str, cfg_type, run: str | None, default_name: str, head: str, device: str = "cpu"):
    """``(run_dir, cfg, model, tokenizer, labels)`` from a run directory (default: the recipe's latest).
    The recipe comes from the run's own ``config.yaml``, so scoring matches training."""
    run_dir = runs.resolve_run(run or runs.task_dir(app, default_name) / "latest")
    cfg = cfg_type.model_validate(runs.load_run_config(run_dir))
    if not (run_dir / "config.json").exists():
        raise UserError(f"{run_dir} has no model (config.json); was it trained by this version?")
    model = _model_class(head).from_pretrained(str(run_dir)).to(resolve_device(device)).eval()
    tokenizer = load_tokenizer(str(run_dir))
    labels = runs.read_json(run_dir / "labels.json") if (run_dir / "labels.json").exists() else None
    return run_dir, cfg, model, tokenizer, labels


class TorchRunner:
    """Batched inference with the torch model: ``feats → [per-example output arrays]``."""

    def __init__(self, model, head: str):
        self.model, self.outputs = model, _OUTPUTS[head]

    def __call__(self, batch: dict[str, np.ndarray]) -> list[np.ndarray]:
        device = next(self.model.parameters()).device
        with torch.no_grad():
            out = self.model(**{k: torch.as_tensor(v, device=device) for k, v in batch.items()})
        return [out[name].float().cpu().numpy() for name in self.outputs]


class OnnxRunner:
    """The same, over an exported ``model.onnx`` / ``model.int8.onnx``."""

    def __init__(self, path: Path, threads: int | None = None):
        from shared.onnx_export import OnnxSession

        self.session = OnnxSession(path, threads=threads)

    def __call__(self, batch: dict[str, np.ndarray]) -> list[np.ndarray]:
        return self.session.run({k: v for k, v in batch.items() if k in self.session.input_names})


def run_outputs(runner, feats: Sequence[dict], batch_size: int) -> list[tuple[np.ndarray, ...]]:
    """Every output of ``runner`` for each feature, cut back to the feature's own length."""
    results: list[tuple[np.ndarray, ...]] = []
    order = sorted(range(len(feats)), key=lambda i: len(feats[i]["input_ids"]))  # less padding
    by_index: dict[int, tuple[np.ndarray, ...]] = {}
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        batch = collate([{k: feats[i][k] for k in _INPUTS} for i in idx])
        outs = runner({k: v.numpy() for k, v in batch.items()})
        for row, i in enumerate(idx):
            n = len(feats[i]["input_ids"])
            by_index[i] = tuple(o[row, :n] for o in outs)
    results = [by_index[i] for i in range(len(feats))]
    return results


def make_runner(run_dir: Path, model, head: str, backend: str = "torch", threads: int | None = None):
    if backend == "torch":
        if threads:
            torch.set_num_threads(threads)
        return TorchRunner(model, head)
    name = "model.int8.onnx" if backend == "onnx-int8" else "model.onnx"
    return OnnxRunner(run_dir / name, threads)


class _TupleOutputs(torch.nn.Module):
    """ONNX export wants tensors out, not a ModelOutput."""

    def __init__(self, model, names: Sequence[str]):
        super().__init__()
        self.model, self.names = model, list(names)

    def forward(self, input_ids, attention_mask, token_type_ids):
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
        return tuple(out[n] for n in self.names)


def export(run_dir: Path, tokenizer, head: str, opset: int, quantize: bool) -> dict:
    """``model.onnx`` (dynamic batch and sequence axes) and, with ``quantize``, ``model.int8.onnx``;
    reports how far ONNX Runtime is from torch (``max_abs_diff`` of the logits) on a sample."""
    from shared.onnx_export import export_onnx, quantize_int8

    names = _OUTPUTS[head]
    # eager attention traces to plain MatMul/Softmax, which every runtime and the quantiser handle
    model = _model_class(head).from_pretrained(str(run_dir), attn_implementation="eager").eval()
    # trace with padding in the batch, so the attention-mask path is part of the graph
    sample = collate([{k: v for k, v in tokenizer(t).items() if k in _INPUTS}
                      for t in ("示例文本：北京是中国的首都。", "好")])
    example = tuple(sample[k] for k in _INPUTS)
    axes = {k: {0: "batch", 1: "sequence"} for k in (*_INPUTS, *names)}
    path = export_onnx(_TupleOutputs(model.cpu().eval(), names), example, run_dir / "model.onnx",
                       input_names=_INPUTS, output_names=names, dynamic_axes=axes, opset=opset)
    # check on other shapes than the traced sample: a batch of 3, padded to a different length
    check = collate([{k: v for k, v in tokenizer(t).items() if k in _INPUTS}
                     for t in ("短句。", "另一个稍微长一点的句子，用来检查动态长度。", "上海")])
    batch = {k: v.numpy() for k, v in check.items()}
    diff = max(float(np.abs(a - b).max()) for a, b in zip(TorchRunner(model, head)(batch), OnnxRunner(path)(batch)))
    out = {"onnx": str(path), "max_abs_diff": diff}
    if quantize:
        out["onnx_int8"] = str(quantize_int8(path, run_dir / "model.int8.onnx"))
    return out


def read_lines(path: str | None) -> list[str]:
    """Non-empty lines of a text file (``-`` = stdin)."""
    if not path:
        raise UserError("predict needs --input FILE (one text per line; '-' for stdin)")
    if path == "-":
        lines = sys.stdin.read().splitlines()
    else:
        if not Path(path).exists():
            raise UserError(f"input file not found: {path}")
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    lines = [line.strip() for line in lines if line.strip()]
    if not lines:
        raise UserError(f"{path}: no texts found (one per line)")
    return lines


def write_lines(rows: list[dict[str, Any]], output: str | None) -> dict:
    """JSON lines to ``output`` (atomically), or to stdout when ``output`` is ``-`` or missing."""
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    if output and output != "-":
        runs.write_text(output, text)
        return {"output": output, "rows": len(rows)}
    sys.stdout.write(text)
    return {"rows": len(rows)}
