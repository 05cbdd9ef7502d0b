"""The task contract as tabular_mining users meet it: every task × stage pair either works on a
small run or is one line and exit status 2; stages after train take the run (``--run``, no
``--config``) and honour overrides; ``evaluate --data`` writes ``evaluations/<stem>/`` and leaves
the run's own metrics alone; recipes load; no command imports torch unless it trains or runs an
FT-Transformer."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from fastapi.testclient import TestClient

from shared.cli import run_config
from shared.config import load_config, read_yaml
from tabular_mining import load
from tabular_mining.common.table import load_dataset, load_telco
from tabular_mining.tasks import TASKS

RUNS = {"classify": "churn_run", "segment": "segment_run", "rules": "rules_run", "regress": "regress_run"}
RECIPES = {"classify": "configs/tabular_mining/churn-quick.yaml",
           "regress": "configs/tabular_mining/house_prices-quick.yaml",
           "segment": "configs/tabular_mining/segments-quick.yaml",
           "rules": "configs/tabular_mining/rules-quick.yaml"}
MISSING = {("segment", "export"), ("rules", "export"), ("regress", "export"),
           ("segment", "tune"), ("rules", "tune"), ("regress", "tune")}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A labelled table (classify, segment; houses for regress) and a basket file (rules) a user might bring."""
    root = tmp_path_factory.mktemp("inputs")
    table = load_telco().sample(60, random_state=1)
    table.to_csv(root / "customers.csv", index=False)
    table.drop(columns=["churn"]).to_csv(root / "unlabelled.csv", index=False)
    houses = _table("regress").sample(60, random_state=1)
    houses.to_csv(root / "houses.csv", index=False)
    houses.drop(columns=["Sale_Price"]).to_csv(root / "unlabelled_houses.csv", index=False)
    (root / "baskets.txt").write_text("streaming_tv,internet_service=Fiber optic,streaming_movies\n"
                                      "phone_service,multiple_lines\nonline_security,tech_support,online_backup\n")
    return root


def _input_for(task: str, inputs: Path) -> Path:
    return inputs / {"rules": "baskets.txt", "regress": "houses.csv"}.get(task, "customers.csv")


def _table(task: str) -> pd.DataFrame:
    """The embedded table a task's quick recipe trains on (rules: the Telco customers' services)."""
    return load_dataset("modeldata/ames") if task == "regress" else load_telco()


def test_every_recipe_loads_into_its_task_config():
    for path in sorted(Path("configs/tabular_mining").glob("*.yaml")):
        raw = read_yaml(path)
        task = raw.get("task") or read_yaml(path.parent / raw["base"])["task"]
        cfg = load_config(TASKS[task].config, path)
        if path.stem.endswith("-quick"):
            assert raw["base"] == path.name.replace("-quick", ""), path  # a twin is its base + overrides
            assert cfg.name == load_config(TASKS[task].config, path.parent / raw["base"]).name


def test_the_stage_matrix_is_what_the_tasks_declare():
    # every other pair is run by the tests below (train by the run fixtures, tune in classify/)
    declared = {(name, stage) for name, task in TASKS.items() for stage in task.stages()}
    every = {(name, stage) for name in TASKS for stage in
             ("preprocess", "train", "evaluate", "predict", "export", "serve", "tune", "stream")}
    assert every - declared == MISSING


@pytest.mark.parametrize("task, stage", sorted(MISSING))
def test_a_stage_the_task_lacks_is_one_line_and_exit_2(task, stage, request, cli, capsys):
    argv = ["--config", RECIPES[task]] if stage == "tune" else ["--run", request.getfixturevalue(RUNS[task])]
    status = cli(stage, *argv)
    err = capsys.readouterr().err.strip()
    assert status == 2 and err.count("\n") == 0 and f"the {task} task has no {stage} stage" in err


@pytest.mark.parametrize("task", sorted(RUNS))
def test_preprocess_writes_the_cache(task, cli_json):
    out = cli_json("preprocess", "--config", RECIPES[task], f"name={task}-preprocess-smoke")
    assert Path(out["cache"], "manifest.json").exists()


