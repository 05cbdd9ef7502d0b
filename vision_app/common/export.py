"""Inference backends for a trained vision model: one callable from a normalised ``NCHW`` float
batch to a NumPy array of logits, whatever runs underneath.

- ``torch`` / ``fp32``: eager PyTorch, the reference.
- ``torch`` / ``bf16``: channels-last layout and bf16 autocast (fast on CPUs with bf16 matmul and on
  GPUs); logits come back as fp32.
- ``onnx``: ONNX Runtime on the run's ``model.onnx`` (written by the ``export`` stage, or on first
  use).
- ``onnx-int8``: ONNX Runtime on ``model.int8.onnx``, static int8 calibrated on the run's own
  images by the ``export`` stage (or on first use); `bench.vision` reports its accuracy against fp32.

``evaluate`` scores with the fp32 reference; ``predict`` and the server use ``cfg.serve``'s
backend, so an offline prediction and a served one are the same computation.
"""
from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from shared.device import set_threads
from shared.onnx_export import OnnxSession, export_onnx, quantize_int8

log = logging.getLogger(__name__)
Engine = Callable[[torch.Tensor], np.ndarray]


def torch_engine(model: torch.nn.Module, precision: str = "fp32", device: str | torch.device = "cpu") -> Engine:
    """Eager PyTorch; ``bf16`` adds channels-last and autocast."""
    device = torch.device(device)
    model = model.eval().to(device)
    channels_last = precision == "bf16"
    if channels_last:
        model = model.to(memory_format=torch.channels_last)

    def run(x: torch.Tensor) -> np.ndarray:
        x = x.to(device)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        ctx = torch.autocast(device.type, dtype=torch.bfloat16) if precision == "bf16" else contextlib.nullcontext()
        with torch.inference_mode(), ctx:
            return model(x).float().cpu().numpy()

    return run


def onnx_engine(path: str | Path, threads: int | None = None) -> Engine:
    session = OnnxSession(path, threads=threads)
    name = session.input_names[0]

    def run(x: torch.Tensor) -> np.ndarray:
        return session.run({name: x.float().contiguous()})[0]

    return run


def export_model(model: torch.nn.Module, run: Path, size: int,
                 calibration: list[torch.Tensor] | None = None) -> dict[str, str]:
    """``run/model.onnx`` (dynamic batch; fixed ``size``² input, as the eval preset resizes to it)
    and, given ``calibration`` batches (real eval-preset images), ``run/model.int8.onnx``: static
    QDQ int8 calibrated on them. Its accuracy is measured by ``bench.vision``, not assumed."""
    example = torch.zeros(1, 3, size, size)
    out = {"onnx": str(export_onnx(model, (example,), run / "model.onnx", input_names=["image"],
                                   output_names=["logits"],
                                   dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}}))}
    if calibration:
        calib = [{"image": b.float().numpy()} for b in calibration]
        out["onnx_int8"] = str(quantize_int8(run / "model.onnx", run / "model.int8.onnx", static_inputs=calib))
    return out


def build_engine(run: Path, load_model: Callable[[], torch.nn.Module], serve_cfg,
                 export: Callable[[], object]) -> Engine:
    """The backend ``serve_cfg`` asks for. A missing ``model.onnx`` / ``model.int8.onnx`` is first
    written by ``export``, the task's export stage (int8 needs its calibration images)."""
    set_threads(serve_cfg.threads)
    if serve_cfg.backend in ("onnx", "onnx-int8"):
        path = run / ("model.int8.onnx" if serve_cfg.backend == "onnx-int8" else "model.onnx")
        if not path.exists():
            log.info("no %s yet: exporting it now", path)
            export()
        return onnx_engine(path, serve_cfg.threads)
    return torch_engine(load_model(), serve_cfg.precision)


def batched(engine: Engine, images: list[torch.Tensor], batch_size: int = 64) -> np.ndarray:
    """Run ``engine`` over a list of ``CHW`` tensors in batches; concatenated outputs."""
    outs = [engine(torch.stack(images[i:i + batch_size])) for i in range(0, len(images), batch_size)]
    return np.concatenate(outs) if outs else np.zeros((0,))
