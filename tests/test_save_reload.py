"""Every model type the repo saves gives the same outputs after save and reload, with 2, 3 and 10
classes where the model has classes (issue 14.1: the TF-IDF baseline's multi-class coefficients
came back scrambled from safetensors, and ``train`` scored the scrambled model without a word).

Each case fits or builds a small model on generated data, saves it with the app's own writer into
a folder laid out like a run, loads it back with the app's own reader (the one evaluate, predict and
serve use), and compares outputs on the same inputs. Not here: the association rules (plain JSON
records) and the tabular segment space (JSON shift and scale), which have no tensors to lay out.
The tabular regressors have no classes: they run on and off the log scale instead.
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


def _tiny_bert_arch():
    from nlp_app.common.config import BertArch

    return BertArch(max_length=32, hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64, vocab_min_freq=1)


def _char_tokenizer(texts):
    from nlp_app.common.tokenization import build_char_vocab, char_tokenizer

    return char_tokenizer(build_char_vocab(texts, min_freq=1), model_max_length=32)


def _perturbed(model, seed: int = 0):
    """Random weights well away from init (so a scrambled or missing tensor changes the outputs)."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.2 * torch.randn(p.shape, generator=generator))
    return model.eval()


@pytest.mark.parametrize("n_classes", CLASS_COUNTS)
def test_nlp_bert_classifier(n_classes, tmp_path):
    """Written as ``train`` writes it (weights by the loop's writer, HF files, ``selection.json``),
    read back with :func:`load_classifier`, the reader of evaluate, predict and serve."""
    import torch

    from nlp_app.classify.model import build_classifier, load_classifier
    from nlp_app.common.bert import save_pretrained_files
    from shared import runs
    from shared.checkpoint import save_weights

    texts, labels = topic_texts(n_classes, per_class=4)
    names = sorted(set(labels))
    tokenizer = _char_tokenizer(texts)
    model = _perturbed(build_classifier(_tiny_bert_arch(), names, tokenizer))
    folder = tmp_path / "models" / "bert"
    save_weights(model, folder / "model.safetensors")
    save_pretrained_files(folder, model, tokenizer)
    runs.write_yaml(tmp_path / "config.yaml", {"model": {"max_length": 32}, "data": {"lowercase": True}})
    runs.write_json(tmp_path / "selection.json", {"served": "bert"})
    probe = texts[:12]
    with torch.no_grad():
        expected = [torch.softmax(model(**tokenizer([t], return_tensors="pt")).logits[0].double(), -1).numpy()
                    for t in probe]
    again = load_classifier(tmp_path)
    assert again.labels == names
    np.testing.assert_allclose(again.predict_proba(probe), np.stack(expected), atol=1e-5)


@pytest.mark.parametrize("head, n_labels", [("question_answering", None), *[("token_classification", n)
                                                                              for n in CLASS_COUNTS]])
def test_nlp_token_level_bert(head, n_labels, tmp_path):
    """The QA span model and the NER tagger (2, 3, 10 tags): the run's HF directory read back by
    the runner every QA/NER stage uses."""
    import torch

    from nlp_app.common.runners import bert_runner, pad_inputs
    from nlp_app.common.token_tasks import build_model, save_model_files
    from shared.checkpoint import save_weights

    texts, _ = topic_texts(3, per_class=4)
    tokenizer = _char_tokenizer(texts)
    labels = None if n_labels is None else ["O"] + [f"B-T{i}" for i in range(n_labels - 1)]
    model = _perturbed(build_model(head, _tiny_bert_arch(), tokenizer, labels))
    save_weights(model, tmp_path / "model.safetensors")
    save_model_files(tmp_path, model, tokenizer, labels)
    batch = pad_inputs([tokenizer(t) for t in texts[:6]], ("input_ids", "attention_mask", "token_type_ids"))
    with torch.no_grad():
        out = model(**{k: torch.as_tensor(v) for k, v in batch.items()})
    names = ("start_logits", "end_logits") if n_labels is None else ("logits",)
    for got, name in zip(bert_runner(tmp_path, head, "torch")(batch), names):
        np.testing.assert_allclose(got, out[name].numpy(), atol=1e-5)


def _bio_tags(n: int) -> list[str]:
    """``n`` tags of a valid BIO set: O, then B-/I- pairs (the last may be a B- alone)."""
    tags = ["O"]
    for i in range(n - 1):
        tags.append(f"{'BI'[i % 2]}-T{i // 2}")
    return tags


