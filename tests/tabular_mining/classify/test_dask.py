"""``distributed: dask``: XGBoost and LightGBM on a 2-worker LocalCluster (threads, tiny data)
from a CSV glob, through the command line; the run has the single-process artifacts and
evaluate/predict/serve use it. Three classes: the embedded penguins table, against the
single-process run of the same models."""
import json
import logging

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from shared.errors import UserError
from shared.runs import latest_run
from tabular_mining.classify.config import ClassifyConfig
from tabular_mining.common.table import TableData, load_dataset, load_telco, split_cache_dir

pytest.importorskip("distributed")
from tabular_mining.classify.dask import stratified_split
from tabular_mining.common.dask import dask_client, non_empty, read_dask_frame

QUICK = "configs/tabular_mining/churn-quick.yaml"
PENGUINS = "configs/tabular_mining/penguins.yaml"
DASK = ["distributed=dask", "dask.n_workers=2", "dask.processes=false"]


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    root = tmp_path_factory.mktemp("big")
    df = load_telco().sample(900, random_state=0)
    for i in range(3):
        df.iloc[i * 300:(i + 1) * 300].to_csv(root / f"part-{i}.csv", index=False)
    return root


class _Messages(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture(scope="module")
def dask_warnings() -> list[str]:
    return []


@pytest.fixture(scope="module")
def dask_run(parts, cli, dask_warnings):
    """A Dask run of the quick recipe (model.name: all); its warnings are kept in ``dask_warnings``."""
    handler, logger = _Messages(), logging.getLogger("tabular_mining")
    logger.addHandler(handler)
    try:
        assert cli("train", "--config", QUICK, "name=churn-dask-smoke", *DASK, f"data.path={parts}/part-*.csv",
                   "model.xgboost.n_estimators=30", "model.lightgbm.n_estimators=30") == 0
    finally:
        logger.removeHandler(handler)
    dask_warnings.extend(handler.lines)
    return latest_run("tabular_mining", "churn-dask-smoke")


def test_same_artifacts_as_single_process(dask_run):
    for name in ["config.yaml", "metrics.json", "README.md", "feature_schema.json", "selection.json", "comparison.md",
                 "roc.png", "models/xgboost/xgboost.json", "models/lightgbm/lightgbm.txt"]:
        assert (dask_run / name).exists(), name
    selection = json.loads((dask_run / "selection.json").read_text())
    assert selection["distributed"] == "dask" and set(selection["valid"]) == {"xgboost", "lightgbm"}
    metrics = json.loads((dask_run / "metrics.json").read_text())
    assert metrics["test/roc_auc"] > 0.7  # 900 Telco rows: clearly learned
    manifest = json.loads((dask_run / "data_manifest.json").read_text())
    assert sum(manifest["rows"].values()) == 900


def test_evaluate_predict_and_serve_a_dask_run(dask_run, parts, tmp_path, cli_json, served):
    assert cli_json("evaluate", "--run", dask_run)["test/roc_auc"] > 0.7
    out = tmp_path / "scored.csv"
    cli_json("predict", "--run", dask_run, "--input", parts / "part-0.csv", "--output", out)
    scored = pd.read_csv(out)
    assert len(scored) == 300 and scored["probability"].between(0, 1).all()
    names = [f["name"] for f in json.loads((dask_run / "feature_schema.json").read_text())["features"]]
    record = json.loads(load_telco()[names].head(1).to_json(orient="records"))[0]
    with TestClient(served("--run", dask_run)["app"]) as c:
        r = c.post("/predict", json={"instances": [record]})
        assert r.status_code == 200 and 0 <= r.json()["predictions"][0]["probability"] <= 1


def test_globs_formats_and_unsupported_models(tmp_path, parts, cli, capsys):
    df = pd.read_csv(parts / "part-0.csv")
    df.to_parquet(tmp_path / "a.parquet")
    ddf, _ = read_dask_frame(TableData(path=str(tmp_path / "*.parquet")), ClassifyConfig().dask)
    assert len(ddf.compute()) == 300
    with pytest.raises(UserError, match="matches no file"):
        read_dask_frame(TableData(path=str(tmp_path / "nothing-*.csv")), ClassifyConfig().dask)
    assert cli("train", "--config", QUICK, "name=churn-dask-logistic", *DASK, "model.name=logistic",
               f"data.path={parts}/part-*.csv") == 2
    assert "dask trains xgboost, lightgbm" in capsys.readouterr().err


def test_the_dask_split_is_stratified_and_cached_apart(dask_run):
    import dask.dataframe as dd

    from tabular_mining.classify.dask import stratified_split

    rng = np.random.default_rng(0)
    df = pd.DataFrame({"x": rng.normal(size=4000), "y": np.where(rng.random(4000) < 0.1, "rare", "common")})
    parts = stratified_split(dd.from_pandas(df, npartitions=4), TableData(target="y"), ["common", "rare"])
    rates = {k: float((v["y"].compute() == "rare").mean()) for k, v in parts.items()}
    assert all(abs(r - 0.1) < 0.03 for r in rates.values()), rates
    assert sum(len(v) for v in parts.values()) == 4000
    manifest = json.loads((dask_run / "data_manifest.json").read_text())
    assert manifest["split"].startswith("stratified")
    config = json.loads(json.dumps(manifest["config"]))
    assert split_cache_dir("churn-dask-smoke", TableData(**config), "dask").exists()
    assert not split_cache_dir("churn-dask-smoke", TableData(**config), "local").exists()


def test_model_all_says_the_logistic_model_is_skipped(dask_run, dask_warnings):
    assert any("skipping logistic" in line for line in dask_warnings), dask_warnings


def test_the_dask_reader_reads_csv_layouts_like_the_single_process_one(tmp_path, parts):
    # a European export (';', BOM, CRLF) and a headerless TSV: the same frame as read_table gives
    from tabular_mining.common.table import read_table

    df = pd.read_csv(parts / "part-0.csv").head(40)
    (tmp_path / "eu").mkdir()
    (tmp_path / "eu/part-0.csv").write_bytes(b"\xef\xbb\xbf" + df.to_csv(sep=";", index=False, lineterminator="\r\n").encode())
    df.to_csv(tmp_path / "plain.tsv", sep="\t", index=False, header=False)
    for data in (TableData(path=str(tmp_path / "eu/*.csv")),
                 TableData(path=str(tmp_path / "plain.tsv"), column_names=list(df.columns))):
        ddf, _ = read_dask_frame(data, ClassifyConfig().dask)
        got = ddf.compute().reset_index(drop=True)
        single = read_table(data.path.replace("*", "part-0"), na_values=data.na_values, column_names=data.column_names)
        assert list(got.columns) == list(df.columns) == list(single.columns)
        assert len(got) == 40 and (got[df.columns[0]].astype(str) == single[df.columns[0]].astype(str)).all()


def _penguin_run(cli, name: str, *overrides: str):
    """The penguins recipe (three species) with XGBoost and LightGBM, 40 rounds each, no CV."""
    assert cli("train", "--config", PENGUINS, f"name={name}", "model.name=all", "model.candidates=[xgboost,lightgbm]",
               "eval.cv_folds=0", "model.xgboost.n_estimators=40", "model.lightgbm.n_estimators=40", *overrides) == 0
    return latest_run("tabular_mining", name)


@pytest.fixture(scope="module")
def penguin_runs(cli):
    """A Dask run and a single-process run of the same three-class recipe."""
    return _penguin_run(cli, "penguins-dask", *DASK), _penguin_run(cli, "penguins-local")


def _files(run) -> set[str]:
    return {str(f.relative_to(run)) for f in run.rglob("*") if f.is_file()}


def test_three_classes_on_dask_write_the_single_process_artifacts(penguin_runs):
    on_dask, local = penguin_runs
    assert _files(on_dask) == _files(local)
    assert {"confusion_matrix.png", "models/xgboost/xgboost.json", "models/lightgbm/lightgbm.txt"} <= _files(on_dask)
    selection = json.loads((on_dask / "selection.json").read_text())
    assert selection["distributed"] == "dask" and selection["by"] == "valid/roc_auc"
    single = json.loads((local / "selection.json").read_text())
    for name in ("xgboost", "lightgbm"):
        assert set(selection["valid"][name]) == set(single["valid"][name])  # the same multiclass metrics
        assert selection["valid"][name]["roc_auc"] > 0.95, selection["valid"]
    metrics, local_metrics = (json.loads((r / "metrics.json").read_text()) for r in penguin_runs)
    assert {k for k in metrics if k.startswith("test/")} == {k for k in local_metrics if k.startswith("test/")}
    assert metrics["test/roc_auc"] > 0.95 and metrics["test/accuracy"] > 0.85, metrics
    manifest = json.loads((on_dask / "data_manifest.json").read_text())
    assert manifest["classes"] == ["Adelie", "Chinstrap", "Gentoo"] and sum(manifest["rows"].values()) == 344
    assert manifest["class_rows"] == manifest["class_rows_by_split"]["train"]
    by_split = manifest["class_rows_by_split"]
    assert all(n > 0 for split in by_split.values() for n in split.values()), by_split  # every class in every split
    assert {c: sum(s[c] for s in by_split.values()) for c in manifest["classes"]} == {
        "Adelie": 152, "Chinstrap": 68, "Gentoo": 124}


def test_a_three_class_dask_run_is_evaluated_predicted_and_served(penguin_runs, tmp_path, cli_json, served):
    on_dask = penguin_runs[0]
    assert cli_json("evaluate", "--run", on_dask)["test/roc_auc"] > 0.95
    table = load_dataset("palmerpenguins/penguins").iloc[::10]
    table.drop(columns="species").to_csv(tmp_path / "rows.csv", index=False)
    cli_json("predict", "--run", on_dask, "--input", tmp_path / "rows.csv", "--output", tmp_path / "scored.csv")
    scored = pd.read_csv(tmp_path / "scored.csv")
    columns = [f"probability_{c}" for c in ("Adelie", "Chinstrap", "Gentoo")]
    np.testing.assert_allclose(scored[columns].sum(axis=1), 1.0, atol=1e-5)
    assert (scored["label"] == table["species"].to_numpy()).mean() > 0.85
    record = json.loads(table.drop(columns="species").head(1).to_json(orient="records"))[0]
    with TestClient(served("--run", on_dask)["app"]) as c:
        r = c.post("/predict", json={"instances": [record]})
        assert r.status_code == 200 and r.json()["predictions"][0]["label"] == table["species"].iloc[0], r.json()


def test_a_two_class_setting_is_refused_for_three_classes_on_dask(cli, capsys):
    assert cli("train", "--config", PENGUINS, "name=penguins-dask-weighted", *DASK, "model.name=xgboost",
               "eval.cv_folds=0", "model.xgboost.scale_pos_weight=balanced") == 2
    assert "weights the positive class of a two-class target" in capsys.readouterr().err


def test_empty_partitions_are_left_out_of_the_fit():
    # the embedded penguins table is sorted by species: the per-class split leaves empty partitions,
    # and a LightGBM worker given only those fails ('Input data must be 2 dimensional and non empty')
    import dask.dataframe as dd


    df = pd.DataFrame({"x": range(12), "y": ["a"] * 6 + ["b"] * 6})
    parts = stratified_split(dd.from_pandas(df, npartitions=2), TableData(target="y", valid_size=0.2, test_size=0.2),
                             ["a", "b"])
    train = parts["train"]
    assert 0 in list(train.map_partitions(len).compute())
    kept = non_empty(train)
    assert 0 not in list(kept.map_partitions(len).compute()) and len(kept) == len(train)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_lightgbm_on_partitions_of_one_class_each_learns_the_classes(n_classes):
    # the Dask split's partitions hold one class each; LightGBM's Dask classifier label-encodes each
    # worker's rows apart, so a worker holding one class's rows would train them as class 0
    import dask.dataframe as dd

    from tabular_mining.classify.config import LightGBMParams
    from tabular_mining.classify.dask import fit_lightgbm_dask
    from tabular_mining.common.features import NUMERIC, Feature, FeatureSchema

    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(n_classes), 200).astype(np.float32)
    X = pd.DataFrame({"a": rng.normal(size=len(y)) + 3 * y, "b": rng.normal(size=len(y))}).astype(np.float32)
    schema = FeatureSchema([Feature("a", NUMERIC, median=0.0), Feature("b", NUMERIC, median=0.0)], "y",
                           [str(c) for c in range(n_classes)])
    params = LightGBMParams(n_estimators=20, num_leaves=4, min_child_samples=5)
    with dask_client(ClassifyConfig().dask.model_copy(update={"processes": False})) as client:
        Xd, yd = dd.from_pandas(X, npartitions=2 * n_classes), dd.from_pandas(pd.Series(y), npartitions=2 * n_classes)
        for _ in range(3):  # the workers the partitions land on vary from fit to fit
            model = fit_lightgbm_dask(client, schema, Xd, yd, Xd, yd, params, seed=0)
            p = model.predict_proba(X.to_numpy())
            predicted = (p >= 0.5) if n_classes == 2 else p.argmax(axis=1)
            assert (predicted == y).mean() > 0.85
