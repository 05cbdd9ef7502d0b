"""One way to run a trained torch model for predictions, whatever runs underneath.

Every torch task's ``evaluate``, ``predict`` and ``serve`` builds a :class:`Runner` with
:func:`build_runner` and calls it with a dict of named inputs (NumPy arrays or tensors, batch
first); it returns the model's outputs as a **list** of NumPy arrays, in the order of the ONNX
graph's ``output_names`` (a one-output model gives a one-element list)::

    runner = build_runner(run, cfg.serve.backend, load_model=lambda: load_model(run, cfg),
                          export=lambda: export(cfg, run), precision=cfg.serve.precision)
    logits, = runner({"image": batch})                      # one call, one batch
    logits, = batched(runner, {"image": images}, 64)        # many rows, cut into batches

Backends (:data:`BACKENDS`):

- ``torch``: eager PyTorch, the reference. ``precision="bf16"`` adds bf16 autocast and a
  channels-last layout for image batches (fast on CPUs with bf16 matmul and on GPUs); outputs
  come back as fp32.
- ``onnx``: ONNX Runtime on the run's ``model.onnx``.
- ``onnx-int8``: ONNX Runtime on the run's ``model.int8.onnx``.

The missing-file policy, the same for every task: an ONNX file the run lacks is written on first
use by the task's ``export`` stage (logged); a task without one gets a :class:`UserError` naming
the command to run. A damaged file (truncated weights or ONNX graph) is a one-line
:class:`UserError` naming the file, never a traceback.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from safetensors import SafetensorError

from shared.device import autocast, resolve_device, resolve_precision, set_threads
from shared.errors import UserError
from shared.onnx_export import OnnxSession

log = logging.getLogger(__name__)

BACKENDS = ("torch", "onnx", "onnx-int8")
ONNX_FILES = {"onnx": "model.onnx", "onnx-int8": "model.int8.onnx"}
Inputs = Mapping[str, "np.ndarray | torch.Tensor"]
Forward = Callable[[torch.nn.Module, dict[str, torch.Tensor]], Any]


class Runner(Protocol):
    """Named, batch-first inputs in; the model's outputs out, as a list of NumPy arrays."""

    backend: str

    def __call__(self, inputs: Inputs) -> list[np.ndarray]: ...


def _default_forward(model: torch.nn.Module, inputs: dict[str, torch.Tensor]) -> Any:
    # One input: positional, so its name need not match the forward() argument ("image" vs "x").
    if len(inputs) == 1:
        return model(next(iter(inputs.values())))
    return model(**inputs)


def _as_list(out: Any) -> list[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, (tuple, list)):
        return list(out)
    raise TypeError(f"forward returned {type(out).__name__}; return a tensor or a tuple of tensors "
                    "(pass forward= to pick them, e.g. lambda m, x: (m(**x).logits,))")


class TorchRunner:
    """Eager PyTorch under ``inference_mode``; ``precision`` ``fp32``, ``bf16``, ``fp16`` or ``auto``."""

    backend = "torch"

    def __init__(self, model: torch.nn.Module, *, forward: Forward | None = None, precision: str = "fp32",
                 device: str | torch.device = "cpu", channels_last: bool | None = None):
        self.device = resolve_device(str(device))
        self.precision = resolve_precision(precision, self.device)
        # channels-last pays off with reduced-precision convolutions; fp32 keeps the reference layout
        self.channels_last = self.precision == "bf16" if channels_last is None else channels_last
        self.model = model.eval().to(self.device)
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.forward = forward or _default_forward

    def _tensor(self, value: Any) -> torch.Tensor:
        x = torch.as_tensor(value).to(self.device)
        if self.channels_last and x.dim() == 4 and x.is_floating_point():
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def __call__(self, inputs: Inputs) -> list[np.ndarray]:
        feed = {name: self._tensor(value) for name, value in inputs.items()}
        with torch.inference_mode(), autocast(self.device, self.precision):
            outs = _as_list(self.forward(self.model, feed))
        return [o.float().cpu().numpy() for o in outs]


