"""Where every vision ``evaluate`` writes, and under which keys.

``evaluate`` never writes the run's own ``metrics.json``: that is train's record (``train`` scores
the test split and returns the metrics; :func:`shared.runs.finish_run` writes them). ``evaluate``
writes into :func:`shared.runs.evaluation_dir`: the test split re-scored into
``<run>/evaluations/test-split/``, a user's file into ``<run>/evaluations/<file stem>/``, each a
``metrics.json`` plus the task's plots.

Keys are ``test/…`` (or ``data/…`` for a file) when scored with the reference backend (torch fp32),
``test-<backend>/…`` (``data-<backend>/…``) with another, e.g. ``test-onnx-int8/accuracy``: the
folder's ``metrics.json`` keeps every backend scored on it side by side, none over another.
"""
from __future__ import annotations

from pathlib import Path

from shared.runs import read_json, write_json


def split_name(cfg, base: str = "test") -> str:
    """The key prefix of a score: ``base`` for the reference (torch fp32), else
    ``<base>-<backend>[-<precision>]``, so scoring a served backend never overwrites the reference."""
    backend, precision = cfg.serve.backend, getattr(cfg.serve, "precision", "fp32")
    if backend == "torch" and precision == "fp32":
        return base
    return f"{base}-{backend}" + (f"-{precision}" if backend == "torch" else "")


def write_evaluation(out: Path, metrics: dict) -> dict:
    """Merge ``metrics`` into ``out/metrics.json`` (other backends' keys stay); returns the file's content."""
    path = Path(out) / "metrics.json"
    merged = read_json(path) if path.is_file() else {}
    merged.update(metrics)
    write_json(path, dict(sorted(merged.items())))
    return merged


def summary(metrics: dict, out: Path, digits: int | None = None) -> dict:
    """What the ``evaluate`` stage returns: the headline (``split/metric``) keys and where they went."""
    top = {k: (round(v, digits) if digits is not None else v) for k, v in metrics.items() if k.count("/") == 1}
    return {**top, "evaluation": str(out)}
