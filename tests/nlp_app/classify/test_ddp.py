"""DDP on two CPU processes under torchrun: the same ``train`` command, one run directory (rank 0
creates it and hands it to rank 1; only rank 0 writes)."""
import os
import subprocess
import sys

import pytest

from shared import runs

TINY = ["data.max_examples=300", "model.hidden_size=32", "model.num_layers=1", "model.num_heads=2",
        "model.intermediate_size=64", "model.max_length=48", "train.batch_size=8", "train.max_steps=4",
        "train.device=cpu", "train.progress=false"]


@pytest.mark.slow
def test_torchrun_two_cpu_processes_leave_one_run(tmp_path):
    env = {**os.environ, "MLREF_RUNS": str(tmp_path / "runs"), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--standalone",
           "-m", "nlp_app", "train", "--config", "configs/nlp_app/sentiment-quick.yaml", *TINY]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    run_dirs = [p for p in (tmp_path / "runs" / "nlp_app").rglob("*")
                if p.is_dir() and not p.is_symlink() and (p / "run.json").exists()]
    assert len(run_dirs) == 1, run_dirs  # one run, not one per rank
    run = run_dirs[0]
    assert runs.run_status(run)["status"] == "finished" and (run.parent / "latest").resolve() == run
    metrics = runs.load_metrics(run)
    assert metrics["train/steps"] == 4 and 0 <= metrics["test/accuracy"] <= 1
    assert (run / "models" / "bert" / "model.safetensors").exists() and (run / "README.md").exists()
    assert done.stdout.count('"run":') == 1  # the summary is printed once, by rank 0
