"""preprocess → train → evaluate → predict → serve on tiny generated data, through the CLI
in-process (``run_app``; every stage after train with ``--run`` and no ``--config``); HTTP tests
with good and bad requests; served recommendations equal offline ones."""
import json

import numpy as np
import pandas as pd
import pytest
import yaml
from fastapi.testclient import TestClient

from recsys_app.recommend.model import load_trained
from recsys_app.recommend.ranking import exclude, top_k
from recsys_app.tasks import TASKS
from shared.cli import run_app
from shared.runs import read_json, runs_root

from .conftest import FILE_KEYS, TINY_SASREC, make_interactions, served_app, write_interactions


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    base = tmp_path_factory.mktemp("recsys")
    write_interactions(base)
    return base


def overrides(files, model: str) -> list[str]:
    return ([f"{k}={v}" for k, v in FILE_KEYS.items()] + TINY_SASREC
            + [f"data.path={files / 'interactions.csv'}", f"data.items_path={files / 'items.csv'}",
               f"name=tiny-{model}", f"model.name={model}", "serve.max_k=20", "serve.max_history=6"])


def cli(*argv: str) -> int:
    return run_app("recsys_app", TASKS, "configs/recsys_app/movielens.yaml", list(argv))


@pytest.fixture(scope="module", params=["ease", "sasrec"])
def trained(request, files):
    model = request.param
    assert cli("train", "--config", "configs/recsys_app/movielens.yaml", *overrides(files, model)) == 0
    run = runs_root() / "recsys_app" / f"tiny-{model}" / "latest"
    with pytest.MonkeyPatch.context() as mp:
        caught = served_app(mp, cli, "--run", str(run), "serve.load_in_background=false", "--port", "8123")
    assert caught["port"] == 8123 and caught["host"] == "127.0.0.1"
    with TestClient(caught["app"]) as client:
        predictor = caught["app"].state.serve_state["predictor"]
        yield {"run": run, "predictor": predictor, "client": client, "ds": predictor.ds, "model": predictor.model}


def test_run_directory_and_metrics(trained):
    run = trained["run"]
    for name in ("config.yaml", "metrics.json", "model.safetensors", "interactions.parquet", "vocab.json",
                 "README.md", "run.json"):
        assert (run / name).exists(), name
    metrics = read_json(run / "metrics.json")
    assert {"test/ndcg@10", "test/recall@10", "test/mrr@10", "test/coverage@10", "valid/ndcg@10"} <= set(metrics)
    assert read_json(run / "run.json")["status"] == "finished" and read_json(run / "run.json")["task"] == "recommend"
    card = (run / "README.md").read_text()
    assert "## Recommender" in card and "test/ndcg@10" in card


def test_evaluate_stage_reproduces_training_metrics(trained, tmp_path):
    before = read_json(trained["run"] / "metrics.json")["test/ndcg@10"]
    assert cli("evaluate", "--run", str(trained["run"])) == 0
    assert read_json(trained["run"] / "metrics.json")["test/ndcg@10"] == pytest.approx(before, abs=1e-6)
    ds = trained["ds"]
    full = ds.sequences(("train", "valid", "test"))
    unseen = [next(ds.item_ids[j] for j in range(ds.n_items) if j not in full[ds.user_ids.index(u)])
              for u in ("u00", "u01")]
    future = pd.DataFrame({"uid": ["u00", "u01", "nobody"], "iid": unseen + [3]})
    future.to_csv(tmp_path / "future.csv", index=False)
    # eval.plot=true on the command line is honoured over the run's eval.plot=false
    assert cli("evaluate", "--run", str(trained["run"]), "--data", str(tmp_path / "future.csv"), "eval.plot=true") == 0
    out = trained["run"] / "evaluations" / "future"
    metrics = read_json(out / "metrics.json")
    assert metrics["data/unknown_user_or_item_rows"] == 1 and metrics["data/users"] == 2
    assert all(k.startswith("data/") for k in metrics) and (out / "metrics_at_k.png").exists()
    assert read_json(trained["run"] / "metrics.json")["test/ndcg@10"] == pytest.approx(before, abs=1e-6)
    # another file of the same stem from elsewhere gets its own folder; nothing is overwritten
    (tmp_path / "other").mkdir()
    future.iloc[:1].to_csv(tmp_path / "other" / "future.csv", index=False)
    assert cli("evaluate", "--run", str(trained["run"]), "--data", str(tmp_path / "other" / "future.csv")) == 0
    assert read_json(trained["run"] / "evaluations" / "future-2" / "metrics.json")["data/users"] == 1
    assert read_json(out / "metrics.json")["data/users"] == 2