@pytest.mark.parametrize("n_tags", CLASS_COUNTS)
@pytest.mark.parametrize("encoder", ["bilstm", "cnn", "bert"])
def test_nlp_ner_tagger_with_crf(encoder, n_tags, tmp_path):
    """The NER taggers with a CRF layer (the character BiLSTM with jieba word positions, the dilated
    CNN, the BERT): weights, ``tagger.json`` / HF files and ``crf.json`` read back by the NER task's
    ``load_model`` and ``load_params``; the same emissions and the same Viterbi paths."""
    import torch

    from nlp_app.common.runners import pad_inputs
    from nlp_app.ner.config import NERModelConfig
    from nlp_app.ner.crf import load_params
    from nlp_app.ner.model import CRF_FILE, build_model, decoder, emissions, load_model, save_model_files
    from shared.checkpoint import save_weights

    texts, _ = topic_texts(3, per_class=4)
    tokenizer = _char_tokenizer(texts)
    tags = _bio_tags(n_tags)
    cfg = NERModelConfig(encoder=encoder, crf=True, word_features=encoder == "bilstm", embedding_dim=16,
                         hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64, max_length=32)
    model = _perturbed(build_model(cfg, tokenizer, tags, seed=0))
    save_weights(model, tmp_path / "model.safetensors")
    save_model_files(tmp_path, model, tokenizer, tags)
    inputs = pad_inputs([tokenizer(t) for t in texts[:5]], ("input_ids", "attention_mask", "token_type_ids"))
    batch = {k: torch.as_tensor(v) for k, v in inputs.items()}
    if encoder == "bilstm":  # jieba word positions B/M/E/S = 1..4, 0 on padding
        batch["word_pos"] = (torch.arange(batch["input_ids"].shape[1]) % 4 + 1) * batch["attention_mask"]
    again = load_model(tmp_path)
    with torch.no_grad():
        expected, got = emissions(model, batch).numpy(), emissions(again, batch).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5)
    decode, decode_again = decoder(model.crf.params()), decoder(load_params(tmp_path / CRF_FILE))
    assert [decode_again(e) for e in got] == [decode(e) for e in expected]


def test_nlp_pretrained_masked_lm(tmp_path):
    """A pre-training run (MLM head with tied embeddings), read back as pre-training's evaluate and
    every fine-tune read it."""
    import torch
    from transformers import AutoModelForMaskedLM, BertForMaskedLM

    from nlp_app.common.bert import bert_config, save_pretrained_files
    from shared.checkpoint import save_weights

    texts, _ = topic_texts(3, per_class=4)
    tokenizer = _char_tokenizer(texts)
    model = _perturbed(BertForMaskedLM(bert_config(_tiny_bert_arch(), len(tokenizer))))
    save_weights(model, tmp_path / "model.safetensors")
    save_pretrained_files(tmp_path, model, tokenizer)
    inputs = tokenizer(texts[:4], padding=True, return_tensors="pt")
    again = AutoModelForMaskedLM.from_pretrained(str(tmp_path)).eval()
    with torch.no_grad():
        np.testing.assert_allclose(again(**inputs).logits.numpy(), model(**inputs).logits.numpy(), atol=1e-5)


# --- tabular_mining -----------------------------------------------------------------------------

def _table(n: int = 240, seed: int = 0):
    import pandas as pd

    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"tenure": rng.integers(0, 72, n).astype(float), "charges": rng.normal(60, 20, n),
                          "contract": rng.choice(["month", "year", "two-year"], n),
                          "payment": rng.choice(["card", "bank", "check", "cash"], n)})
    frame.loc[rng.random(n) < 0.05, "charges"] = np.nan
    logit = 1.5 - 0.05 * frame["tenure"] + 0.8 * (frame["contract"] == "month")
    frame["churn"] = np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), "Yes", "No")
    return frame


