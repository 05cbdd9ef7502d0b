"""A user's own labelled file, the way they come (issue 14, NLP): ten classes with Chinese labels,
other column names, a few empty rows; trained through the CLI, the run in its own folder, a
quality floor on the reloaded model, ``evaluate --data`` with the column overrides."""
import csv
import json
import random

import pytest

from shared import runs

QUICK = "configs/nlp_app/sentiment-quick.yaml"
TOPICS = {
    "体育": ["比赛", "球队", "进球", "冠军", "教练", "联赛", "球员", "决赛"],
    "财经": ["股票", "市场", "投资", "银行", "利率", "基金", "上涨", "财报"],
    "科技": ["手机", "芯片", "软件", "互联网", "算法", "电脑", "数据", "发布会"],
    "娱乐": ["电影", "明星", "演唱会", "导演", "综艺", "票房", "歌手", "剧组"],
    "教育": ["学校", "考试", "老师", "学生", "课程", "大学", "招生", "作业"],
    "军事": ["军队", "演习", "导弹", "舰艇", "国防", "士兵", "战机", "部队"],
    "健康": ["医院", "医生", "疾病", "治疗", "药物", "患者", "营养", "疫苗"],
    "旅游": ["景点", "酒店", "游客", "机票", "风景", "签证", "导游", "度假"],
    "美食": ["餐厅", "菜品", "味道", "厨师", "小吃", "甜点", "火锅", "食材"],
    "汽车": ["汽车", "发动机", "油耗", "车型", "驾驶", "销量", "电动车", "车展"],
}
FILLER = ["今天", "我们", "听说", "非常", "一些", "已经", "还是", "关于", "那个", "最近", "觉得", "可能"]


def write_topics(path, n_per_class: int, seed: int, text_col: str, label_col: str, empty_rows: int = 0) -> None:
    """Texts of three topic words, one word of another topic and four fillers, shuffled."""
    rng = random.Random(seed)
    names = list(TOPICS)
    rows = []
    for i in range(n_per_class * len(names)):
        label = names[i % len(names)]
        words = rng.sample(TOPICS[label], 3) + [rng.choice(TOPICS[rng.choice(names)])] + rng.sample(FILLER, 4)
        rng.shuffle(words)
        rows.append({text_col: "".join(words), label_col: label})
    for k in range(empty_rows):
        rows.insert(7 * k + 3, {text_col: "" if k % 2 else "  ", label_col: names[k % len(names)]})
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, [text_col, label_col])
        writer.writeheader()
        writer.writerows(rows)


@pytest.fixture(scope="module")
def topic_run(tmp_path_factory, cli):
    folder = tmp_path_factory.mktemp("topics")
    write_topics(folder / "news.csv", 60, seed=0, text_col="内容", label_col="类别", empty_rows=4)
    write_topics(folder / "later.csv", 8, seed=1, text_col="body", label_col="topic")
    before = runs.task_dir("nlp_app", "sentiment") / "latest"
    before = before.resolve() if before.exists() else None
    args = ["data.source=file", f"data.path={folder / 'news.csv'}", "data.text_column=内容",
            "data.label_column=类别", "model.name=baseline", "model.baseline.min_df=1"]
    assert cli("train", "--config", QUICK, *args) == 0
    run_dirs = [p for p in runs.runs_root().joinpath("nlp_app").iterdir() if p.name.startswith("sentiment-news-")]
    assert len(run_dirs) == 1, run_dirs
    return {"run": runs.latest_run("nlp_app", run_dirs[0].name), "folder": folder, "sentiment_latest": before}


def test_ten_classes_after_save_and_reload_are_far_above_chance(topic_run):
    metrics = runs.load_metrics(topic_run["run"])  # train scores the reloaded model
    assert metrics["test/accuracy"] >= 0.85 and metrics["test/macro_f1"] >= 0.85, metrics["test/accuracy"]
    assert len(runs.read_json(topic_run["run"] / "labels.json")) == 10


def test_own_data_gets_its_own_run_folder(topic_run):
    run = topic_run["run"]
    assert run.parent.name.startswith("sentiment-news-") and runs.load_run_config(run)["name"] == run.parent.name
    latest = runs.task_dir("nlp_app", "sentiment") / "latest"
    assert (latest.resolve() if latest.exists() else None) == topic_run["sentiment_latest"]  # untouched


def test_empty_rows_are_skipped_and_counted(topic_run):
    from nlp_app.classify.config import ClassifyConfig
    from nlp_app.common.corpus import cache_path

    cfg = ClassifyConfig.model_validate(runs.load_run_config(topic_run["run"]))
    manifest = runs.read_json(cache_path(cfg.data) / "manifest.json")
    assert manifest["cleaning"]["empty_rows_skipped"] == 4


def test_evaluate_another_file_with_its_own_column_names(topic_run, cli, capsys):
    run, data = topic_run["run"], topic_run["folder"] / "later.csv"
    capsys.readouterr()
    assert cli("evaluate", "--run", run, "--data", data, "data.text_column=body", "data.label_column=topic") == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["n"] == 80 and summary["data/accuracy"] >= 0.8
    out = run / "evaluations" / "later"
    assert all(k.startswith("data/") for k in runs.read_json(out / "metrics.json"))
    assert (out / "confusion_data.png").exists()
    capsys.readouterr()
    assert cli("evaluate", "--run", run, "--data", data) == 2  # the run's own column names are not in it
    assert "data.text_column" in capsys.readouterr().err