def offline_top(trained, history: np.ndarray, k: int) -> list:
    scores = exclude(trained["model"].score([history]), [history])
    return [trained["ds"].item_ids[j] for j in top_k(scores, k)[0]]


def test_served_recommendations_equal_offline_ones(trained, tmp_path):
    ds, client = trained["ds"], trained["client"]
    users = ds.user_ids[:6]
    r = client.post("/predict", json={"instances": [{"user": u, "k": 5} for u in users]})
    assert r.status_code == 200, r.text
    full = ds.sequences(("train", "valid", "test"))
    for u, pred in zip(users, r.json()["predictions"]):
        assert [it["item"] for it in pred["items"]] == offline_top(trained, full[ds.user_ids.index(u)], 5)
        assert not pred["fallback"]
    # the batch predict stage gives the same lists
    pd.DataFrame({"uid": users}).to_csv(tmp_path / "users.csv", index=False)
    assert cli("predict", "--run", str(trained["run"]), "--input", str(tmp_path / "users.csv"),
               "--output", str(tmp_path / "recs.jsonl"), "serve.default_k=5") == 0
    lines = [json.loads(x) for x in (tmp_path / "recs.jsonl").read_text().splitlines()]
    assert [[it["item"] for it in o["items"]] for o in lines] == \
        [[it["item"] for it in p["items"]] for p in r.json()["predictions"]]


def test_session_request_scores_the_given_items(trained):
    r = trained["client"].post("/predict", json={"instances": [{"items": [3, "5", 999], "k": 4}]})
    assert r.status_code == 200, r.text
    pred = r.json()["predictions"][0]
    assert pred["unknown_items"] == [999] and not pred["fallback"]
    ds = trained["ds"]
    history = np.array([ds.item_ids.index(3), ds.item_ids.index(5)])
    assert [it["item"] for it in pred["items"]] == offline_top(trained, history, 4)
    assert {3, 5}.isdisjoint(it["item"] for it in pred["items"])
    assert pred["items"][0]["title"] == f"Item {pred['items'][0]['item']}"


def test_unknown_user_and_unknown_items_get_flagged_fallback_on_the_models_scale(trained):
    r = trained["client"].post("/predict", json={"instances": [
        {"user": "stranger", "k": 3}, {"items": [998, 999], "k": 3}, {"user": "u00", "k": 3, "exclude_seen": False}]})
    assert r.status_code == 200
    p = r.json()["predictions"]
    assert p[0]["fallback"] and p[0]["fallback_reason"] == "unknown user"
    assert p[1]["fallback"] and p[1]["unknown_items"] == [998, 999]
    assert not p[2]["fallback"]
    # the fallback is the model's mean score over the known users: its own scale, not counts
    ds, model = trained["ds"], trained["model"]
    histories = ds.sequences(("train", "valid", "test"))
    mean = model.score(histories).mean(axis=0)
    top = np.argsort(-mean, kind="stable")[:3]
    assert [it["item"] for it in p[0]["items"]] == [ds.item_ids[j] for j in top]
    np.testing.assert_allclose([it["score"] for it in p[0]["items"]], mean[top], rtol=1e-4, atol=1e-6)
    personal = model.score(histories)
    assert personal.min() <= p[0]["items"][-1]["score"] <= p[0]["items"][0]["score"] <= personal.max()