@pytest.mark.parametrize("task", sorted(RUNS))
def test_evaluate_and_predict_take_the_run_without_a_config(task, request, inputs, tmp_path, cli_json):
    run = request.getfixturevalue(RUNS[task])
    before = (run / "metrics.json").read_bytes()
    out = cli_json("evaluate", "--run", run)
    assert Path(out["evaluation"]) == run / "evaluations" / "test-split"
    assert any(k.startswith("test/") for k in out)
    source = inputs / {"rules": "baskets.txt", "regress": "unlabelled_houses.csv"}.get(task, "unlabelled.csv")
    scored = tmp_path / ("recs.jsonl" if task == "rules" else "scored.csv")
    summary = cli_json("predict", "--run", run, "--input", source, "--output", scored)
    rows = scored.read_text().splitlines()
    assert len(rows) == (3 if task == "rules" else 61) and summary["output"] == str(scored)
    assert (run / "metrics.json").read_bytes() == before  # what train measured stays as it was


@pytest.mark.parametrize("task", sorted(RUNS))
def test_evaluate_data_writes_evaluations_stem_with_data_keys(task, request, inputs, tmp_path, cli_json):
    run = request.getfixturevalue(RUNS[task])
    before = (run / "metrics.json").read_bytes()
    out = cli_json("evaluate", "--run", run, "--data", _input_for(task, inputs))
    stem = _input_for(task, inputs).stem
    folder = run / "evaluations" / stem
    assert Path(out["evaluation"]) == folder
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics and all(k.startswith("data/") for k in metrics)
    assert metrics["data/baskets" if task == "rules" else "data/rows"] == (3 if task == "rules" else 60)
    plots = {"classify": ["roc.png", "pr.png", "calibration.png", "confusion_matrix.png"],
             "segment": ["segments_pca.png", "profiles.csv"], "rules": ["item_support.png"],
             "regress": ["predicted_vs_actual.png", "residuals.png", "comparison.md"]}[task]
    assert all((folder / p).exists() for p in plots)
    # the same stem from another folder gets its own folder; nothing is overwritten
    other = tmp_path / _input_for(task, inputs).name
    other.write_bytes(_input_for(task, inputs).read_bytes())
    assert Path(cli_json("evaluate", "--run", run, "--data", other)["evaluation"]) == run / "evaluations" / f"{stem}-2"
    assert (run / "metrics.json").read_bytes() == before


@pytest.mark.parametrize("task", sorted(RUNS))
def test_stream_with_the_run(task, request, tmp_path, cli_json):
    run = request.getfixturevalue(RUNS[task])
    if task == "rules":
        records = [{"id": 1, "items": ["streaming_tv"]}, {"id": 2, "items": ["phone_service", "multiple_lines"]}]
    else:
        names = json.loads((run / "feature_schema.json").read_text())["features"]
        row = _table(task).head(2)[[f["name"] for f in names]]
        records = [{"id": i, **r} for i, r in enumerate(json.loads(row.to_json(orient="records")), 1)]
    src, dst = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in records) + "not json\n")
    summary = cli_json("stream", "--run", run, "--input", src, "--output", dst)
    assert summary["scored"] == 2 and summary["bad"] == 1
    assert [json.loads(x)["id"] for x in dst.read_text().splitlines()] == [1, 2]


@pytest.mark.parametrize("task", sorted(RUNS))
def test_serve_takes_the_run_without_a_config(task, request, served):
    run = request.getfixturevalue(RUNS[task])
    caught = served("--run", run, "--port", "9123")
    assert caught["port"] == 9123
    _, _, cfg = run_config("tabular_mining", TASKS, run, [])
    body = TASKS[task].predictor(cfg, run).example()
    with TestClient(caught["app"]) as c:
        assert c.get("/readyz").status_code == 200
        meta = c.get("/metadata").json()
        assert meta["task"] == task and meta["run_id"] == run.name
        r = c.post("/predict", json=body)
        assert r.status_code == 200 and len(r.json()["predictions"]) == len(body["instances"])
    in_process = load(run)  # the Python API answers what the server answers
    options = {k: v for k, v in body.items() if k != "instances"}
    assert in_process.predict(body["instances"], **options) == r.json()


