"""Report helpers shared by the evaluators: exact markdown, complete PNGs, atomic writes."""

from __future__ import annotations

import math

import pytest

from rewardmodels.eval.report import Bar, bar_chart, format_cell, markdown_table, write_text


def test_markdown_table_exact_text():
    text = markdown_table(
        ["Subset", "n", "Accuracy"],
        [["hep|go", 10, 0.4567], ["math-prm", 3, None], ["nan", 0, float("nan")]],
        percent_columns=[2],
        align_right=[1, 2],
    )
    assert text.splitlines() == [
        "| Subset | n | Accuracy |",
        "|---|---:|---:|",
        "| hep\\|go | 10 | 45.7 |",
        "| math-prm | 3 | – |",
        "| nan | 0 | – |",
    ]


def test_format_cell_variants():
    assert format_cell(0.12345, percent=True, digits=2) == "12.35"
    assert format_cell(3.14159) == "3.142"
    assert format_cell(True) == "yes"
    assert format_cell(math.nan) == "–"
    with pytest.raises(ValueError, match="one cell per header"):
        markdown_table(["a", "b"], [[1]])


def test_bar_chart_writes_a_complete_png_atomically(tmp_path):
    path = tmp_path / "chart.png"
    bars = [Bar("Overall", 0.61, "Overall"), Bar("Chat", 0.4, "Section"), Bar("skipped", None, "Section")]
    bar_chart(path, bars, title="t", reference=0.5, reference_label="chance")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[-8:] == b"IEND\xaeB`\x82"
    assert [p.name for p in tmp_path.iterdir()] == ["chart.png"]  # no temp file left behind
    with pytest.raises(ValueError, match="nothing to plot"):
        bar_chart(tmp_path / "empty.png", [Bar("x", None)])
    assert not (tmp_path / "empty.png").exists()


def test_write_text_adds_final_newline(tmp_path):
    write_text(tmp_path / "r.md", "# title")
    assert (tmp_path / "r.md").read_text() == "# title\n"
