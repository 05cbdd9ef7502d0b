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
from pathlib import Path

import numpy as np
import pandas as pd

from shared.metrics import regression, with_split
from shared.runs import write_json, write_text
from tabular_mining.common import runs
from tabular_mining.common.features import encode_frame
from tabular_mining.common.plots import predicted_vs_actual, residual_plot
from tabular_mining.common.splits import Splits
from tabular_mining.regress.config import RegressConfig
from tabular_mining.regress.data import load_splits
from tabular_mining.regress.model import load_model
from tabular_mining.regress.target import numeric_target

log = logging.getLogger(__name__)
TABLE_METRICS = ("rmse", "mae", "r2", "mape")


def load_regress_run(run: str | Path, only_served: bool = False) -> runs.TrainedRun:
    """The models of ``run`` (only the served one with ``only_served``), its schema and selection."""
    return runs.load_trained_run(run, load_model, "regress", only_served)


def score_models(loaded: runs.TrainedRun, frame: pd.DataFrame, source: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The true values of ``frame`` and every model's predictions."""
    X = encode_frame(frame, loaded.schema, source)
    return frame[loaded.schema.target].to_numpy(dtype=float), {n: m.predict(X) for n, m in loaded.models.items()}


def write_report(loaded: runs.TrainedRun, cfg: RegressConfig, y: np.ndarray, preds: dict[str, np.ndarray], split: str,
                 out: Path) -> tuple[dict[str, dict[str, float]], str]:
    """Metrics of every model; the served model's plots, ``comparison.md`` and ``comparison.json``
    into ``out``. Returns the metrics by model and the comparison table."""
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
    return by_model, table


def comparison_table(scores: dict, selection: dict, served: str, split: str = "test", rows: int | None = None) -> str:
    """The models side by side on ``split`` (``test``, ``valid`` or ``data`` for a user's file)."""
    head = (f"| model | valid RMSE | {split} RMSE | {split} MAE | {split} R² | {split} MAPE | fit s |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for name, m in scores.items():
        lines.append(f"| {name}{' (served)' if name == served else ''} | {selection['valid'][name]['rmse']:.6g} | "
                     + " | ".join(f"{m[k]:.6g}" if k != "r2" else f"{m[k]:.4f}" for k in TABLE_METRICS)
                     + f" | {selection['fit_seconds'].get(name, float('nan')):.2f} |")
    return "\n".join(lines) + f"\n\n{runs.scored_on(split, rows)}; MAPE is a fraction (0.1 = 10 %).\n"


def evaluate(cfg: RegressConfig, run: Path, data: Path | None) -> dict:
    """The evaluate stage: every model of ``run`` on ``data`` (a CSV/Parquet file with the target)
    or on the test split. Writes ``evaluations/<stem>/`` (or ``evaluations/test-split/``); returns
    the served model's metrics and where they went."""
    loaded = load_regress_run(run)
    frame, split, out = runs.evaluation_rows(run, data, lambda: load_splits(cfg.name, cfg.data, cfg.distributed).test,
                                        lambda path: runs.labelled_frame(path, loaded.schema, cfg.data, numeric_target))
    y, preds = score_models(loaded, frame, str(data or "test split"))
    by_model, _ = write_report(loaded, cfg, y, preds, split, out)
    metrics = {**with_split(split, by_model[loaded.served]), f"{split}/rows": len(frame)}
    write_json(out / "metrics.json", metrics)
    return {"evaluation": str(out), "model": loaded.served, **{k: round(v, 4) for k, v in metrics.items()}}


def held_out_report(cfg: RegressConfig, run: Path, splits: Splits) -> dict:
    """What ``train`` ends with: every model on the test split (the validation rows when
    ``data.test_size=0``), plots and comparison in the run, and the model card's section; also
    ``<split>/rmse_mean_baseline``, the RMSE of predicting the training mean for every row."""
    loaded = load_regress_run(run)
    frame, split = runs.held_out_rows(splits.test, splits.valid)
    y, preds = score_models(loaded, frame, f"{split} split")
    by_model, table = write_report(loaded, cfg, y, preds, split, Path(run))
    baseline = float(np.sqrt(np.mean((y - splits.manifest["target"]["train"]["mean"]) ** 2)))
    return {**with_split(split, by_model[loaded.served]), f"{split}/rmse_mean_baseline": baseline,
            "card": card_section(cfg, loaded, splits.manifest, table)}


def card_section(cfg: RegressConfig, loaded: runs.TrainedRun, manifest: dict, table: str) -> str:
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
