"""The evaluate stage for ``task: classify``: score every model of a run on its test split (or on
any file in the training format), with plots, a comparison table, and stratified k-fold CV.

    python -m tabular_mining evaluate [--run runs/tabular_mining/churn/latest] [--data FILE]
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from sklearn.model_selection import StratifiedKFold, train_test_split

from shared import plots
from shared.config import validate
from shared.errors import UserError
from shared.metrics import binary_classification, confusion, mean_std, with_split
from shared.runs import load_run_config, read_json, resolve_run, update_metrics, write_json, write_text
from tabular_mining.config import ClassifyConfig
from tabular_mining.data import read_table
from tabular_mining.features import FeatureSchema, encode_frame, encode_target, infer_schema
from tabular_mining.models import Classifier, fit_model, load_model
from tabular_mining.preprocess import Splits, clean, load_splits

log = logging.getLogger(__name__)
TABLE_METRICS = ("roc_auc", "pr_auc", "log_loss", "brier", "f1", "accuracy")


@dataclass
class ClassifyRun:
    """A trained classify run loaded back from disk."""

    path: Path
    cfg: ClassifyConfig
    schema: FeatureSchema
    selection: dict
    models: dict[str, Classifier]

    @property
    def served(self) -> str:
        return self.selection["served"]


def load_classify_run(run: str | Path, only_served: bool = False) -> ClassifyRun:
    path = resolve_run(run)
    cfg = validate(ClassifyConfig, load_run_config(path), source=f"{path}/config.yaml")
    schema = FeatureSchema.from_dict(read_json(path / "feature_schema.json"))
    selection = read_json(path / "selection.json")
    names = [selection["served"]] if only_served else list(selection["valid"])
    models = {n: load_model(path / "models" / n, schema) for n in names}
    return ClassifyRun(path, cfg, schema, selection, models)


def labelled_frame(path: str, schema: FeatureSchema, fmt: str = "auto") -> pd.DataFrame:
    """A user file in the training format, validated against the run's schema (target included)."""
    df = read_table(path, fmt)
    if schema.target not in df.columns:
        raise UserError(f"{path}: target column {schema.target!r} is missing; evaluate needs the true labels")
    unseen = sorted(set(df[schema.target].dropna().astype(str)) - set(schema.classes))
    if unseen:
        raise UserError(f"{path}: target value {unseen[0]!r} was not seen in training (classes: {schema.classes})")
    missing = [n for n in schema.names if n not in df.columns]
    if missing:
        raise UserError(f"{path}: feature column {missing[0]!r} is missing")
    return clean(df, schema, path)


def cross_validate(cfg: ClassifyConfig, rows: pd.DataFrame, names: list[str], classes: list[str]
                   ) -> dict[str, dict[str, float]]:
    """Stratified k-fold over ``rows`` for each model, on the same folds. Each fold infers its own
    schema and early-stops on a stratified slice of its training part (no test rows used)."""
    target, data = cfg.data.target, cfg.data
    y_all = rows[target].astype(str)
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
            per_model[name].append(binary_classification(enc["te"][1], model.predict_proba(enc["te"][0]),
                                                         cfg.eval.threshold))
        log.info("cv fold %d/%d: %s", k + 1, cfg.eval.cv_folds,
                 "  ".join(f"{n}={per_model[n][-1]['roc_auc']:.4f}" for n in names))
    return {n: mean_std(v) for n, v in per_model.items()}


def comparison_table(test: dict, selection: dict, cv: dict, served: str) -> str:
    head = "| model | valid ROC-AUC | test ROC-AUC | test PR-AUC | test log-loss | test Brier | test F1 | test accuracy |"
    if cv:
        head += " CV ROC-AUC (mean ± std) |"
    head += " fit s |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for name, m in test.items():
        row = f"| {name}{' (served)' if name == served else ''} | {selection['valid'][name]['roc_auc']:.4f} | " + \
              " | ".join(f"{m[k]:.4f}" for k in TABLE_METRICS) + " |"
        if cv:
            row += f" {cv[name]['roc_auc_mean']:.4f} ± {cv[name]['roc_auc_std']:.4f} |"
        row += f" {selection['fit_seconds'].get(name, float('nan')):.2f} |"
        lines.append(row)
    return "\n".join(lines) + "\n"