class OnnxRunner:
    """ONNX Runtime on one ``.onnx`` file; inputs the graph does not take are dropped."""

    def __init__(self, path: str | Path, *, backend: str = "onnx", threads: int | None = None,
                 device: str | torch.device = "cpu"):
        cuda = resolve_device(str(device)).type == "cuda"
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if cuda else None
        self.session = OnnxSession(path, threads=threads, providers=providers)
        self.backend, self.path = backend, Path(path)

    def __call__(self, inputs: Inputs) -> list[np.ndarray]:
        wanted = self.session.input_names
        missing = [name for name in wanted if name not in inputs]
        if missing:
            raise ValueError(f"{self.path.name} needs inputs {missing}; got {sorted(inputs)}")
        return self.session.run({name: inputs[name] for name in wanted})


def onnx_file(run: str | Path, backend: str) -> Path:
    """Where ``backend``'s graph lives in ``run``: ``model.onnx`` or ``model.int8.onnx``."""
    return Path(run) / ONNX_FILES[backend]


def ensure_onnx(run: str | Path, backend: str, export: Callable[[], object] | None,
                export_command: str | None = None) -> Path:
    """The run's ONNX file for ``backend``, written first by ``export`` when it is missing."""
    path = onnx_file(run, backend)
    if path.exists():
        return path
    if export is None:
        how = f"run `{export_command}` first" if export_command else "this task has no export stage"
        raise UserError(f"{path} not found: {how}; or use backend=torch")
    log.info("no %s yet: exporting it now with the task's export stage", path)
    export()
    if not path.exists():  # e.g. an export configured to skip int8
        raise UserError(f"the export stage did not write {path.name} (check the export settings); "
                        f"or use backend={'onnx' if backend == 'onnx-int8' else 'torch'}")
    return path


def _load_torch(run: Path, load_model: Callable[[], torch.nn.Module]) -> torch.nn.Module:
    try:
        return load_model()
    except (SafetensorError, EOFError) as exc:  # a truncated file: name it, do not dump a traceback
        weights = run / "model.safetensors"
        where = weights if weights.exists() else run
        raise UserError(f"cannot read the model weights in {where} ({str(exc).splitlines()[0]}); "
                        "the file is damaged: train again or restore it") from None


def build_runner(run: str | Path, backend: str, load_model: Callable[[], torch.nn.Module],
                 export: Callable[[], object] | None, *, forward: Forward | None = None,
                 precision: str = "fp32", device: str | torch.device = "cpu", threads: int | None = None,
                 export_command: str | None = None) -> Runner:
    """The ``backend`` runner for ``run``.

    ``load_model()`` returns the trained torch module (called for ``torch`` only); ``export()``
    is the task's export stage bound to this run, called when the ONNX file is missing (``None``:
    the task has none, and a missing file is a :class:`UserError` naming ``export_command`` if
    given). ``forward(model, inputs)`` maps the input dict to a tensor or tuple of tensors in the
    ONNX output order (default: ``model(x)`` for one input, else ``model(**inputs)``).
    ``precision`` and ``forward`` apply to ``torch`` only; ``threads`` caps CPU threads for both.
    """
    if backend not in BACKENDS:
        raise UserError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
    run = Path(run)
    set_threads(threads)
    if backend == "torch":
        return TorchRunner(_load_torch(run, load_model), forward=forward, precision=precision, device=device)
    return OnnxRunner(ensure_onnx(run, backend, export, export_command), backend=backend, threads=threads,
                      device=device)


def batched(runner: Runner, inputs: Inputs, batch_size: int = 64) -> list[np.ndarray]:
    """Run ``runner`` over ``inputs`` (equal-length, batch-first) ``batch_size`` rows at a time;
    each output concatenated over the batches. No rows: an empty list (the runner is not called)."""
    n = len(next(iter(inputs.values()))) if inputs else 0
    outs: list[Sequence[np.ndarray]] = [
        runner({name: value[i:i + batch_size] for name, value in inputs.items()})
        for i in range(0, n, batch_size)
    ]
    return [np.concatenate(parts) for parts in zip(*outs)]
