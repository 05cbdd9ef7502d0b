"""The BiLSTM-CRF under torchrun on two CPU processes: the CRF's scores train through the DDP
wrapper, one run directory, and its CRF file and weights agree (rank 0 writes)."""
import os
import subprocess
import sys

import pytest

from shared import runs


@pytest.mark.slow
def test_torchrun_two_cpu_processes_train_the_crf_tagger(tmp_path, recipes):
    path, _ = recipes["ner"]
    env = {**os.environ, "MLREF_RUNS": str(tmp_path / "runs"), "MLREF_DATA": str(tmp_path / "data"),
           "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--standalone",
           "-m", "nlp_app", "train", "--config", path, "train.max_steps=4", "train.epochs=2"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    run_dirs = [p for p in (tmp_path / "runs" / "nlp_app").rglob("*")
                if p.is_dir() and not p.is_symlink() and (p / "run.json").exists()]
    assert len(run_dirs) == 1, run_dirs
    run = run_dirs[0]
    assert runs.load_metrics(run)["train/steps"] == 4
    from safetensors.torch import load_file

    weights = load_file(run / "model.safetensors")
    saved = runs.read_json(run / "crf.json")
    assert weights["crf.transitions"].tolist() == saved["transitions"]
    assert any(v != 0 for row in saved["transitions"] for v in row)  # trained, not the zero start