def evaluate_run(run: str | Path, data: str | None = None, splits: Splits | None = None) -> dict:
    """Score the run's models on its test split (``data=None``) or on ``data``; write metrics,
    plots and the comparison table. Returns the headline metrics."""
    loaded = load_classify_run(run)
    cfg, schema = loaded.cfg, loaded.schema
    if data is None:
        splits = splits or load_splits(cfg.name, cfg.data)
        frame, split, out = splits.test, "test", loaded.path
    else:
        frame, split = labelled_frame(data, schema), "data"
        out = loaded.path / "evaluations" / Path(data).stem
    X, y = encode_frame(frame, schema, str(data or "test split")), encode_target(frame[schema.target], schema)
    scores = {name: m.predict_proba(X) for name, m in loaded.models.items()}
    test = {name: binary_classification(y, p, cfg.eval.threshold) for name, p in scores.items()}
    metrics = with_split(split, test[loaded.served])

    if cfg.eval.plots:
        plots.roc_curves(y, scores, out / "roc.png", title=f"ROC ({split})")
        plots.pr_curves(y, scores, out / "pr.png", title=f"Precision-recall ({split})")
        plots.calibration(y, scores, out / "calibration.png")
        pred = (scores[loaded.served] >= cfg.eval.threshold).astype(int)
        plots.confusion_matrix(confusion(y, pred, 2), schema.classes, out / "confusion_matrix.png",
                               title=f"{loaded.served} @ {cfg.eval.threshold:g} ({split})")

    cv = {}
    if data is None and cfg.eval.cv_folds >= 2:
        cv = cross_validate(cfg, splits.all_rows(), list(loaded.models), schema.classes)
        for name, values in cv.items():
            metrics.update({f"cv/{name}/{k}": v for k, v in values.items() if k.startswith("roc_auc")})
        metrics.update({f"cv/{k}": v for k, v in cv[loaded.served].items()})
    table = comparison_table(test, loaded.selection, cv, loaded.served)
    write_text(out / "comparison.md", table)
    write_json(out / "comparison.json", {"split": split, "test": test, "cv": cv, "selection": loaded.selection})
    if data is None:
        update_metrics(loaded.path, metrics)
        write_model_card(loaded, splits, metrics, table)
    else:
        write_json(out / "metrics.json", metrics)
    log.info("%s metrics for %s:\n%s", split, loaded.path.name, table)
    return {k: round(v, 4) for k, v in metrics.items() if k.count("/") == 1}


def write_model_card(loaded: ClassifyRun, splits: Splits, metrics: dict, table: str) -> None:
    m = splits.manifest
    card = f"""# Model card: {loaded.cfg.name} ({loaded.path.name})

- Task: binary classification of `{loaded.schema.target}` (positive class `{loaded.schema.classes[1]}`).
- Data: {m['source']}; rows train/valid/test = {m['rows']['train']}/{m['rows']['valid']}/{m['rows']['test']};
  positive rate {m['positive_rate']['train']:.3f}; {m['features']['numeric']} numeric and
  {m['features']['categorical']} categorical features (see `feature_schema.json`).
- Served model: **{loaded.served}**, chosen by {loaded.selection['by']} among {', '.join(loaded.models)}.
- Decision threshold: {loaded.cfg.eval.threshold:g}.

## Results
{table}
Test ROC-AUC of the served model: {metrics.get('test/roc_auc', float('nan')):.4f}.

## Limits
Trained on one historical snapshot; probabilities are calibrated only as well as the calibration
plot shows; categories unseen in training are treated as missing.
"""
    write_text(loaded.path / "MODEL_CARD.md", card)
