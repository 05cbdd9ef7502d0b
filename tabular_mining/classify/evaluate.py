"""The evaluate stage of ``task: classify``: score every model of a run on its test split or on
any labelled file in the training format, with plots and a comparison table; and the held-out
report that ``train`` ends with (the same scoring, plus stratified k-fold CV).

    python -m tabular_mining evaluate [--run runs/tabular_mining/churn/latest] [--data FILE] [eval.threshold=0.3]

The config is the run's own with the command-line overrides on top (``eval.threshold``,
``data.target`` naming the file's label column, ``data.format``). ``--data FILE`` writes
``<run>/evaluations/<file stem>/`` (``metrics.json`` with ``data/`` keys and the row count, ROC,
PR, calibration and confusion-matrix plots, ``comparison.md``); without it the test split is
scored into ``<run>/evaluations/test-split/``. The run's own ``metrics.json`` (what ``train``
measured) is never changed by this stage. For K > 2 classes the label is the most probable class
(``eval.threshold`` is for two), the metrics are accuracy, macro F1, log-loss, the macro one-vs-rest
ROC-AUC and per-class precision/recall/F1, and the plot is the confusion matrix.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold, train_test_split

from shared import plots
from shared.errors import UserError
from shared.metrics import confusion, mean_std, with_split
from shared.runs import write_json, write_text
from tabular_mining.classify.config import ClassifyConfig
from tabular_mining.classify.data import load_splits
from tabular_mining.classify.labels import label_map_hint
from tabular_mining.classify.model import fit_model, load_model, score_probabilities
from tabular_mining.common import runs
from tabular_mining.common.features import FeatureSchema, encode_frame, encode_target, infer_schema
from tabular_mining.common.splits import Splits

log = logging.getLogger(__name__)
TABLE_METRICS = ("roc_auc", "pr_auc", "log_loss", "brier", "f1", "accuracy")
MULTICLASS_TABLE_METRICS = ("roc_auc", "log_loss", "macro_f1", "accuracy")
HEADS = {"roc_auc": "ROC-AUC", "pr_auc": "PR-AUC", "log_loss": "log-loss", "brier": "Brier", "f1": "F1",
         "accuracy": "accuracy", "macro_f1": "macro F1"}


def load_classify_run(run: str | Path, only_served: bool = False) -> runs.TrainedRun:
    """The models of ``run`` (only the served one with ``only_served``), its schema and selection."""
    return runs.load_trained_run(run, load_model, "classify", only_served)


def known_labels(schema: FeatureSchema):
    """The target check of a labelled file (:func:`~tabular_mining.common.runs.labelled_frame`):
    every label one of the run's classes (a decorated one gets the ``data.label_map`` that maps
    it), none missing."""
    def check(y: pd.Series, source: str, column: str) -> pd.Series:
        unseen = sorted(set(y.dropna().astype(str)) - set(schema.classes))
        if unseen:
            raise UserError(f"{source}: target value {unseen[0]!r} was not seen in training (classes: {schema.classes})"
                            + label_map_hint(unseen, schema.classes))
        if y.isna().any():
            raise UserError(f"{source}: target column {column!r} has {int(y.isna().sum())} missing values")
        return y

    return check


def score_models(loaded: runs.TrainedRun, frame: pd.DataFrame, source: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The true labels of ``frame`` and every model's probabilities (of the positive class; for
    K > 2 classes, ``(n, K)``)."""
    X, y = encode_frame(frame, loaded.schema, source), encode_target(frame[loaded.schema.target], loaded.schema)
    return y, {name: m.predict_proba(X) for name, m in loaded.models.items()}


