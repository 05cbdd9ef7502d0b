"""The evaluate stage of ``task: regress``: score every model of a run on its test split or on any
file in the training format (RMSE, MAE, R², MAPE), with plots and a comparison table; and the
held-out report that ``train`` ends with.

    python -m tabular_mining evaluate [--run runs/tabular_mining/house_prices/latest] [--data FILE]

The config is the run's own with the command-line overrides on top (``data.target`` naming the
file's target column, ``data.format``, ``data.na_values``). ``--data FILE`` writes
``<run>/evaluations/<file stem>/`` (``metrics.json`` with ``data/`` keys and the row count, the
served model's ``predicted_vs_actual.png`` and ``residuals.png``, ``comparison.md``); without it
the test split is scored into ``<run>/evaluations/test-split/``. The run's own ``metrics.json``
(what ``train`` measured) is never changed by this stage.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from shared.errors import UserError
from shared.metrics import regression, with_split
from shared.runs import TEST_SPLIT, evaluation_dir, read_json, write_json, write_text
from tabular_mining.common.features import FeatureSchema, clean, encode_frame
from tabular_mining.common.plots import predicted_vs_actual, residual_plot
from tabular_mining.common.table import TableData, apply_label_map, headerless_hint, read_table
from tabular_mining.regress.config import RegressConfig
from tabular_mining.regress.data import Splits, load_splits, numeric_target
from tabular_mining.regress.model import Regressor, load_model

log = logging.getLogger(__name__)
TABLE_METRICS = ("rmse", "mae", "r2", "mape")


@dataclass
class RegressRun:
    """A trained regress run loaded back from disk (its models, schema and model selection)."""

    path: Path
    schema: FeatureSchema
    selection: dict
    models: dict[str, Regressor]

    @property
    def served(self) -> str:
        return self.selection["served"]


def load_regress_run(run: str | Path, only_served: bool = False) -> RegressRun:
    """The models of ``run`` (only the served one with ``only_served``), its schema and selection."""
    path = Path(run)
    if not (path / "selection.json").exists():
        raise UserError(f"{path} has no selection.json: it is not a finished regress run (train it first)")
    schema = FeatureSchema.from_dict(read_json(path / "feature_schema.json"))
    selection = read_json(path / "selection.json")
    names = [selection["served"]] if only_served else list(selection["valid"])
    return RegressRun(path, schema, selection, {n: load_model(path / "models" / n, schema) for n in names})


def labelled_frame(path: str | Path, schema: FeatureSchema, data: TableData) -> pd.DataFrame:
    """A user file in the training format, validated against the run's schema; its target column
    is ``data.target`` (renamed to the run's), numeric, with no missing values."""
    target = data.target
    df = read_table(path, data.format, data.na_values, data.column_names)
    if target not in df.columns:
        raise UserError(f"{path}: target column {target!r} is missing; evaluate needs the true values "
                        f"(name the file's target column with data.target=COLUMN){headerless_hint(df.columns)}")
    df = apply_label_map(df, data, target)
    df = df.rename(columns={target: schema.target}) if target != schema.target else df
    df[schema.target] = numeric_target(df[schema.target], str(path), target)
    missing = [n for n in schema.names if n not in df.columns]
    if missing:
        raise UserError(f"{path}: feature column {missing[0]!r} is missing")
    return clean(df, schema, str(path))


def score_models(loaded: RegressRun, frame: pd.DataFrame, source: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The true values of ``frame`` and every model's predictions."""
    X = encode_frame(frame, loaded.schema, source)
    return frame[loaded.schema.target].to_numpy(dtype=float), {n: m.predict(X) for n, m in loaded.models.items()}


def write_report(loaded: RegressRun, cfg: RegressConfig, y: np.ndarray, preds: dict[str, np.ndarray], split: str,
                 out: Path) -> dict[str, dict[str, float]]:
    """Metrics of every model; the served model's plots, ``comparison.md`` and ``comparison.json``
    into ``out``. Returns the metrics by model."""
    by_model = {name: regression(y, p) for name, p in preds.items()}
    if cfg.eval.plots:
        served, target = loaded.served, loaded.schema.target
        predicted_vs_actual(y, preds[served], out / "predicted_vs_actual.png", f"{served}: predicted vs actual ({split})",
                            target, seed=cfg.data.seed)
        residual_plot(y, preds[served], out / "residuals.png", f"{served}: residuals ({split})", target,
                      seed=cfg.data.seed)
    table = comparison_table(by_model, loaded.selection, loaded.served, split, len(y))
    write_text(out / "comparison.md", table)
    write_json(out / "comparison.json", {"split": split, "rows": len(y), split: by_model,
                                         "selection": loaded.selection})
    log.info("%s metrics for %s:\n%s", split, loaded.path.name, table)
    return by_model


def comparison_table(scores: dict, selection: dict, served: str, split: str = "test", rows: int | None = None) -> str:
    """The models side by side on ``split`` (``test``, ``valid`` or ``data`` for a user's file)."""
    head = (f"| model | valid RMSE | {split} RMSE | {split} MAE | {split} R² | {split} MAPE | fit s |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for name, m in scores.items():
        lines.append(f"| {name}{' (served)' if name == served else ''} | {selection['valid'][name]['rmse']:.6g} | "
                     + " | ".join(f"{m[k]:.6g}" if k != "r2" else f"{m[k]:.4f}" for k in TABLE_METRICS)
                     + f" | {selection['fit_seconds'].get(name, float('nan')):.2f} |")
    where = {"test": "the test split", "valid": "the validation split", "data": "the file"}.get(split, split)
    count = f" ({rows:,} rows)" if rows is not None else ""
    return "\n".join(lines) + f"\n\nScored on {where}{count}; MAPE is a fraction (0.1 = 10 %).\n"


def evaluate(cfg: RegressConfig, run: Path, data: Path | None) -> dict:
    """The evaluate stage: every model of ``run`` on ``data`` (a CSV/Parquet file with the target)
    or on the test split. Writes ``evaluations/<stem>/`` (or ``evaluations/test-split/``); returns
    the served model's metrics and where they went."""
    loaded = load_regress_run(run)
    if data is None:
        frame = load_splits(cfg.name, cfg.data).test
        split, out = "test", Path(run) / "evaluations" / TEST_SPLIT
        if frame.empty:
            raise UserError(f"{run} has no test split (data.test_size=0): evaluate a file with --data FILE")
    else:
        frame, split = labelled_frame(data, loaded.schema, cfg.data), "data"
        out = evaluation_dir(run, data)
    y, preds = score_models(loaded, frame, str(data or "test split"))
    by_model = write_report(loaded, cfg, y, preds, split, out)
    metrics = {**with_split(split, by_model[loaded.served]), f"{split}/rows": len(frame)}
    write_json(out / "metrics.json", metrics)
    return {"evaluation": str(out), "model": loaded.served, **{k: round(v, 4) for k, v in metrics.items()}}


def held_out_report(cfg: RegressConfig, run: Path, splits: Splits) -> dict:
    """What ``train`` ends with: every model on the test split (the validation rows when
    ``data.test_size=0``), plots and comparison in the run, and the model card's section; also
    ``<split>/rmse_mean_baseline``, the RMSE of predicting the training mean for every row."""
    loaded = load_regress_run(run)
    frame, split = (splits.test, "test") if len(splits.test) else (splits.valid, "valid")
    if split == "valid":
        log.warning("data.test_size=0: no test split, so the run reports the validation rows (which chose the model "
                    "and stopped the trees: optimistic); score a separate file with evaluate --data FILE")
    y, preds = score_models(loaded, frame, f"{split} split")
    by_model = write_report(loaded, cfg, y, preds, split, Path(run))
    table = comparison_table(by_model, loaded.selection, loaded.served, split, len(y))
    baseline = float(np.sqrt(np.mean((y - splits.manifest["target"]["train"]["mean"]) ** 2)))
    return {**with_split(split, by_model[loaded.served]), f"{split}/rmse_mean_baseline": baseline,
            "card": card_section(cfg, loaded, splits.manifest, table)}


def card_section(cfg: RegressConfig, loaded: RegressRun, manifest: dict, table: str) -> str:
    """The regress part of the run's model card: data, the served model, the comparison."""
    m, target = manifest, manifest["target"]["train"]
    scale = "log1p of the target (predictions are expm1 of the model's output)" if cfg.model.log_target else \
        "the target as it is"
    return f"""
## Regression
- Target `{loaded.schema.target}` (train mean {target['mean']:.6g}, std {target['std']:.6g}, range
  {target['min']:.6g} … {target['max']:.6g}); rows train/valid/test = {m['rows']['train']}/{m['rows']['valid']}/{m['rows']['test']}
  (random split); {m['features']['numeric']} numeric and {m['features']['categorical']} categorical features
  (`feature_schema.json`). Models fitted on {scale}.
- Served model: **{loaded.served}**, chosen by {loaded.selection['by']} among {', '.join(loaded.models)}.

{table}
`predicted_vs_actual.png` and `residuals.png` show the served model on the same rows; categories
unseen in training are treated as missing.
"""
