"""A trained run of a supervised table task (classify, regress): its candidate models saved and
loaded back (``models/<name>/model.json`` names each), the served one picked by a validation
metric, and the rows an evaluation scores (the test split, the validation rows when there is no
test split, or a user's labelled file in the training format).

The task brings what differs: its ``load_model``, its metrics, how it checks a target column.
:func:`evaluation_rows` also serves the segment task's evaluate stage.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from shared.errors import UserError
from shared.runs import TEST_SPLIT, evaluation_dir, read_json, write_json
from tabular_mining.common.features import FeatureSchema, clean
from tabular_mining.common.table import TableData, apply_label_map, headerless_hint, read_table

log = logging.getLogger(__name__)
LOWER_IS_BETTER = {"log_loss", "brier", "rmse", "mae", "mape"}  # every other tabular metric: higher wins


def pick_best(valid_scores: dict[str, dict[str, float]], metric: str) -> str:
    """The model with the best validation ``metric`` (ties: the first listed). Pure."""
    sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
    return max(valid_scores, key=lambda name: sign * valid_scores[name][metric])


def save_model(model, directory: Path, **meta) -> None:
    """``model.save(directory)`` and ``model.json``: the model's name, ``meta``, then its ``info``."""
    directory.mkdir(parents=True, exist_ok=True)
    model.save(directory)
    write_json(directory / "model.json", {"model": model.name, **meta, **model.info})


@dataclass
class TrainedRun:
    """A trained run loaded back from disk (its models, schema and model selection)."""

    path: Path
    schema: FeatureSchema
    selection: dict
    models: dict[str, Any]

    @property
    def served(self) -> str:
        return self.selection["served"]


def load_trained_run(run: str | Path, load_model: Callable[[Path, FeatureSchema], Any], task: str,
                     only_served: bool = False) -> TrainedRun:
    """The models of ``run`` (only the served one with ``only_served``), each read by the task's
    ``load_model``, its schema and selection."""
    path = Path(run)
    if not (path / "selection.json").exists():
        raise UserError(f"{path} has no selection.json: it is not a finished {task} run (train it first)")
    schema = FeatureSchema.from_dict(read_json(path / "feature_schema.json"))
    selection = read_json(path / "selection.json")
    names = [selection["served"]] if only_served else list(selection["valid"])
    return TrainedRun(path, schema, selection, {n: load_model(path / "models" / n, schema) for n in names})


TargetCheck = Callable[[pd.Series, str, str], pd.Series]  # (column, source, its name in the file) -> column


def labelled_frame(path: str | Path, schema: FeatureSchema, data: TableData, check_target: TargetCheck,
                   truth: str = "values") -> pd.DataFrame:
    """A user file in the training format, validated against the run's schema: its target column is
    ``data.target`` (renamed to the run's), its values renamed by ``data.label_map``, then checked
    by the task's ``check_target``; ``data.na_values`` read as missing. ``truth`` names what the
    target holds (``labels``, ``values``) in the message for a missing column."""
    target = data.target
    df = read_table(path, data.format, data.na_values, data.column_names)
    if target not in df.columns:
        column = "label" if truth == "labels" else "target"
        raise UserError(f"{path}: target column {target!r} is missing; evaluate needs the true {truth} "
                        f"(name the file's {column} column with data.target=COLUMN){headerless_hint(df.columns)}")
    df = apply_label_map(df, data, target)
    df = df.rename(columns={target: schema.target}) if target != schema.target else df
    df[schema.target] = check_target(df[schema.target], str(path), target)
    missing = [n for n in schema.names if n not in df.columns]
    if missing:
        raise UserError(f"{path}: feature column {missing[0]!r} is missing")
    return clean(df, schema, str(path))


def evaluation_rows(run: Path, data: Path | None, test_rows: Callable[[], pd.DataFrame],
                    file_rows: Callable[[Path], pd.DataFrame], what: str = "a file") -> tuple[pd.DataFrame, str, Path]:
    """What the evaluate stage scores and where it writes: ``(rows, split, folder)``; ``data``
    read by ``file_rows`` into ``evaluations/<stem>/`` (split ``data``), else the test split into
    ``evaluations/test-split/``, a one-line error when there is none."""
    if data is not None:
        return file_rows(data), "data", evaluation_dir(run, data)
    frame = test_rows()
    if frame.empty:
        raise UserError(f"{run} has no test split (data.test_size=0): evaluate {what} with --data FILE")
    return frame, "test", Path(run) / "evaluations" / TEST_SPLIT


def held_out_rows(test: pd.DataFrame, valid: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The rows ``train`` reports on: the test split, or the validation rows when
    ``data.test_size=0`` (warned: they chose the model)."""
    if len(test) or not len(valid):
        return test, "test"
    log.warning("data.test_size=0: no test split, so the run reports the validation rows (which chose the model "
                "and stopped the trees: optimistic); score a separate file with evaluate --data FILE")
    return valid, "valid"


def scored_on(split: str, rows: int | None) -> str:
    """The comparison table's footnote: ``Scored on the test split (1,409 rows)``."""
    where = {"test": "the test split", "valid": "the validation split", "data": "the file"}.get(split, split)
    return f"Scored on {where}" + (f" ({rows:,} rows)" if rows is not None else "")