def write_report(loaded: runs.TrainedRun, cfg: ClassifyConfig, y: np.ndarray, scores: dict[str, np.ndarray],
                 split: str, out: Path, cv: dict | None = None) -> tuple[dict[str, dict[str, float]], str]:
    """Metrics of every model at ``cfg.eval.threshold`` (the argmax for K > 2 classes); plots,
    ``comparison.md`` and ``comparison.json`` into ``out``. Returns the metrics by model and the
    comparison table."""
    threshold, classes = cfg.eval.threshold, loaded.schema.classes
    by_model = {name: score_probabilities(y, p, classes, threshold) for name, p in scores.items()}
    if cfg.eval.plots and len(classes) > 2:
        plots.confusion_matrix(confusion(y, scores[loaded.served].argmax(axis=1), len(classes)), classes,
                               out / "confusion_matrix.png", title=f"{loaded.served}, most probable class ({split})")
    elif cfg.eval.plots:
        plots.roc_curves(y, scores, out / "roc.png", title=f"ROC ({split})")
        plots.pr_curves(y, scores, out / "pr.png", title=f"Precision-recall ({split})")
        plots.calibration(y, scores, out / "calibration.png")
        pred = (scores[loaded.served] >= threshold).astype(int)
        plots.confusion_matrix(confusion(y, pred, 2), loaded.schema.classes, out / "confusion_matrix.png",
                               title=f"{loaded.served} @ {threshold:g} ({split})")
    table = comparison_table(by_model, loaded.selection, cv or {}, loaded.served, split, len(y))
    write_text(out / "comparison.md", table)
    write_json(out / "comparison.json", {"split": split, "rows": len(y),
                                         "threshold": threshold if len(classes) == 2 else None, split: by_model,
                                         "cv": cv or {}, "selection": loaded.selection})
    log.info("%s metrics for %s:\n%s", split, loaded.path.name, table)
    return by_model, table


def comparison_table(scores: dict, selection: dict, cv: dict, served: str, split: str = "test",
                     rows: int | None = None) -> str:
    """The models side by side on ``split`` (``test``, ``valid`` or ``data`` for a user's file); for
    K > 2 classes ROC-AUC is the macro one-vs-rest one and F1 the macro F1."""
    columns = MULTICLASS_TABLE_METRICS if any("macro_f1" in m for m in scores.values()) else TABLE_METRICS
    head = "| model | valid ROC-AUC | " + " | ".join(f"{split} {HEADS[k]}" for k in columns) + " |"
    if cv:
        head += " CV ROC-AUC (mean ± std) |"
    head += " fit s |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for name, m in scores.items():
        valid = selection["valid"][name].get("roc_auc", float("nan"))
        row = f"| {name}{' (served)' if name == served else ''} | {valid:.4f} | " + \
              " | ".join(f"{m.get(k, float('nan')):.4f}" for k in columns) + " |"
        if cv:
            row += f" {cv[name]['roc_auc_mean']:.4f} ± {cv[name]['roc_auc_std']:.4f} |"
        row += f" {selection['fit_seconds'].get(name, float('nan')):.2f} |"
        lines.append(row)
    return "\n".join(lines) + f"\n\n{runs.scored_on(split, rows)}.\n"


def evaluate(cfg: ClassifyConfig, run: Path, data: Path | None) -> dict:
    """The evaluate stage: every model of ``run`` on ``data`` (a labelled CSV/Parquet file) or on
    the test split, at ``cfg.eval.threshold``. Writes ``evaluations/<stem>/`` (or
    ``evaluations/test-split/``); returns the served model's metrics and where they went."""
    loaded = load_classify_run(run)
    frame, split, out = runs.evaluation_rows(
        run, data, lambda: load_splits(cfg.name, cfg.data, cfg.distributed).test,
        lambda path: runs.labelled_frame(path, loaded.schema, cfg.data, known_labels(loaded.schema), "labels"),
        "a labelled file")
    y, scores = score_models(loaded, frame, str(data or "test split"))
    by_model, _ = write_report(loaded, cfg, y, scores, split, out)
    metrics = {**with_split(split, by_model[loaded.served]), f"{split}/rows": len(frame)}
    write_json(out / "metrics.json", metrics)
    threshold = cfg.eval.threshold if len(loaded.schema.classes) == 2 else None
    return {"evaluation": str(out), "model": loaded.served, "threshold": threshold,
            **{k: round(v, 4) for k, v in metrics.items()}}


