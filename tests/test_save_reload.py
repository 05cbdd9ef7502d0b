"""Every model type the repo saves gives the same outputs after save and reload, with 2, 3 and 10
classes where the model has classes (issue 14.1: the TF-IDF baseline's multi-class coefficients
came back scrambled from safetensors, and ``train`` scored the scrambled model without a word).

Each case fits or builds a small model on generated data, saves it with the app's own writer into
a folder laid out like a run, loads it back with the app's own reader (the one evaluate, predict and
serve use), and compares outputs on the same inputs.
"""
from __future__ import annotations

import random

import numpy as np
import pytest

CLASS_COUNTS = [2, 3, 10]
TOPICS = ["体育比赛", "股票市场", "手机芯片", "电影明星", "大学考试", "海军舰艇", "医院医生", "旅游景点", "美食餐厅", "汽车销量"]
FILLER = ["今天", "我们", "听说", "非常", "一些", "已经", "还是", "关于", "那个", "消息"]


def topic_texts(n_classes: int, per_class: int = 30, seed: int = 0) -> tuple[list[str], list[str]]:
    """Short texts whose topic words give the label away (so a fitted model is far from uniform)."""
    rng = random.Random(seed)
    texts, labels = [], []
    for i in range(per_class * n_classes):
        c = i % n_classes
        words = [TOPICS[c]] * 2 + [TOPICS[rng.randrange(len(TOPICS))]] + rng.sample(FILLER, 4)
        rng.shuffle(words)
        texts.append("".join(words))
        labels.append(f"类{c}")
    return texts, labels


# --- nlp_app ------------------------------------------------------------------------------------

@pytest.mark.parametrize("n_classes", CLASS_COUNTS)
def test_nlp_tfidf_baseline(n_classes, tmp_path):
    from nlp_app.classify.baseline import BaselineClassifier, load_baseline
    from nlp_app.classify.config import BaselineConfig

    texts, labels = topic_texts(n_classes)
    model = BaselineClassifier(BaselineConfig(min_df=1), sorted(set(labels))).fit(texts, labels)
    assert model.coef.shape[0] == (1 if n_classes == 2 else n_classes)
    model.save(tmp_path)
    again = load_baseline(tmp_path)
    probe = texts[:: max(1, len(texts) // 40)]
    np.testing.assert_allclose(again.predict_proba(probe), model.predict_proba(probe), rtol=1e-6, atol=1e-7)
    accuracy = np.mean([again.labels[i] == y for i, y in
                        zip(again.predict_proba(texts).argmax(1), labels)])
    assert accuracy > 0.9  # the reloaded model is the fitted one, not the majority class


def test_nlp_tfidf_baseline_saved_column_major_before_the_fix_still_loads_right(tmp_path):
    """A baseline written before the fix (no ``layout`` in baseline.json, the coefficient buffer
    column-major) is read back as it was fitted."""
    import safetensors.numpy

    from nlp_app.classify.baseline import BaselineClassifier, load_baseline
    from nlp_app.classify.config import BaselineConfig
    from shared import runs

    texts, labels = topic_texts(3)
    model = BaselineClassifier(BaselineConfig(min_df=1), sorted(set(labels))).fit(texts, labels)
    model.save(tmp_path)
    tensors = safetensors.numpy.load_file(str(tmp_path / "baseline.safetensors"))
    tensors["coef"] = np.asfortranarray(model.coef).ravel(order="K").reshape(model.coef.shape)  # the old bytes
    safetensors.numpy.save_file(tensors, str(tmp_path / "baseline.safetensors"))
    meta = runs.read_json(tmp_path / "baseline.json")
    del meta["layout"]
    runs.write_json(tmp_path / "baseline.json", meta)
    np.testing.assert_allclose(load_baseline(tmp_path).coef, model.coef)
