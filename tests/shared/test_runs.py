import json

import pytest

from shared import runs
from shared.errors import UserError


def test_latest_and_metrics(tmp_path, monkeypatch):
    monkeypatch.setenv("MLREF_RUNS", str(tmp_path))
    a = runs._create_run(runs.task_dir("app", "task"))
    runs.write_yaml(a / "config.yaml", {"x": 1})
    runs.mark_latest(a)
    b = runs._create_run(runs.task_dir("app", "task"))  # same second, same pid: gets a suffix
    assert b != a
    runs.write_yaml(b / "config.yaml", {"x": 2})
    runs.mark_latest(b)
    assert runs.latest_run("app", "task") == b.resolve()
    assert runs.load_run_config(tmp_path / "app" / "task" / "latest") == {"x": 2}
    runs.update_metrics(b, {"test/auc": 0.9})
    assert runs.update_metrics(b, {"valid/auc": 0.8}) == {"test/auc": 0.9, "valid/auc": 0.8}
    with pytest.raises(UserError, match="no finished run of recipe 'other'"):
        runs.latest_run("app", "other")


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    target = tmp_path / "m.json"
    runs.write_json(target, {"ok": True})
    with pytest.raises(RuntimeError), runs.atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash mid-write")
    assert json.loads(target.read_text()) == {"ok": True}
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]  # no temp file left behind


def test_resolve_run_errors(tmp_path):
    with pytest.raises(UserError, match="not found"):
        runs.resolve_run(tmp_path / "missing")
    with pytest.raises(UserError, match="no config.yaml"):
        runs.resolve_run(tmp_path)


def test_atomic_writes_get_the_usual_file_mode(tmp_path):
    import os
    import stat

    path = runs.write_text(tmp_path / "a.txt", "x")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