@pytest.mark.parametrize("body, field", [
    ({"instances": [{"user": "u00", "k": 21}]}, "k"),  # serve.max_k=20
    ({"instances": [{"user": "u00", "k": 0}]}, "k"),
    ({"instances": [{"items": [1, 2, 3, 4, 5, 6, 7]}]}, "items"),  # serve.max_history=6
    ({"instances": [{"items": []}]}, "items"),
    ({"instances": [{"user": "u00", "items": [1]}]}, "instances.0"),
    ({"instances": [{}]}, "instances.0"),
    ({"instances": []}, "instances"),
    ({"instances": [{"user": "u00", "colour": "red"}]}, "colour"),
    ({"instances": [{"user": True}]}, "user"),  # strict ids: true is not user 1
    ({"instances": [{"items": [3, 1.5]}]}, "items"),  # nor is 1.5 item 1 (1.0 is: JSON has one kind of number)
    ({"instances": [{"user": None, "items": [3]}]}, "user"),  # absent, not null
    ({"instances": [{"user": "u00", "k": "5"}]}, "k"),
])
def test_bad_requests_get_422_naming_the_field(trained, body, field):
    r = trained["client"].post("/predict", json=body)
    assert r.status_code == 422
    assert any(field in f["field"] for f in r.json()["fields"]), r.json()


def test_too_many_instances_is_a_413(trained):
    r = trained["client"].post("/predict", json={"instances": [{"user": "u00"}] * 257})  # serve.max_instances=256
    assert r.status_code == 413 and "serve.max_instances" in r.json()["error"]


