"""Which of a run's models is served: the better on the validation split (``model.select_by``),
and the table that shows the choice (``comparison.md`` / ``comparison.json`` in the run and a
section of its model card). Pure functions over score dicts."""
from __future__ import annotations

LOWER_IS_BETTER = {"log_loss"}
COLUMNS = [("valid", "accuracy"), ("valid", "macro_f1"), ("valid", "log_loss"),
           ("test", "accuracy"), ("test", "macro_f1"), ("test", "roc_auc")]


def pick_best(valid: dict[str, dict[str, float]], metric: str) -> str:
    """The model with the best ``valid/<metric>`` in ``valid`` (``{model: {"valid/accuracy": …}}``);
    on a tie the first listed (the baseline: cheaper to run)."""
    sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
    return max(valid, key=lambda name: sign * valid[name][f"valid/{metric}"])


def comparison_rows(scores: dict[str, dict[str, float]], seconds: dict[str, float], served: str) -> list[dict]:
    """One row per model: its validation and test headline scores, fit seconds (None: not trained in
    this run, e.g. a distillation teacher), test texts/s."""
    rows = []
    for name, values in scores.items():
        fit = round(seconds[name], 2) if name in seconds else None
        row = {"model": name, "served": name == served, "fit_seconds": fit,
               "texts_per_second": values.get("test/texts_per_second")}
        row.update({f"{split}/{metric}": values.get(f"{split}/{metric}") for split, metric in COLUMNS})
        rows.append(row)
    return rows


def comparison_table(rows: list[dict], select_by: str) -> str:
    """The rows as markdown; the served model's row is marked."""
    head = "| model | " + " | ".join(f"{s} {m.replace('_', '-')}" for s, m in COLUMNS) + " | fit s | texts/s |"
    lines = [f"Served: the better on the validation split by {select_by} (ties: the baseline)."]
    if any(row["model"] == "teacher" for row in rows):
        lines[0] += " The teacher (model.distill.teacher) is scored on the same texts; it is not a candidate."
    lines += ["", head,
             "|" + "---|" * (len(COLUMNS) + 3)]
    for row in rows:
        cells = ["-" if row[f"{s}/{m}"] is None else f"{row[f'{s}/{m}']:.4f}" for s, m in COLUMNS]
        speed = "-" if row["texts_per_second"] is None else f"{row['texts_per_second']:.0f}"
        name = f"**{row['model']}** (served)" if row["served"] else row["model"]
        fit = "-" if row["fit_seconds"] is None else f"{row['fit_seconds']:.0f}"
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {fit} | {speed} |")
    return "\n".join(lines) + "\n"
