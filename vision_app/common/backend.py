"""How a trained vision run is run: the :mod:`shared.inference` runner its ``serve:`` section asks
for (``backend`` torch | onnx | onnx-int8, ``precision``, ``threads``), and the ONNX export that
classification and segmentation share.

``evaluate``, ``predict`` and the server all build the runner here, so an offline score, a batch
prediction and a served answer are the same computation; a missing ONNX file is written by the
task's ``export`` stage on first use (the shared missing-file policy).
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch

from shared.inference import Runner, build_runner
from shared.onnx_export import export_onnx, quantize_int8


def run_backend(cfg, run: Path, load_model: Callable[[], torch.nn.Module], export: Callable[[], object],
                forward=None) -> Runner:
    """The runner ``cfg.serve`` names for ``run``, on ``cfg.train.device`` (``auto``: a GPU when there is one)."""
    s = cfg.serve
    return build_runner(run, s.backend, load_model, export, forward=forward, precision=getattr(s, "precision", "fp32"),
                        device=cfg.train.device, threads=s.threads)


def batches(runner: Runner, dataset, batch_size: int) -> Iterator[tuple[range, np.ndarray]]:
    """``(indices, first output)`` per batch of ``dataset`` items' ``"image"`` tensors, in order."""
    for start in range(0, len(dataset), batch_size):
        index = range(start, min(start + batch_size, len(dataset)))
        yield index, runner({"image": torch.stack([dataset[i]["image"] for i in index])})[0]


def dataset_logits(runner: Runner, dataset, batch_size: int) -> np.ndarray:
    """The first output of ``runner`` over all of ``dataset``, concatenated (classification logits)."""
    outs = [out for _, out in batches(runner, dataset, batch_size)]
    return np.concatenate(outs) if outs else np.zeros((0, 0), np.float32)


def image_logits(runner: Runner, images: list[torch.Tensor], batch_size: int = 64) -> np.ndarray:
    """The first output of ``runner`` over preset-transformed ``CHW`` tensors, in batches."""
    return dataset_logits(runner, [{"image": x} for x in images], batch_size)


def export_image_model(model: torch.nn.Module, run: Path, size: int,
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


def calibration_batches(dataset, limit: int, batch_size: int) -> list[torch.Tensor]:
    """The first ``limit`` images of ``dataset`` (eval preset applied) in batches: int8 calibration data."""
    n = min(limit, len(dataset))
    return [torch.stack([dataset[i]["image"] for i in range(j, min(j + batch_size, n))])
            for j in range(0, n, batch_size)]