@pytest.mark.parametrize("classes", [["No", "Yes"], ["long", "mid", "short"]])
@pytest.mark.parametrize("name", ["logistic", "xgboost", "lightgbm", "ft_transformer"])
def test_tabular_classifiers(name, classes, tmp_path):
    """Two classes (a positive-class probability) and three (a probability per class): saved and
    written by ``save_model`` and loaded with the task's own ``load_model``."""
    from tabular_mining.classify.config import ClassifyModel
    from tabular_mining.classify.model import fit_model, load_model
    from tabular_mining.common.features import encode_frame, encode_target, infer_schema
    from tabular_mining.common.runs import save_model

    frame = _table()
    if len(classes) == 3:  # tenure bands, blurred by the contract
        band = frame["tenure"] + np.where(frame["contract"] == "month", -6, 6)
        frame["churn"] = np.select([band < 20, band < 45], ["short", "mid"], "long")
    schema = infer_schema(frame, "churn", classes)
    X, y = encode_frame(frame, schema), encode_target(frame["churn"], schema)
    cfg = ClassifyModel.model_validate({"ft_transformer": {"d_token": 16, "n_blocks": 1, "n_heads": 2,
                                                           "train": {"epochs": 2, "device": "cpu"}}})
    model = fit_model(name, schema, X[:180], y[:180], X[180:], y[180:], cfg, seed=0)
    save_model(model, tmp_path / name)
    again = load_model(tmp_path / name, schema)
    assert model.predict_proba(X).shape == ((len(X),) if len(classes) == 2 else (len(X), 3))
    np.testing.assert_allclose(again.predict_proba(X), model.predict_proba(X), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(again.contributions(X[:20]), model.contributions(X[:20]), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("log_target", [False, True])
@pytest.mark.parametrize("name", ["ridge", "xgboost", "lightgbm"])
def test_tabular_regressors(name, log_target, tmp_path):
    """A numeric target (``charges``, no classes), on its own scale or on log1p, saved and loaded
    with the regress task's own ``save_model`` / ``load_model``."""
    from tabular_mining.common.features import encode_frame, infer_schema
    from tabular_mining.regress.config import RegressModel
    from tabular_mining.regress.model import fit_model, load_model, save_model

    frame = _table().dropna(subset=["charges"]).reset_index(drop=True)
    schema = infer_schema(frame, "charges", [], drop=["churn"])
    X, y = encode_frame(frame, schema), frame["charges"].abs().to_numpy(dtype=float)
    cfg = RegressModel.model_validate({"log_target": log_target, "xgboost": {"n_estimators": 30},
                                       "lightgbm": {"n_estimators": 30, "min_child_samples": 5}})
    model = fit_model(name, schema, X[:160], y[:160], X[160:], y[160:], cfg, seed=0)
    save_model(model, tmp_path / name)
    again = load_model(tmp_path / name, schema)
    np.testing.assert_allclose(again.predict(X), model.predict(X), rtol=1e-6, atol=1e-6)
    assert np.ptp(again.predict(X)) > 0  # not a constant model


@pytest.mark.parametrize("k", CLASS_COUNTS)
@pytest.mark.parametrize("algorithm", ["kmeans", "hdbscan"])
def test_tabular_segmenter(k, algorithm, tmp_path):
    """k segments (k-means centres, or HDBSCAN's labelled points), written as ``train`` writes
    ``segmenter.safetensors`` and read back as ``load_segment_run`` reads it."""
    from safetensors.numpy import load_file, save_file

    from tabular_mining.segment.model import Segmenter, fit_kmeans

    rng = np.random.default_rng(k)
    Z = np.concatenate([rng.normal(3 * c, 0.3, size=(20, 5)) for c in range(k)]).astype(np.float32)
    if algorithm == "kmeans":
        segmenter = Segmenter(centers=fit_kmeans(Z, k, "kmeans", 2, 256, 0).cluster_centers_)
    else:
        segmenter = Segmenter(points=Z, point_labels=np.repeat(np.arange(k), 20))
    save_file(segmenter.tensors(), str(tmp_path / "segmenter.safetensors"))
    again = Segmenter.from_tensors(load_file(str(tmp_path / "segmenter.safetensors")))
    probe = rng.normal(0, 3 * k, size=(50, 5)).astype(np.float32)
    for got, expected in zip(again.assign(probe), segmenter.assign(probe)):
        np.testing.assert_allclose(got, expected, rtol=1e-5)
    assert len(set(again.assign(Z)[0].tolist())) == k


# --- vision_app ---------------------------------------------------------------------------------

def _same_state(a, b) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert sa[key].dtype == sb[key].dtype and bool((sa[key] == sb[key]).all()), key


def _vision_round_trip(run, model, load_model, cfg, n_classes: int, inputs):
    """Save as the training loop does (``model.safetensors`` + ``labels.json``), load with the task's
    ``load_model(run, cfg)``; the same weights and the same outputs."""
    import torch

    from shared import runs
    from shared.checkpoint import save_weights

    save_weights(model, run / "model.safetensors")
    runs.write_json(run / "labels.json", [f"class{i}" for i in range(n_classes)])
    again = load_model(run, cfg)
    _same_state(model, again)
    with torch.no_grad():
        return model.eval()(inputs), again(inputs)


# VGG-11 builds torchvision's 100 M-parameter head before the small-input one replaces it: seconds
# per case, so its 2- and 3-class cases run with the slow tests
@pytest.mark.parametrize("arch, n_classes", [
    *[(arch, n) for arch in ("smallcnn", "resnet18") for n in CLASS_COUNTS],
    *[pytest.param("vgg11", n, marks=pytest.mark.slow) for n in CLASS_COUNTS[:-1]], ("vgg11", CLASS_COUNTS[-1])])
def test_vision_classifier(arch, n_classes, tmp_path):
    import torch

    from vision_app.classify.config import ClassifyConfig
    from vision_app.classify.model import build_classifier, load_model

    cfg = ClassifyConfig.model_validate({"model": {"arch": arch, "small_input": True}})
    torch.manual_seed(n_classes)
    model = _perturbed(build_classifier(cfg.model, n_classes))
    expected, got = _vision_round_trip(tmp_path, model, load_model, cfg, n_classes, torch.rand(2, 3, 32, 32))
    assert got.shape == (2, n_classes)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("n_classes", CLASS_COUNTS)
@pytest.mark.parametrize("arch", ["unet", "unet_resnet18"])
def test_vision_segmenter(arch, n_classes, tmp_path):
    import torch

    from vision_app.segment.config import SegmentConfig
    from vision_app.segment.model import build_segmenter, load_model

    cfg = SegmentConfig.model_validate({"model": {"arch": arch, "depth": 2, "width": 8}})
    torch.manual_seed(n_classes)
    model = _perturbed(build_segmenter(cfg.model, n_classes))
    expected, got = _vision_round_trip(tmp_path, model, load_model, cfg, n_classes, torch.rand(2, 3, 64, 64))
    assert got.shape[:2] == (2, n_classes)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("n_classes", CLASS_COUNTS)
@pytest.mark.parametrize("arch, backbone", [("yolo", "csp"), ("fasterrcnn", "resnet18")])
def test_vision_detector(arch, backbone, n_classes, tmp_path):
    import torch

    from vision_app.detect.config import DetectConfig
    from vision_app.detect.models import build_detector, load_model, runner_outputs

    cfg = DetectConfig.model_validate({"model": {"arch": arch, "backbone": backbone, "input_size": 64, "width": 8,
                                                 "neck_width": 16, "score_thresh": 0.0}})
    torch.manual_seed(n_classes)
    model = build_detector(cfg.model, n_classes).eval()
    images = torch.rand(2, 3, 64, 64)
    _vision_round_trip(tmp_path, model, load_model, cfg, n_classes, images)
    again = load_model(tmp_path, cfg)
    with torch.no_grad():
        for got, expected in zip(runner_outputs(again, {"image": images}), runner_outputs(model, {"image": images})):
            torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


# --- recsys_app ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["popularity", "itemknn", "ease", "als", "sasrec"])
def test_recsys_recommender(name, tmp_path):
    """Each recommender's ``save`` / ``load`` (``model.safetensors``): the same scores for the same histories."""
    from recsys_app.recommend.config import RecsysConfig
    from recsys_app.recommend.data import build_dataset
    from recsys_app.recommend.model import build_model
    from recsys_app.recommend.readers import standardize_interactions
    from recsys_app.recommend.synthetic import generate

    ratings, _ = generate(users=30, items=40, per_user=8, genres=4, seed=0)
    cfg = RecsysConfig.model_validate({
        "data": {"source": "file", "path": "generated.csv", "user_col": "user", "item_col": "item"},
        "model": {"sasrec": {"max_len": 8, "dim": 16}},
        "train": {"epochs": 1, "batch_size": 8, "progress": False, "device": "cpu"}})
    ds = build_dataset(standardize_interactions(ratings, cfg.data, "generated.csv"), None, cfg.data)
    model = build_model(cfg, ds.n_items, name)
    model.fit(ds, tmp_path)
    model.save(tmp_path)
    histories = [np.array([0, 3, 5]), np.array([7]), np.zeros(0, np.int64)]
    again = build_model(cfg, ds.n_items, name).load(tmp_path)
    np.testing.assert_allclose(again.score(histories), model.score(histories), rtol=1e-5, atol=1e-6)
