"""kill -9 in the middle of training, then the same command: it resumes the same run directory
from its last checkpoint and ends with the same test metrics as an uninterrupted run of the seed."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from shared import runs

CMD = [sys.executable, "-m", "nlp_app", "train", "--config", "configs/nlp_app/sentiment-quick.yaml", "train.seed=0",
       "train.checkpoint_every_steps=5", "train.progress=false"]


def _env(root: Path) -> dict:
    return {**os.environ, "MLREF_RUNS": str(root / "runs"), "MLREF_DATA": str(root.parent / "data"),
            "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def _run_dirs(root: Path) -> list[Path]:
    base = root / "runs" / "nlp_app" / "sentiment"
    return sorted(p for p in base.iterdir() if p.is_dir() and not p.is_symlink()) if base.exists() else []


def _test_metrics(run: Path) -> dict:
    return {k: v for k, v in runs.load_metrics(run).items() if k.startswith("test/") and "per_second" not in k}


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason=(
    "shared.batching: each epoch's DataLoader iterator draws its base seed from the global torch RNG, "
    "so a resumed run (RNG restored, then the iterator made) gets shifted dropout masks; giving the "
    "loaders their own torch.Generator makes the resumed metrics equal (checked). Drop this mark then."))
def test_kill_9_then_the_same_command_resumes_and_matches_an_uninterrupted_run(tmp_path):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    subprocess.run(CMD, env=_env(whole), check=True, capture_output=True, timeout=1200)

    proc = subprocess.Popen(CMD, env=_env(killed), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 900
    while not any((r / "checkpoints" / "last.pt").exists() for r in _run_dirs(killed)):
        assert proc.poll() is None, "training ended before its first checkpoint"
        assert time.monotonic() < deadline, "no checkpoint in 15 minutes"
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    (run,) = _run_dirs(killed)
    assert runs.run_status(run)["status"] == "running" and not (run.parent / "latest").exists()

    subprocess.run(CMD, env=_env(killed), check=True, capture_output=True, timeout=1200)
    assert _run_dirs(killed) == [run]  # the same run directory, finished
    status = runs.run_status(run)
    assert status["status"] == "finished" and status["resumed"] == 1
    (reference,) = _run_dirs(whole)
    expected, got = _test_metrics(reference), _test_metrics(run)
    assert expected.keys() == got.keys()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, abs=1e-6), key
