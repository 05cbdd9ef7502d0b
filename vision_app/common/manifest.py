"""The preprocess cache of classification and segmentation: ``manifest.json`` (classes, the split
records, counts, a hash of the data) under ``data/cache/vision_app/<recipe>-<hash of data:>/``."""
from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

from shared.config import to_dict
from shared.runs import cache_dir, read_json, write_json

APP = "vision_app"


def manifest_path(cfg) -> Path:
    """Where the manifest of ``cfg``'s data lives (keyed by the task and the ``data:`` section)."""
    return cache_dir(APP, cfg.name, {"task": cfg.task, **to_dict(cfg.data)}) / "manifest.json"


def write_manifest(cfg, classes: list[str], splits: dict[str, list[dict]], extra: dict, hashes: list[str]) -> dict:
    """Write and return the manifest: ``splits`` maps a split to its records."""
    manifest = {
        "task": cfg.task, "classes": classes, "splits": splits,
        "counts": {s: len(v) for s, v in splits.items()},
        "data_sha256": hashlib.sha256("".join(hashes).encode()).hexdigest(),
        "data_config": to_dict(cfg.data), **extra,
    }
    write_json(manifest_path(cfg), manifest)
    return manifest


def load_manifest(cfg, preprocess: Callable) -> dict:
    """The processed data for ``cfg``; runs ``preprocess(cfg)`` first when the cache is missing."""
    path = manifest_path(cfg)
    if not path.exists():
        preprocess(cfg)
    return read_json(path)
