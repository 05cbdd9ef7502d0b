from shared import runs
from shared.report import main


def _run(root, app, recipe, metrics, command):
    run = runs._create_run(root / app / recipe)
    runs.write_yaml(run / "config.yaml", {"name": recipe})
    runs.write_json(run / "run.json", {"status": "finished", "command": command})
    runs.write_json(run / "metrics.json", metrics)
    runs.mark_latest(run)


def test_report_marks_quick_runs_and_shows_the_full_figure(tmp_path, capsys):
    _run(tmp_path, "tabular_mining", "churn", {"test/roc_auc": 0.8517},
         "python -m tabular_mining train --config configs/tabular_mining/churn-quick.yaml")
    _run(tmp_path, "vision_app", "classify", {"test/accuracy": 0.99, "valid/accuracy": 1.0},
         "python -m vision_app train --config configs/vision_app/classify.yaml")
    assert main(["--runs", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    churn = next(line for line in out.splitlines() if line.startswith("tabular_mining/churn"))
    assert "quick" in churn and "roc_auc 0.8517" in churn and "0.852" in churn and "≥ 0.845" in churn
    digits = next(line for line in out.splitlines() if line.startswith("vision_app/classify"))
    assert "full" in digits and "accuracy 0.99" in digits
    assert "make serve-tabular" in out


def test_report_without_runs_and_help(tmp_path, capsys):
    assert main(["--runs", str(tmp_path)]) == 1
    assert "make demo" in capsys.readouterr().err


def test_every_full_recipe_figure_stands_in_its_guide_after_its_anchor():
    """The report's full-recipe figures are the guides' own: each stands within a few lines after its
    anchor phrase (a guide's figure changed without the report, or the reverse, fails here)."""
    import re
    from pathlib import Path

    from shared.report import REFERENCE

    root = Path(__file__).resolve().parents[2]
    for (app, recipe), ref in REFERENCE.items():
        if ref.figure is None:
            continue
        float(ref.figure)
        text = " ".join((root / ref.guide).read_text().split())
        starts = [m.end() for m in re.finditer(re.escape(ref.anchor), text)]
        assert starts, f"{app}/{recipe}: anchor {ref.anchor!r} not in {ref.guide}"
        assert any(re.search(rf"(?<![\d.]){re.escape(ref.figure)}(?!\d)", text[s:s + 300]) for s in starts), \
            f"{app}/{recipe}: {ref.figure} is not within 300 characters after {ref.anchor!r} in {ref.guide}"
