"""Run directories, atomic artifact writes and loading a run back.

A run lives in ``runs/<app>/<task>/<run-id>/`` and ``runs/<app>/<task>/latest`` points at the
newest one. Every artifact is written to a temporary file in the same directory and renamed
into place, so a crash never leaves a half-written file where a good one was.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import platform
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from shared import tracking
from shared.errors import UserError

log = logging.getLogger(__name__)
_UMASK = os.umask(0)
os.umask(_UMASK)  # read once: mkstemp creates 0600 files, artifacts should get the usual mode


def home() -> Path:
    """Where mlref keeps what it makes: ``$MLREF_HOME``, else the current directory (a checkout)."""
    return Path(os.environ.get("MLREF_HOME", "."))


def runs_root() -> Path:
    """Where runs go: ``$MLREF_RUNS``, else ``$MLREF_HOME/runs`` (read on each call so tests can redirect it)."""
    return Path(os.environ.get("MLREF_RUNS") or home() / "runs")


def data_root() -> Path:
    """Where caches and generated data go: ``$MLREF_DATA``, else ``$MLREF_HOME/data``."""
    return Path(os.environ.get("MLREF_DATA") or home() / "data")


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


def _create_run(base: Path) -> Path:
    run_id = new_run_id()
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


# --- the run lifecycle: start_run / finish_run are the only way a run begins and ends ----------

TEST_SPLIT = "test-split"  # evaluations/<this>/: the run's own test split, re-scored
RUN_FILE = "run.json"  # status (running | finished), config digest, command, owner pid, times


def config_digest(config: dict) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()


def run_status(run: Path) -> dict:
    """The run's ``run.json``; a run without one predates the lifecycle and counts as finished."""
    path = Path(run) / RUN_FILE
    if not path.exists():
        return {"status": "finished"}
    try:
        return read_json(path)
    except (OSError, ValueError):
        raise UserError(f"{path} is unreadable or not JSON; delete that run or pass another --run") from None


def _pid_alive(pid: int | None) -> bool:
    if not pid or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _resumable(base: Path, digest: str) -> Path | None:
    """The newest unfinished run under ``base`` made from the same config, not held by a live process."""
    if not base.is_dir():
        return None
    for run in sorted((p for p in base.iterdir() if p.is_dir() and not p.is_symlink()), reverse=True):
        status = run_status(run)
        if (status.get("status") == "running" and status.get("config_sha256") == digest
                and not (status.get("host") == platform.node() and _pid_alive(status.get("pid")))):
            return run
    return None


def _rank() -> int:
    return int(os.environ.get("RANK", "0"))


