"""kill -9 in the middle of SASRec training, then the same command: it resumes the unfinished run
from its last checkpoint and ends with the metrics of an uninterrupted run of the same seed.

Checkpoints are the recipe's (every epoch end and evaluation). A checkpoint taken mid-epoch
(``train.checkpoint_every_steps``) resumes the weights and counters too, but not bit for bit:
``shared.batching``'s DataLoader draws its base seed from the global RNG each time an epoch's
iterator starts, so a mid-epoch restart shifts the dropout stream by one draw."""
import os
import signal
import subprocess
import sys
import time

import pytest

from shared.runs import read_json, run_status

from .conftest import FILE_KEYS, make_interactions

SASREC = ["model.name=sasrec", "name=resume", "model.sasrec.max_len=8", "model.sasrec.dim=16", "train.epochs=4",
          "train.batch_size=8", "train.progress=false", "train.device=cpu", "eval.plot=false"]


def train_command(data_dir) -> list[str]:
    keys = [f"{k}={v}" for k, v in FILE_KEYS.items()]
    return [sys.executable, "-m", "recsys_app", "train", "--config", "configs/recsys_app/movielens.yaml",
            *keys, f"data.path={data_dir / 'interactions.csv'}", f"data.items_path={data_dir / 'items.csv'}", *SASREC]


def environment(root) -> dict:
    return {**os.environ, "MLREF_RUNS": str(root / "runs"), "MLREF_DATA": str(root / "data"), "OMP_NUM_THREADS": "1"}


@pytest.mark.slow
def test_kill_then_the_same_command_resumes_and_matches_an_uninterrupted_run(tmp_path):
    frame, items = make_interactions(n_users=300, n_items=60)
    frame.to_csv(tmp_path / "interactions.csv", index=False)
    items.to_csv(tmp_path / "items.csv", index=False)
    command = train_command(tmp_path)

    killed, whole = tmp_path / "killed", tmp_path / "whole"
    proc = subprocess.Popen(command, env=environment(killed), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    recipe_dir = killed / "runs" / "recsys_app" / "resume"
    deadline = time.monotonic() + 300
    while not list(recipe_dir.glob("*/checkpoints/last.pt")):
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()  # reaped: its pid is no longer alive
    (run,) = [p for p in recipe_dir.iterdir() if not p.is_symlink()]
    assert run_status(run)["status"] == "running" and not (recipe_dir / "latest").exists()

    subprocess.run(command, env=environment(killed), check=True, capture_output=True)
    assert [p for p in recipe_dir.iterdir() if not p.is_symlink()] == [run]  # the same run, resumed
    status = run_status(run)
    assert status["status"] == "finished" and status["resumed"] == 1
    assert (recipe_dir / "latest").resolve() == run.resolve()

    subprocess.run(command, env=environment(whole), check=True, capture_output=True)
    (reference,) = [p for p in (whole / "runs" / "recsys_app" / "resume").iterdir() if not p.is_symlink()]
    resumed, uninterrupted = read_json(run / "metrics.json"), read_json(reference / "metrics.json")
    quality = [k for k in uninterrupted if k.startswith(("valid/", "test/", "info/best"))]
    assert "test/ndcg@10" in quality
    assert {k: resumed[k] for k in quality} == pytest.approx({k: uninterrupted[k] for k in quality}, abs=1e-6)
    assert resumed["info/steps"] == uninterrupted["info/steps"]