def test_a_recipe_of_another_task_is_refused(churn_run, cli, capsys):
    assert cli("evaluate", "--run", churn_run, "--config", RECIPES["rules"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "is a rules recipe but" in err


def test_threshold_override_changes_evaluate_predict_and_serve(churn_run, inputs, tmp_path, cli_json, served):
    at_half = cli_json("evaluate", "--run", churn_run)
    at_low = cli_json("evaluate", "--run", churn_run, "eval.threshold=0.2")
    assert at_low["threshold"] == 0.2 and at_half["threshold"] == 0.5
    assert at_low["test/recall"] > at_half["test/recall"]  # more rows called positive
    assert at_low["test/roc_auc"] == at_half["test/roc_auc"]  # ranking does not depend on it
    half, low = tmp_path / "half.csv", tmp_path / "low.csv"
    cli_json("predict", "--run", churn_run, "--input", inputs / "unlabelled.csv", "--output", half)
    cli_json("predict", "--run", churn_run, "--input", inputs / "unlabelled.csv", "--output", low,
             "eval.threshold=0.2")
    a, b = pd.read_csv(half), pd.read_csv(low)
    assert (a.probability == b.probability).all()
    assert (b.label == "Yes").sum() > (a.label == "Yes").sum()
    assert ((b.label == "Yes") == (b.probability >= 0.2)).all()
    with TestClient(served("--run", churn_run, "eval.threshold=0.2")["app"]) as c:
        assert c.get("/metadata").json()["threshold"] == 0.2
    saved = yaml.safe_load((churn_run / "config.yaml").read_text())
    assert saved["eval"]["threshold"] == 0.5  # an override never rewrites the run's config


TORCH_FREE = """
import json, sys
from shared.cli import run_app
from tabular_mining.tasks import TASKS
run, data, out = sys.argv[1:4]
for argv in (["evaluate", "--run", run], ["predict", "--run", run, "--input", data, "--output", out]):
    assert run_app("tabular_mining", TASKS, argv=argv) == 0
from tabular_mining import load
model = load(run)  # what serve builds: the predictor through the server's own hooks
assert len(model.predict(**model.example())["predictions"]) == 1
print(json.dumps(sorted(m for m in ("torch", "optuna", "dask", "distributed") if m in sys.modules)))
"""


def test_no_command_imports_torch_without_an_ft_transformer(churn_run, inputs, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    code = "import sys, tabular_mining.__main__, tabular_mining.tasks; print('torch' in sys.modules)"
    imported = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert imported.stdout.strip() == "False"
    ran = subprocess.run([sys.executable, "-c", TORCH_FREE, str(churn_run), str(inputs / "unlabelled.csv"),
                          str(tmp_path / "out.csv")], capture_output=True, text=True, env=env, check=False)
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert json.loads(ran.stdout.strip().splitlines()[-1]) == []


def _imports(root: Path) -> dict[str, set[str]]:
    """Module → the tabular_mining modules it imports, anywhere in its body (lazy imports too)."""
    import ast

    files = {".".join(p.with_suffix("").parts).removesuffix(".__init__"): p for p in root.rglob("*.py")}
    graph = {}
    for name, path in files.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tabular_mining"):
                deps |= {node.module} | {f"{node.module}.{a.name}" for a in node.names} & files.keys()
        graph[name] = (deps & files.keys()) - {name}
    return graph


def test_no_import_cycle_and_tasks_never_import_each_other():
    graph = _imports(Path("tabular_mining"))
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        assert module not in path, " → ".join((*path, module))
        if module not in done:
            for dep in graph[module]:
                visit(dep, (*path, module))
            done.add(module)

    for module in graph:
        visit(module, ())
    for module, deps in graph.items():
        task = module.split(".")[1] if module.count(".") >= 2 else None
        if task in TASKS:
            assert {d.split(".")[1] for d in deps if d.count(".") >= 2} <= {task, "common"}, module