def _share_from_rank0(value: Any) -> Any:
    """Rank 0's ``value`` on every rank under ``torchrun`` (the CLI joined the process group)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return value
    from shared.distributed import broadcast_object

    return broadcast_object(value)


def start_run(app: str, cfg, run: str | os.PathLike | None = None, suffix: str = "") -> Path:
    """Begin or resume a run of recipe ``cfg`` and return its directory (on every rank).

    ``run`` given: resume that run (a finished run is refused: it is never overwritten). Otherwise
    the newest unfinished run of the same recipe and the same resolved config is resumed, else a new
    ``runs/<app>/<name>[-<suffix>]/<run-id>/`` is made. Rank 0 decides and writes ``config.yaml``
    and ``run.json``; the other ranks receive the path.
    """
    from shared.config import to_dict

    config = to_dict(cfg)
    path = None
    if _rank() == 0:
        path = str(_open_run(app, config, run, suffix))
        tracking.begin(app, Path(path), config)  # a no-op unless $MLREF_TRACKING asks for one
    return Path(_share_from_rank0(path))


def _open_run(app: str, config: dict, run: str | os.PathLike | None, suffix: str) -> Path:
    digest = config_digest(config)
    if run is not None:
        path = resolve_run(run)
        status = run_status(path)
        if status.get("status") == "finished":
            raise UserError(f"{path} is a finished run and is never overwritten; "
                            "train without --run to start a new one")
        if status.get("host") == platform.node() and _pid_alive(status.get("pid")):
            raise UserError(f"{path} is being trained by another process (pid {status['pid']}); "
                            "wait for it or stop it first")
    else:
        name = config["name"] + (f"-{suffix}" if suffix else "")
        path = _resumable(task_dir(app, name), digest)
        path = path or _create_run(task_dir(app, name))
    resumed = (path / "config.yaml").exists()
    if resumed:
        log.info("resuming the unfinished run %s", path)
    write_yaml(path / "config.yaml", config)
    status = run_status(path) if resumed else {}
    write_json(path / RUN_FILE, {
        "app": app, "task": config.get("task"), "recipe": config.get("name"), "status": "running",
        "config_sha256": digest, "command": status.get("command", _command(app)),
        "started": status.get("started", _now()), "resumed": status.get("resumed", 0) + int(resumed),
        "host": platform.node(), "pid": os.getpid(),
    })
    return path


def finish_run(run: str | os.PathLike, cfg, result: dict) -> dict:
    """End a run: merge the numeric ``split/metric`` keys of ``result`` into ``metrics.json``,
    write the model card (``README.md``; ``result["card"]`` adds the task's own section), mark the
    run finished and point ``latest`` at it. Returns ``result`` without ``card``. Rank 0 only
    writes; every rank returns."""
    result = dict(result)
    notes = result.pop("card", "")
    if _rank() != 0:
        return result
    from shared.cards import write_model_card
    from shared.config import to_dict

    run = Path(run)
    numeric = {k: float(v) for k, v in result.items()
               if "/" in k and isinstance(v, (int, float)) and not isinstance(v, bool)}
    metrics = update_metrics(run, numeric)
    status = run_status(run)
    write_model_card(run, to_dict(cfg), metrics, status, notes)
    write_json(run / RUN_FILE, {**status, "status": "finished", "finished": _now(), "pid": None})
    mark_latest(run)
    tracking.end(run, metrics)  # last: the tracker copies the finished run folder
    return result


def _command(app: str) -> str:
    if sys.argv and sys.argv[0].endswith("__main__.py"):
        return " ".join([f"python -m {app}", *sys.argv[1:]])
    return " ".join(sys.argv)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def latest_run(app: str, name: str) -> Path:
    """``runs/<app>/<name>/latest``, resolved; a clear error when the recipe was never trained."""
    link = task_dir(app, name) / "latest"
    if not link.exists():
        raise UserError(f"no finished run of recipe {name!r} under {link.parent}: train it first, "
                        "or pass --run runs/<app>/<recipe>/<run-id>")
    return resolve_run(link)


def evaluation_dir(run: str | os.PathLike, data: str | os.PathLike | None) -> Path:
    """Where ``evaluate`` writes: ``<run>/evaluations/test-split/`` for the run's own test split
    (``data`` None), else ``<run>/evaluations/<file stem>/`` for a user's file — one folder per file,
    and a file of the same stem from elsewhere gets ``<stem>-2`` … instead of overwriting it. The
    run's own ``metrics.json`` is written by ``train`` only, so re-scoring with other overrides
    (a threshold, a backend) never rewrites what the run recorded."""
    if data is None:
        out = Path(run) / "evaluations" / TEST_SPLIT
        out.mkdir(parents=True, exist_ok=True)
        return out
    data = Path(data).resolve()
    base = Path(run) / "evaluations"
    for i in range(1, 1000):
        out = base / (data.stem if i == 1 else f"{data.stem}-{i}")
        source = out / "source.json"
        if not out.exists() or (source.exists() and read_json(source).get("path") == str(data)):
            out.mkdir(parents=True, exist_ok=True)
            write_json(source, {"path": str(data), "sha256": file_sha256(data) if data.is_file() else None})
            return out
    raise UserError(f"too many evaluations named {data.stem} in {base}")


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
