"""Test-wide setup: runs and data caches go to a temp dir; gpu tests skip without CUDA."""
import os

import pytest


def pytest_configure(config):
    base = config._tmp_path_factory.mktemp("mlref") if hasattr(config, "_tmp_path_factory") else None
    if base is None:
        import tempfile

        base = tempfile.mkdtemp(prefix="mlref-tests-")
    os.environ.setdefault("MLREF_RUNS", os.path.join(str(base), "runs"))
    os.environ.setdefault("MLREF_DATA", os.path.join(str(base), "data"))
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")


def pytest_collection_modifyitems(config, items):
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:
        has_cuda = False
    if has_cuda:
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
