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
pytestmark = pytest.mark.slow


def _env(root: Path) -> dict:
    return {**os.environ, "MLREF_RUNS": str(root / "runs"), "MLREF_DATA": str(root.parent / "data"),
            "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def _run_dirs(root: Path) -> list[Path]:
    base = root / "runs" / "nlp_app" / "sentiment"
    return sorted(p for p in base.iterdir() if p.is_dir() and not p.is_symlink()) if base.exists() else []


def _test_metrics(run: Path) -> dict:
    return {k: v for k, v in runs.load_metrics(run).items() if k.startswith("test/") and "per_second" not in k}


@pytest.fixture(scope="module")
def runs_pair(tmp_path_factory) -> dict:
    """An uninterrupted run, and a run killed (-9) after its first checkpoint then re-run by the same command."""
    tmp = tmp_path_factory.mktemp("resume")
    whole, killed = tmp / "whole", tmp / "killed"
    subprocess.run(CMD, env=_env(whole), check=True, capture_output=True, timeout=1200)
    proc = subprocess.Popen(CMD, env=_env(killed), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 900
    while not any((r / "models" / "bert" / "checkpoints" / "last.pt").exists() for r in _run_dirs(killed)):
        assert proc.poll() is None, "training ended before its first checkpoint"
        assert time.monotonic() < deadline, "no checkpoint in 15 minutes"
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    (run,) = _run_dirs(killed)
    status_after_kill = runs.run_status(run)
    latest_after_kill = (run.parent / "latest").exists()
    subprocess.run(CMD, env=_env(killed), check=True, capture_output=True, timeout=1200)
    return {"reference": _run_dirs(whole)[0], "run": run, "dirs": _run_dirs(killed),
            "status_after_kill": status_after_kill, "latest_after_kill": latest_after_kill}


def test_the_same_command_resumes_the_killed_run(runs_pair):
    run = runs_pair["run"]
    assert runs_pair["status_after_kill"]["status"] == "running" and not runs_pair["latest_after_kill"]
    assert runs_pair["dirs"] == [run]  # the same run directory, no second one
    status = runs.run_status(run)
    assert status["status"] == "finished" and status["resumed"] == 1
    assert (run.parent / "latest").resolve() == run
    assert _test_metrics(runs_pair["reference"]).keys() == _test_metrics(run).keys()


def test_the_resumed_run_ends_with_the_uninterrupted_metrics(runs_pair):
    expected, got = _test_metrics(runs_pair["reference"]), _test_metrics(runs_pair["run"])
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, abs=1e-6), key
