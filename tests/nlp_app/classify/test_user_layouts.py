"""A new user's files through the CLI: a THUCNews-style headerless ``label<TAB>text`` .txt of ten
topics trained with ``data.column_names``, then ``predict`` and ``evaluate --data`` on files in the
other layouts users have at hand (a one-column .txt, a CSV with a header and an empty line)."""
import json
import random

import pytest

from shared import runs

QUICK = "configs/nlp_app/sentiment-quick.yaml"
TOPICS = {"体育": "比赛 球队 进球 冠军", "财经": "股票 银行 利率 基金", "科技": "手机 芯片 软件 算法",
          "娱乐": "电影 明星 导演 综艺", "教育": "学校 考试 老师 学生", "军事": "军队 演习 导弹 舰艇",
          "健康": "医院 医生 疾病 疫苗", "旅游": "景点 酒店 游客 机票", "美食": "餐厅 菜品 厨师 火锅",
          "汽车": "汽车 油耗 车型 车展"}
FILLER = ["今天", "我们", "听说", "非常", "已经", "最近"]


def _text(rng: random.Random, label: str) -> str:
    words = rng.sample(TOPICS[label].split(), 3) + rng.sample(FILLER, 3)
    rng.shuffle(words)
    return "".join(words)


@pytest.fixture(scope="module")
def thucnews_run(tmp_path_factory, cli):
    folder = tmp_path_factory.mktemp("thucnews")
    rng = random.Random(0)
    lines = [f"{label}\t{_text(rng, label)}\n" for _ in range(12) for label in TOPICS]
    (folder / "thucnews.txt").write_text("".join(lines), encoding="utf-8")
    assert cli("train", "--config", QUICK, "data.source=file", f"data.path={folder / 'thucnews.txt'}",
               "data.column_names=[label,text]", "model.name=baseline", "model.baseline.min_df=1") == 0
    run_dirs = [p for p in runs.runs_root().joinpath("nlp_app").iterdir() if p.name.startswith("sentiment-thucnews-")]
    assert len(run_dirs) == 1, run_dirs
    return {"run": runs.latest_run("nlp_app", run_dirs[0].name), "folder": folder, "rng": rng}


def test_ten_thucnews_topics_train_from_a_headerless_txt(thucnews_run):
    assert len(runs.read_json(thucnews_run["run"] / "labels.json")) == 10
    assert runs.load_metrics(thucnews_run["run"])["test/accuracy"] >= 0.8


def test_predict_on_a_one_column_txt_and_on_a_csv_with_a_header_and_an_empty_line(thucnews_run, cli):
    folder, rng, labels = thucnews_run["folder"], thucnews_run["rng"], list(TOPICS)
    texts = [_text(rng, label) for label in labels]
    (folder / "texts.txt").write_text("\n".join(texts) + "\n\n", encoding="utf-8")
    (folder / "texts.csv").write_text("text\n" + "\n".join(texts[:5]) + "\n\n" + "\n".join(texts[5:]) + "\n",
                                      encoding="utf-8")
    for name in ("texts.txt", "texts.csv"):  # the run's column_names=[label,text] does not apply to either
        out = folder / f"{name}.jsonl"
        assert cli("predict", "--run", thucnews_run["run"], "--input", folder / name, "--output", out) == 0
        rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
        assert [r["text"] for r in rows] == texts
        assert sum(r["label"] == y for r, y in zip(rows, labels)) >= 8


def test_evaluate_data_with_a_header_on_a_run_trained_headerless(thucnews_run, cli, capsys):
    folder, rng = thucnews_run["folder"], thucnews_run["rng"]
    rows = [(label, _text(rng, label)) for _ in range(3) for label in TOPICS]
    (folder / "later.csv").write_text("label,text\n" + "".join(f"{y},{t}\n" for y, t in rows), encoding="utf-8")
    capsys.readouterr()
    assert cli("evaluate", "--run", thucnews_run["run"], "--data", folder / "later.csv") == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n"] == 30 and out["data/accuracy"] >= 0.8
    (folder / "other.csv").write_text("label,text\n天气,今天下雨\n", encoding="utf-8")
    assert cli("evaluate", "--run", thucnews_run["run"], "--data", folder / "other.csv") == 2
    assert "other.csv has label(s) ['天气'] that are not in the training labels" in capsys.readouterr().err
