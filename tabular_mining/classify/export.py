"""The export stage of ``task: classify``: the run's gradient-boosted models as ONNX, each checked
against the native model's probabilities before it is kept.

    python -m tabular_mining export [--run runs/tabular_mining/churn/latest]      # make export-tabular

Writes ``<run>/export/``: ``<model>.onnx`` for XGBoost (``onnxmltools.convert_xgboost``) and
LightGBM (``onnxmltools.convert_lightgbm``), and ``export.json``: the input (one float32 row per
record, features in ``feature_schema.json`` order, categoricals as their index in the feature's
category list, missing or unseen = NaN; :func:`tabular_mining.common.features.encode_record`
makes it), the outputs (``probabilities[:, 1]`` is the positive class; for K > 2 classes
``probabilities`` has a column per class, in ``classes`` order) and, per model, the largest
difference from the native probabilities on the run's held-out rows. A model whose ONNX differs by
more than ``MAX_ABS_DIFF`` is not kept; the logistic model (coefficients applied with numpy) and the
FT-Transformer are not exported here: the summary says so in one line each.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from shared.errors import UserError
from shared.runs import atomic_path, write_json
from tabular_mining.classify.config import ClassifyConfig
from tabular_mining.classify.data import load_splits
from tabular_mining.classify.evaluate import load_classify_run
from tabular_mining.common.features import encode_frame
from tabular_mining.common.runs import TrainedRun

log = logging.getLogger(__name__)
OPSET = 15  # the highest ai.onnx opset onnxmltools' tree converters support
MAX_ABS_DIFF = 1e-4  # float32 trees: differences are ~1e-7; more means a split was not translated
NOT_EXPORTED = {
    "logistic": "not exported: its coefficients (logistic.json) are applied with numpy; no ONNX converter here",
    "ft_transformer": "not exported here: it is a torch model, served through shared.inference",
}


def _xgboost_onnx(model, n_features: int):
    import onnxmltools
    from onnxmltools.convert.common.data_types import FloatTensorType

    booster = model.booster.copy()
    booster.feature_names = [f"f{i}" for i in range(n_features)]  # the converter reads features by index
    return onnxmltools.convert_xgboost(booster, initial_types=[("input", FloatTensorType([None, n_features]))],
                                       target_opset=OPSET)


def _lightgbm_onnx(model, n_features: int):
    import onnxmltools
    from onnxmltools.convert.common.data_types import FloatTensorType

    onx = onnxmltools.convert_lightgbm(model.booster, initial_types=[("input", FloatTensorType([None, n_features]))],
                                       target_opset=OPSET, zipmap=False)
    _exact_float32_thresholds(onx, _lightgbm_thresholds(model.booster))
    return onx


def _lightgbm_thresholds(booster) -> dict[tuple[int, float], list[float]]:
    """(feature, threshold rounded to float32) → LightGBM's own (double) thresholds of ``<=`` splits."""
    found: dict[tuple[int, float], list[float]] = {}
    stack = [tree["tree_structure"] for tree in booster.dump_model()["tree_info"]]
    while stack:
        node = stack.pop()
        if "split_index" not in node:
            continue
        if node["decision_type"] == "<=":
            t = float(node["threshold"])
            found.setdefault((int(node["split_feature"]), float(np.float32(t))), []).append(t)
        stack += [node["left_child"], node["right_child"]]
    return found


def _exact_float32_thresholds(onx, thresholds: dict[tuple[int, float], list[float]]) -> None:
    """LightGBM compares a float32 input, as a double, with a double threshold; ONNX stores the
    threshold as a float32, rounded to the nearest. Where that rounding went up (94.4 for
    94.40000000000001), an input equal to the float32 would go left in ONNX and right in LightGBM:
    such thresholds become the float32 just below, which sends every float32 input the same way."""
    for node in onx.graph.node:
        if not node.op_type.startswith("TreeEnsemble"):
            continue
        attrs = {a.name: a for a in node.attribute}
        values, modes, features = attrs["nodes_values"].floats, attrs["nodes_modes"].strings, attrs["nodes_featureids"].ints
        for k, (mode, feature, value) in enumerate(zip(modes, features, list(values))):
            originals = thresholds.get((int(feature), float(value))) if mode == b"BRANCH_LEQ" else None
            if originals and all(t < value for t in originals):
                values[k] = float(np.nextafter(np.float32(value), np.float32(-np.inf)))