def cross_validate(cfg: ClassifyConfig, rows: pd.DataFrame, names: list[str], classes: list[str]
                   ) -> dict[str, dict[str, float]]:
    """Stratified k-fold over ``rows`` for each model, on the same folds. Each fold infers its own
    schema and early-stops on a stratified slice of its training part (no test rows used)."""
    target, data = cfg.data.target, cfg.data
    y_all = rows[target].astype(str)
    if len(classes) > 2:  # a fold without some class has no macro ROC-AUC
        counts = y_all.value_counts()
        if counts.min() < cfg.eval.cv_folds:
            raise UserError(f"class {counts.idxmin()!r} of {target!r} has {counts.min()} rows, fewer than "
                            f"eval.cv_folds={cfg.eval.cv_folds} (stratified k-fold puts one in each fold): lower "
                            "eval.cv_folds, or merge the class into another with data.label_map")
    folds = StratifiedKFold(cfg.eval.cv_folds, shuffle=True, random_state=data.seed)
    per_model: dict[str, list[dict]] = {n: [] for n in names}
    for k, (fit_idx, test_idx) in enumerate(folds.split(rows, y_all)):
        fit_rows, test_rows = rows.iloc[fit_idx], rows.iloc[test_idx]
        tr, va = train_test_split(fit_rows, test_size=data.valid_size / (1 - 1 / cfg.eval.cv_folds),
                                  stratify=fit_rows[target].astype(str), random_state=data.seed)
        schema = infer_schema(tr, target, classes, data.id_columns, data.drop_columns, data.categorical, data.numeric)
        enc = {n: (encode_frame(f, schema), encode_target(f[target], schema))
               for n, f in (("tr", tr), ("va", va), ("te", test_rows))}
        for name in names:
            model = fit_model(name, schema, *enc["tr"], *enc["va"], cfg.model, seed=data.seed)
            per_model[name].append(score_probabilities(enc["te"][1], model.predict_proba(enc["te"][0]), classes,
                                                       cfg.eval.threshold))
        log.info("cv fold %d/%d: %s", k + 1, cfg.eval.cv_folds,
                 "  ".join(f"{n}={per_model[n][-1].get('roc_auc', float('nan')):.4f}" for n in names))
    return {n: mean_std(v) for n, v in per_model.items()}


def held_out_report(cfg: ClassifyConfig, run: Path, splits: Splits) -> dict:
    """What ``train`` ends with: every model on the test split (plots and comparison in the run),
    CV when ``eval.cv_folds`` ≥ 2, and the model card's section. Returns ``split/metric`` keys."""
    loaded = load_classify_run(run)
    frame, split = runs.held_out_rows(splits.test, splits.valid)
    cv = {}
    if cfg.eval.cv_folds >= 2:
        cv = cross_validate(cfg, splits.all_rows(), list(loaded.models), loaded.schema.classes)
    if frame.empty:  # nothing held out at all (distributed: dask with data.test_size=0)
        return {"card": card_section(cfg, loaded, splits.manifest, "")}
    y, scores = score_models(loaded, frame, f"{split} split")
    by_model, table = write_report(loaded, cfg, y, scores, split, Path(run), cv)
    metrics = with_split(split, by_model[loaded.served])
    for name, values in cv.items():
        metrics.update({f"cv/{name}/{k}": v for k, v in values.items() if k.startswith("roc_auc")})
    if cv:
        metrics.update({f"cv/{k}": v for k, v in cv[loaded.served].items()})
    return {**metrics, "card": card_section(cfg, loaded, splits.manifest, table)}


def card_section(cfg: ClassifyConfig, loaded: runs.TrainedRun, manifest: dict, table: str) -> str:
    """The classify part of the run's model card: data, the served model, the comparison."""
    m, classes = manifest, loaded.schema.classes
    if len(classes) == 2:
        target = f"positive class `{classes[1]}`"
        share = f"positive rate {m['positive_rate']['train'] or 0:.3f}"
        decision = f"decision threshold {cfg.eval.threshold:g}"
        calibration = "Probabilities are calibrated only as well as `calibration.png` shows"
    else:
        target = f"{len(classes)} classes ({', '.join(f'`{c}`' for c in classes)})"
        share = "rows per class in train " + ", ".join(f"{c} {n}" for c, n in m.get("class_rows", {}).items())
        decision = "label = the most probable class; ROC-AUC = macro one-vs-rest"
        calibration = "Probabilities are not checked for calibration with more than two classes (see the log-loss)"
    return f"""
## Classification
- Target `{loaded.schema.target}`, {target}; rows train/valid/test =
  {m['rows']['train']}/{m['rows']['valid']}/{m['rows']['test']}; {share};
  {m['features']['numeric']} numeric and {m['features']['categorical']} categorical features (`feature_schema.json`).
- Served model: **{loaded.served}**, chosen by {loaded.selection['by']} among {', '.join(loaded.models)};
  {decision}.

{table}
{calibration}; categories unseen in training
are treated as missing.
"""
