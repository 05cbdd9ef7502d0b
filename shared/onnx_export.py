"""ONNX export, int8 quantisation and an ONNX Runtime session wrapper, for any torch model.

::

    export_onnx(model, (example,), run / "model.onnx", input_names=["image"], output_names=["logits"],
                dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}})
    quantize_int8(run / "model.onnx", run / "model.int8.onnx")        # dynamic: weights int8
    session = OnnxSession(run / "model.onnx", threads=2)
    logits, = session.run({"image": batch.numpy()})

Export uses the TorchScript-based exporter (``dynamo=False``): it handles every model in this repo,
needs no extra packages at run time, and its dynamic batch axis is simple to declare. The file is
written atomically and checked with ``onnx.checker``.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from shared.errors import UserError
from shared.runs import atomic_path

log = logging.getLogger(__name__)


def export_onnx(model: torch.nn.Module, example_inputs: tuple, path: str | os.PathLike, *,
                input_names: Sequence[str], output_names: Sequence[str],
                dynamic_axes: Mapping[str, Mapping[int, str]] | None = None, opset: int = 17) -> Path:
    """Trace ``model`` (in eval mode, on the CPU, fp32) with ``example_inputs`` into ``path``."""
    import onnx

    path = Path(path)
    model = model.eval().to("cpu").float()
    inputs = tuple(x.to("cpu").contiguous() if isinstance(x, torch.Tensor) else x for x in example_inputs)
    with atomic_path(path) as tmp, torch.no_grad():
        torch.onnx.export(model, inputs, str(tmp), input_names=list(input_names), output_names=list(output_names),
                          dynamic_axes=dict(dynamic_axes or {}), opset_version=opset, dynamo=False)
        onnx.checker.check_model(str(tmp))
    log.info("wrote %s (%.1f MB)", path, path.stat().st_size / 1e6)
    return path


def quantize_int8(src: str | os.PathLike, dst: str | os.PathLike, *, static_inputs: Sequence[Mapping] | None = None,
                  per_channel: bool = True) -> Path:
    """Write an int8 copy of ``src``. Without ``static_inputs``: dynamic quantisation (weights int8,
    activations quantised on the fly; best for MatMul-heavy models such as transformers). With a
    few representative input dicts: static QDQ quantisation (convolutions too; calibrated on them)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic, quantize_static
    from onnxruntime.quantization.calibrate import CalibrationDataReader
    from onnxruntime.quantization.shape_inference import quant_pre_process

    src, dst = Path(src), Path(dst)
    with atomic_path(dst) as tmp:
        prepared = tmp.with_name(tmp.stem + ".pre.onnx")
        try:
            quant_pre_process(str(src), str(prepared), skip_symbolic_shape=True)
        except Exception:  # noqa: BLE001 - pre-processing is an optimisation; quantise the original if it fails
            prepared = src
        try:
            if static_inputs is None:
                quantize_dynamic(str(prepared), str(tmp), weight_type=QuantType.QInt8, per_channel=per_channel)
            else:
                class _Reader(CalibrationDataReader):
                    def __init__(self, items):
                        self._it = iter(items)

                    def get_next(self):
                        return next(self._it, None)

                quantize_static(str(prepared), str(tmp), _Reader(list(static_inputs)), per_channel=per_channel,
                                activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
        finally:
            if prepared != src and prepared.exists():
                prepared.unlink()
    log.info("wrote %s (%.1f MB)", dst, dst.stat().st_size / 1e6)
    return dst


class OnnxSession:
    """An ONNX Runtime CPU (or CUDA, when asked and available) session with a small API."""

    def __init__(self, path: str | os.PathLike, threads: int | None = None, providers: Sequence[str] | None = None):
        import onnxruntime as ort
        from onnxruntime.capi import onnxruntime_pybind11_state as ort_errors

        path = Path(path)
        if not path.exists():
            raise UserError(f"ONNX model not found: {path} (run the export stage first)")
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
        available = ort.get_available_providers()
        wanted = [p for p in (providers or ["CPUExecutionProvider"]) if p in available] or ["CPUExecutionProvider"]
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=wanted)
        except (ort_errors.InvalidProtobuf, ort_errors.InvalidGraph, ort_errors.Fail) as exc:
            # a truncated or foreign file: one line naming it, not ONNX Runtime's traceback
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise UserError(f"cannot load ONNX model {path} ({reason[:200]}); the file is damaged: "
                            "delete it and run the export stage again") from None
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.path = path

    def run(self, inputs: Mapping[str, Any]) -> list[np.ndarray]:
        """Run with ``{input name: array}``; returns the outputs in ``output_names`` order."""
        feed = {k: (v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v)) for k, v in inputs.items()}
        return self.session.run(self.output_names, feed)