CONVERTERS = {"xgboost": _xgboost_onnx, "lightgbm": _lightgbm_onnx}


def onnx_probabilities(onnx_bytes: bytes, X: np.ndarray, n_classes: int = 2) -> np.ndarray:
    """What the native model's ``predict_proba`` gives, from an exported model with ONNX Runtime
    on the CPU: the positive class's probability, or for ``n_classes`` > 2 every class's."""
    import onnxruntime as ort

    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    return class_probabilities(session.run(["probabilities"], {"input": X.astype(np.float32)})[0], n_classes)


def class_probabilities(probabilities: np.ndarray, n_classes: int) -> np.ndarray:
    """An ONNX model's ``probabilities`` output in ``predict_proba``'s shape: the positive class's
    column for two classes, all of them for more."""
    return probabilities[:, 1] if n_classes == 2 else probabilities


def check_rows(cfg: ClassifyConfig, loaded: TrainedRun) -> np.ndarray:
    """The rows the export is checked on: the run's test split (else its validation split)."""
    try:
        splits = load_splits(cfg.name, cfg.data, cfg.distributed)
    except UserError as exc:
        raise UserError(f"export checks each model against its native predictions on the run's held-out rows, "
                        f"which cannot be read here: {exc}") from None
    frame = splits.test if len(splits.test) else splits.valid
    return encode_frame(frame, loaded.schema, "held-out rows")


def export(cfg: ClassifyConfig, run: Path) -> dict:
    """The export stage: every gradient-boosted model of ``run`` as ONNX in ``<run>/export/``, kept
    only when it matches the native probabilities; returns the files, the differences, and a line
    for each model that was not exported."""
    loaded = load_classify_run(run)
    X = check_rows(cfg, loaded)
    out = Path(run) / "export"
    exported, skipped = {}, {}
    for name, model in loaded.models.items():
        if name not in CONVERTERS:
            skipped[name] = NOT_EXPORTED.get(name, "no ONNX converter for this model")
            continue
        onnx_bytes = CONVERTERS[name](model, len(loaded.schema.features)).SerializeToString()
        onnx_p = onnx_probabilities(onnx_bytes, X, len(loaded.schema.classes)) if len(X) else None
        diff = float(np.max(np.abs(onnx_p - model.predict_proba(X)))) if len(X) else 0.0
        if not diff <= MAX_ABS_DIFF:
            skipped[name] = f"not exported: its ONNX differs from the native model by {diff:.2g} on held-out rows"
            continue
        with atomic_path(out / f"{name}.onnx") as tmp:
            tmp.write_bytes(onnx_bytes)
        exported[name] = {"onnx": str(out / f"{name}.onnx"), "max_abs_diff": diff, "checked_rows": len(X)}
        log.info("%s → %s (max |ONNX - native| = %.2g on %d rows)", name, out / f"{name}.onnx", diff, len(X))
    if not exported:
        raise UserError(f"{run}: nothing to export ({'; '.join(f'{k}: {v}' for k, v in skipped.items())}); "
                        "train XGBoost or LightGBM (model.name=xgboost) to get an ONNX model")
    schema = loaded.schema
    write_json(out / "export.json", {
        "served": loaded.served, "models": exported, "not_exported": skipped, "opset": OPSET,
        "input": {"name": "input", "dtype": "float32", "shape": [None, len(schema.features)],
                  "features": [{"name": f.name, "kind": f.kind, **({"categories": f.categories} if f.categories else {})}
                               for f in schema.features],
                  "encoding": "numerics as they are; categoricals as the index of the value in 'categories'; "
                              "missing or unseen = NaN"},
        "output": ({"name": "probabilities", "positive_class": schema.classes[1], "column": 1}
                   if len(schema.classes) == 2 else {"name": "probabilities", "classes": schema.classes}),
        "threshold": cfg.eval.threshold})
    return {"export": str(out), **{f"{k}/onnx": v["onnx"] for k, v in exported.items()},
            **{f"{k}/max_abs_diff": v["max_abs_diff"] for k, v in exported.items()}, "not_exported": skipped}