def test_not_json_and_metadata(trained):
    client = trained["client"]
    r = client.post("/predict", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422 and "not valid JSON" in r.json()["error"]
    meta = client.get("/metadata").json()
    assert meta["limits"]["max_k"] == 20 and meta["items"] == 30
    assert client.get("/readyz").status_code == 200


def test_compare_ranks_models_on_one_split(files):
    assert cli("compare", *overrides(files, "ease"), "eval.compare_models=[popularity,ease]") == 0
    run = runs_root() / "recsys_app" / "tiny-ease-compare" / "latest"
    table = (run / "comparison.md").read_text()
    assert "| ease |" in table and "| popularity |" in table
    metrics = read_json(run / "metrics.json")
    assert {"test/ease/ndcg@10", "test/popularity/ndcg@10", "train/ease/seconds"} <= set(metrics)
    assert read_json(run / "run.json")["status"] == "finished" and "## Comparison" in (run / "README.md").read_text()


def test_export_writes_a_model_that_scores_like_the_run(trained):
    import onnxruntime
    import safetensors.numpy

    run, ds, model = trained["run"], trained["ds"], trained["model"]
    assert cli("export", "--run", str(run)) == 0
    out = run / "export"
    assert read_json(out / "items.json")["item_ids"] == ds.item_ids
    histories = ds.sequences(("train", "valid", "test"))[:5] + [np.zeros(0, np.int64), np.arange(ds.n_items)]
    expected = model.score(histories)
    if model.name == "sasrec":
        session = onnxruntime.InferenceSession(str(out / "model.onnx"))
        got = session.run(["scores"], {"items": model.tokens(histories)})[0]
    else:
        b = safetensors.numpy.load_file(str(out / "model.safetensors"))["b"]
        x = np.zeros((len(histories), ds.n_items), np.float32)
        for row, h in enumerate(histories):
            x[row, h] = 1
        got = x @ b
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_onnx_backend_scores_like_torch(trained, capsys):
    run = trained["run"]
    before = read_json(run / "metrics.json")["test/ndcg@10"]
    if trained["model"].name != "sasrec":
        assert cli("evaluate", "--run", str(run), "serve.backend=onnx") == 2
        assert "is for SASRec" in capsys.readouterr().err
        return
    (run / "model.onnx").unlink(missing_ok=True)  # the runner exports it on first use
    assert cli("evaluate", "--run", str(run), "serve.backend=onnx") == 0
    assert (run / "model.onnx").exists()
    assert read_json(run / "metrics.json")["test/ndcg@10"] == pytest.approx(before, abs=1e-6)


def test_run_loads_back(trained):
    ds, model = load_trained(trained["predictor"].cfg, trained["run"].resolve())
    assert ds.n_items == trained["ds"].n_items and model.name == trained["predictor"].cfg.model.name


def test_tune_then_train_and_compare_with_the_tuned_values(files):
    base = overrides(files, "ease")
    assert cli("tune", *base, "tune.models=[ease,itemknn,als]", "tune.n_trials=3") == 0
    tune_run = (runs_root() / "recsys_app" / "tiny-ease-tune" / "latest").resolve()
    best = read_json(tune_run / "best_params.json")["models"]
    assert set(best) == {"ease", "itemknn", "als"} and best["ease"]["trials"] == 3
    assert best["ease"]["value"] >= best["ease"]["recipe_value"]  # trial 0 is the recipe's own values
    assert (tune_run / "trials.csv").exists() and (tune_run / "tune_history.png").exists()
    assert cli("train", *base, f"model.params_from={tune_run}", "name=tiny-tuned") == 0
    run = (runs_root() / "recsys_app" / "tiny-tuned" / "latest").resolve()
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["model"]["ease"]["l2"] == pytest.approx(best["ease"]["params"]["l2"])
    assert config["model"]["itemknn"]["k"] == best["itemknn"]["params"]["k"]
    assert config["model"]["params_from"] == str(tune_run)
    assert read_json(run / "metrics.json")["train/seconds"] > 0


def test_params_from_without_a_tune_run_is_a_one_line_error(files, tmp_path, capsys):
    assert cli("train", *overrides(files, "ease"), f"model.params_from={tmp_path}") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not a run directory" in err[0]


def test_tuning_split_holds_out_the_last_interactions_before_test():
    from recsys_app.recommend.tune import tuning_split

    frame, _ = make_interactions()
    frame = frame.rename(columns={"uid": "user", "iid": "item", "ts": "timestamp"}).assign(row=lambda f: range(len(f)))
    from recsys_app.recommend.config import DataConfig
    from recsys_app.recommend.data import build_dataset

    ds = build_dataset(frame, None, DataConfig(source="file", path="x", rating_col=None))
    tuned = tuning_split(ds, holdout=2)
    assert not (tuned.frame["split"] == "test").any()
    for u, g in tuned.frame.groupby("user"):
        full = ds.frame[(ds.frame["user"] == u) & (ds.frame["split"] != "test")]
        assert g["item"].tolist() == full["item"].tolist()  # same rows, same order
        if len(g) > 3:
            assert g["split"].tolist()[-2:] == ["valid", "valid"] and set(g["split"].tolist()[:-2]) == {"train"}


def test_next_item_cases_fold_earlier_held_out_items_into_the_history():
    from recsys_app.recommend.config import DataConfig
    from recsys_app.recommend.data import build_dataset
    from recsys_app.recommend.tune import next_item_cases, tuning_split

    raw = pd.DataFrame({"user": [1] * 6, "item": [10, 11, 12, 13, 14, 15], "timestamp": range(6), "row": range(6)})
    ds = tuning_split(build_dataset(raw, None, DataConfig(source="file", path="x", rating_col=None)), holdout=2)
    histories, targets = next_item_cases(ds)  # test = 15 dropped; 13 and 14 held out
    assert [h.tolist() for h in histories] == [[0, 1, 2], [0, 1, 2, 3]] and [t.tolist() for t in targets] == [[3], [4]]
