"""The served model's probabilities on the request path: ONNX Runtime where it agrees with the model.

An XGBoost booster costs about 0.27 ms per ``inplace_predict`` call whatever the row count (its
Python wrapper and per-call set-up, measured on one row of the churn model), which is most of
what a one-row request costs; ONNX Runtime scores the same trees in about 0.01 ms. So the server
converts the served XGBoost model with the export stage's converter when it loads, scores a set of
check rows both ways, and serves through ONNX Runtime only when the two agree within the export's
``MAX_ABS_DIFF``; otherwise (or for other models) it uses the model's own ``predict_proba``, and
logs why. Contributions (TreeSHAP) always come from the native model.

The check rows are made from the model itself, so no data is read at serve time: every numeric
feature takes each of its split thresholds, exactly and one float32 step to either side (where a
``<`` read as ``<=`` would show), and missing values; categoricals take every code and missing.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Callable

import numpy as np

from tabular_mining.classify.export import CONVERTERS, MAX_ABS_DIFF, class_probabilities
from tabular_mining.common.features import CATEGORICAL, FeatureSchema

log = logging.getLogger(__name__)

CHECK_ROWS = 512
Scorer = Callable[[np.ndarray], np.ndarray]


def served_scorer(model, schema: FeatureSchema) -> tuple[Scorer, str]:
    """``(score, name)``: ``score(X)`` for the encoded matrix ``X`` (float32) as ``predict_proba``
    gives it (p(positive); for K > 2 classes the ``(n, K)`` matrix), and ``"onnxruntime"`` or
    ``"native"`` saying which one it is (see the module doc)."""
    if model.name != "xgboost":
        return model.predict_proba, "native"
    try:
        session = _session(CONVERTERS["xgboost"](model, len(schema.features)).SerializeToString())

        def score(X: np.ndarray) -> np.ndarray:
            return class_probabilities(session.run(["probabilities"], {"input": X})[0], len(schema.classes))

        X = check_rows(split_thresholds(model.booster, len(schema.features)), schema)
        diff = float(np.max(np.abs(score(X) - model.predict_proba(X))))
    except Exception:  # a converter's limits: the native model still serves
        log.warning("serving %s natively: its ONNX conversion failed", model.name, exc_info=True)
        return model.predict_proba, "native"
    if not diff <= MAX_ABS_DIFF:
        log.warning("serving %s natively: its ONNX differs by %.2g on %d check rows", model.name, diff, len(X))
        return model.predict_proba, "native"
    log.info("serving %s through ONNX Runtime (max |ONNX - native| = %.2g on %d check rows)", model.name, diff, len(X))
    return score, "onnxruntime"


def _session(onnx_bytes: bytes):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    # one row or one micro-batch per call: more threads only add hand-offs
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    return ort.InferenceSession(onnx_bytes, opts, providers=["CPUExecutionProvider"])


def split_thresholds(booster, n_features: int) -> list[np.ndarray]:
    """Per feature, the thresholds of the booster's numeric splits (float32, unique)."""
    trees = json.loads(booster.save_raw("json"))["learner"]["gradient_booster"]["model"]["trees"]
    found: list[list[float]] = [[] for _ in range(n_features)]
    for tree in trees:
        types = tree.get("split_type") or [0] * len(tree["split_indices"])
        for left, feature, value, kind in zip(tree["left_children"], tree["split_indices"],
                                              tree["split_conditions"], types):
            if left != -1 and kind == 0:
                found[feature].append(value)
    return [np.unique(np.asarray(v, dtype=np.float32)) for v in found]


def check_rows(thresholds: list[np.ndarray], schema: FeatureSchema, n: int = CHECK_ROWS,
               seed: int = 0) -> np.ndarray:
    """``n`` encoded rows that walk the trees' boundaries (see the module doc); deterministic."""
    rng = np.random.default_rng(seed)
    X = np.empty((n, len(schema.features)), dtype=np.float32)
    for j, feat in enumerate(schema.features):
        if feat.kind == CATEGORICAL:
            values = np.arange(len(feat.categories), dtype=np.float32)
        else:
            t = thresholds[j] if len(thresholds[j]) else np.asarray([feat.median or 0.0], dtype=np.float32)
            values = np.concatenate([t, np.nextafter(t, np.float32(-np.inf)), np.nextafter(t, np.float32(np.inf))])
        X[:, j] = rng.choice(np.append(values, np.float32(np.nan)), size=n)
    return X
