"""Run directories, atomic artifact writes and loading a run back.

A run lives in ``runs/<app>/<task>/<run-id>/`` and ``runs/<app>/<task>/latest`` points at the
newest one. Every artifact is written to a temporary file in the same directory and renamed
into place, so a crash never leaves a half-written file where a good one was.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

import yaml

from shared.errors import UserError



_UMASK = os.umask(0)
os.umask(_UMASK)  # read once: mkstemp creates 0600 files, artifacts should get the usual mode


def runs_root() -> Path:
    """Where runs go: ``$MLREF_RUNS`` or ``./runs`` (read on each call so tests can redirect it)."""
    return Path(os.environ.get("MLREF_RUNS", "runs"))


def data_root() -> Path:
    """Where caches and generated data go: ``$MLREF_DATA`` or ``./data``."""
    return Path(os.environ.get("MLREF_DATA", "data"))


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on a clean exit rename it onto ``path``.

    Use it with any library that writes to a filename:
    ``with atomic_path(p) as tmp: booster.save_model(tmp)``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix or ".tmp")
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.exists():
            os.chmod(tmp_path, 0o666 & ~_UMASK)
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Atomically write bytes to ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Atomically write UTF-8 text to ``path``."""
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Atomically write ``obj`` as indented JSON (non-ASCII kept readable)."""
    return write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, default=_json_default) + "\n")


def write_yaml(path: str | os.PathLike, obj: Any) -> Path:
    """Atomically write ``obj`` as YAML."""
    return write_text(path, yaml.safe_dump(obj, sort_keys=False, allow_unicode=True))


def read_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _json_default(obj: Any) -> Any:
    # numpy scalars and arrays, paths
    if hasattr(obj, "item") and callable(obj.item) and getattr(obj, "ndim", 0) == 0:
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def cache_dir(app: str, recipe: str, key: Any) -> Path:
    """``data/cache/<app>/<recipe>-<hash>/``: processed data keyed by the config that made it
    (``key`` is any JSON-able description of the inputs, usually the ``data`` section)."""
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:12]
    return data_root() / "cache" / app / f"{recipe}-{digest}"


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def new_run_id() -> str:
    """A sortable, unique-enough id: UTC time plus the process id."""
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + f"-{os.getpid() % 100000:05d}"


def task_dir(app: str, task: str, root: str | os.PathLike | None = None) -> Path:
    return Path(root or runs_root()) / app / task


def create_run(app: str, task: str, root: str | os.PathLike | None = None, run_id: str | None = None) -> Path:
    """Create and return a fresh ``runs/<app>/<task>/<run-id>/`` directory."""
    base = task_dir(app, task, root)
    run_id = run_id or new_run_id()
    run = base / run_id
    suffix = 1
    while run.exists():
        run = base / f"{run_id}-{suffix}"
        suffix += 1
    run.mkdir(parents=True)
    return run


def mark_latest(run: str | os.PathLike) -> Path:
    """Point ``<task dir>/latest`` at ``run`` (a relative symlink, swapped atomically)."""
    run = Path(run)
    link = run.parent / "latest"
    tmp = run.parent / f".latest.{os.getpid()}"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(run.name, tmp)
    os.replace(tmp, link)
    return link


def resolve_run(run: str | os.PathLike) -> Path:
    """Turn a run argument (a directory, or a ``latest`` link) into the real run directory."""
    path = Path(run)
    if not path.exists():
        raise UserError(f"run directory not found: {path} (train first, or pass --run runs/<app>/<task>/<id>)")
    path = path.resolve()
    if not (path / "config.yaml").exists():
        raise UserError(f"{path} is not a run directory: it has no config.yaml")
    return path


def load_run_config(run: str | os.PathLike) -> dict:
    """The resolved config a run was trained with, as a plain dict."""
    return yaml.safe_load((resolve_run(run) / "config.yaml").read_text(encoding="utf-8"))


def load_metrics(run: str | os.PathLike) -> dict:
    path = resolve_run(run) / "metrics.json"
    return read_json(path) if path.exists() else {}


def update_metrics(run: str | os.PathLike, new: dict[str, float]) -> dict:
    """Merge ``new`` (``split/metric`` keys) into the run's ``metrics.json`` and return the result."""
    run = Path(run)
    merged = load_metrics(run) if (run / "config.yaml").exists() else {}
    merged.update(new)
    write_json(run / "metrics.json", dict(sorted(merged.items())))
    return merged


def append_jsonl(path: str | os.PathLike, record: dict) -> None:
    """Append one JSON line (history logs; append is safe enough for a single writer)."""
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record, ensure_ascii=False, default=_json_default) + "\n")
