"""classify-quick as a user runs it, in subprocesses (``slow``): killed with SIGKILL during training,
the same command resumes the unfinished run and ends with the metrics of an uninterrupted run of
the same seed; under ``torchrun --nproc_per_node=2`` on CPU it leaves exactly one run directory.

Checkpoints are the recipe's (every epoch end, after validation), so the resumed run replays the
same batches, augmentations and updates as the uninterrupted one."""
import os
import signal
import subprocess
import sys
import time

import pytest

from shared.runs import read_json, run_status

QUICK = ["--config", "configs/vision_app/classify-quick.yaml", "train.progress=false", "train.device=cpu"]


def environment(root, data) -> dict:
    return {**os.environ, "MLREF_RUNS": str(root / "runs"), "MLREF_DATA": str(data), "OMP_NUM_THREADS": "1"}


def run_dirs(root):
    recipe = root / "runs" / "vision_app" / "classify"
    return sorted(p for p in recipe.iterdir() if not p.is_symlink()) if recipe.exists() else []


@pytest.mark.slow
def test_kill_then_the_same_command_resumes_with_the_metrics_of_an_uninterrupted_run(tmp_path):
    command = [sys.executable, "-m", "vision_app", "train", *QUICK]
    data, killed, whole = tmp_path / "data", tmp_path / "killed", tmp_path / "whole"
    subprocess.run(command, env=environment(whole, data), check=True, capture_output=True, timeout=900)

    proc = subprocess.Popen(command, env=environment(killed, data), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 600
    while not any((run / "checkpoints" / "last.pt").exists() for run in run_dirs(killed)):
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    (run,) = run_dirs(killed)
    assert run_status(run)["status"] == "running" and not (run.parent / "latest").exists()

    subprocess.run(command, env=environment(killed, data), check=True, capture_output=True, timeout=900)
    assert run_dirs(killed) == [run]  # the same run directory, resumed
    status = run_status(run)
    assert status["status"] == "finished" and status["resumed"] == 1
    assert (run.parent / "latest").resolve() == run.resolve()

    (reference,) = run_dirs(whole)
    resumed, uninterrupted = read_json(run / "metrics.json"), read_json(reference / "metrics.json")
    quality = [k for k in uninterrupted if k.startswith(("valid/", "test/")) and "seconds" not in k]
    assert "test/accuracy" in quality and "valid/accuracy" in quality
    assert {k: resumed[k] for k in quality} == pytest.approx({k: uninterrupted[k] for k in quality}, abs=1e-9)
    assert resumed["train/steps"] == uninterrupted["train/steps"]


@pytest.mark.slow
def test_torchrun_two_cpu_processes_leave_one_run_directory(tmp_path):
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--standalone",
               "-m", "vision_app", "train", *QUICK, "train.epochs=1", "eval.svm_baseline=false"]
    done = subprocess.run(command, env=environment(tmp_path, tmp_path / "data"), capture_output=True, text=True,
                          timeout=900, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    (run,) = run_dirs(tmp_path)  # one run, begun by rank 0 and handed to rank 1
    assert run_status(run)["status"] == "finished"
    metrics = read_json(run / "metrics.json")
    assert 0 <= metrics["test/accuracy"] <= 1 and "valid/accuracy" in metrics
    assert (run / "model.safetensors").exists() and (run / "confusion_test.png").exists()
