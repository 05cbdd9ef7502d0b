"""What the ``evaluate`` and ``predict`` stages read and write: scores into an evaluation folder
(merged, so a second backend's keys sit beside the first's), one text per line in, one JSON object
per line out (``-`` is stdin / stdout)."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from shared import runs, textfiles
from shared.errors import UserError


def read_lines(path: str | Path | None) -> list[str]:
    """Non-empty lines of a text file (``-`` = stdin), stripped."""
    return [line for _, line in numbered_lines(path)]


def numbered_lines(path: str | Path | None) -> list[tuple[int, str]]:
    """``(line number, line)`` of the non-empty lines of a text file (``-`` = stdin), stripped; the
    numbers count blank lines too, so an error names the line an editor shows. UTF-8 (a BOM is
    fine); another encoding is a one-line error."""
    if not path:
        raise UserError("predict needs --input FILE (one text per line; '-' for stdin)")
    if str(path) == "-":
        lines = sys.stdin.read().splitlines()
    else:
        if not Path(path).exists():
            raise UserError(f"input file not found: {path}")
        lines = textfiles.read_text(path).splitlines()
    lines = [(n, line.strip()) for n, line in enumerate(lines, 1) if line.strip()]
    if not lines:
        raise UserError(f"{path}: no texts found (one per line)")
    return lines


def write_jsonl(rows: list[dict[str, Any]], output: str | Path | None, run: Path) -> dict:
    """JSON lines to ``output`` (atomically), or to stdout when ``output`` is ``-`` or missing.
    Returns the stage's summary: empty for stdout, so nothing is printed after the lines."""
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    if output and str(output) != "-":
        runs.write_text(output, text)
        return {"run": str(run), "output": str(output), "rows": len(rows)}
    sys.stdout.write(text)
    return {}


def write_scores(folder: Path, values: dict[str, float]) -> dict:
    """``split/metric`` ``values`` into ``folder/metrics.json`` (an evaluation folder from
    :func:`shared.runs.evaluation_dir`), merged with what an earlier evaluation there wrote, so a
    second backend's keys sit beside the first's. Returns ``{"written": path, **values}``."""
    path = folder / "metrics.json"
    merged = {**(runs.read_json(path) if path.exists() else {}), **values}
    runs.write_json(path, dict(sorted(merged.items())))
    return {"written": str(path), **values}
