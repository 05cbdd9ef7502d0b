"""Chinese labels in plots: drawn with an installed CJK font (no missing-glyph boxes), or one
warning naming a package that provides one."""
import logging
import warnings

import numpy as np
import pytest

from shared import plots


@pytest.fixture(autouse=True)
def fresh_font_choice(monkeypatch):
    monkeypatch.setattr(plots, "_cjk", {})
    monkeypatch.setitem(plots.matplotlib.rcParams, "font.family", ["sans-serif"])


def test_has_cjk():
    assert plots.has_cjk(["neg", "正面"]) and plots.has_cjk(["ｐｏｓ"]) and not plots.has_cjk(["neg", "pos", "é"])


def test_chinese_labels_are_drawn_with_a_cjk_font(tmp_path):
    if plots._installed_cjk_family() is None:
        pytest.skip("no CJK font installed here (apt-get install fonts-noto-cjk)")
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="Glyph .* missing")
        plots.confusion_matrix(np.array([[3, 1], [0, 4]]), ["负面", "正面"], tmp_path / "cm.png", title="混淆矩阵")
    assert plots.matplotlib.rcParams["font.family"][-1] == plots.cjk_font()
    assert plots.matplotlib.rcParams["font.family"][0] == "sans-serif"  # Latin text keeps its font


def test_without_a_cjk_font_one_warning_names_the_package(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(plots, "_installed_cjk_family", lambda: None)
    with caplog.at_level(logging.WARNING, logger="shared.plots"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # matplotlib's own per-glyph warnings
        for name in ("a.png", "b.png"):
            plots.confusion_matrix(np.eye(2, dtype=int), ["负面", "正面"], tmp_path / name)
    messages = [r.getMessage() for r in caplog.records if "CJK" in r.getMessage()]
    assert len(messages) == 1 and "fonts-noto-cjk" in messages[0]


def test_latin_only_plots_look_for_no_font(tmp_path, monkeypatch):
    monkeypatch.setattr(plots, "_installed_cjk_family", lambda: pytest.fail("looked for a CJK font"))
    plots.confusion_matrix(np.eye(2, dtype=int), ["neg", "pos"], tmp_path / "cm.png")
