"""The reliability-diagram writer (eval/calibration_plot.py): a valid PNG file, and a clear error without
matplotlib."""

import sys

import pytest

from rewardmodels.eval.calibration_metrics import calibration_metrics
from rewardmodels.eval.calibration_plot import MISSING_MATPLOTLIB, plotted_points, write_reliability_diagram

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_points_are_the_non_empty_bins():
    curve = calibration_metrics([0.1, 0.4, 0.35, 0.8, 1.0], [0, 0, 1, 1, 1], n_bins=5)
    conf, acc, count = plotted_points(curve)
    assert (
        conf == pytest.approx([0.1, 0.35, 0.4, 0.9]) and acc == [0.0, 1.0, 0.0, 1.0] and count == [1, 1, 1, 2]
    )


def test_writes_a_png(tmp_path):
    pytest.importorskip(
        "matplotlib", reason="matplotlib is not installed; the PNG writer cannot be exercised"
    )
    curves = {
        "scorer a": calibration_metrics([0.1, 0.4, 0.35, 0.8, 1.0], [0, 0, 1, 1, 1], n_bins=15),
        "scorer b": calibration_metrics([0.6, 0.7], [1, 0], n_bins=15),
        "empty": calibration_metrics([], [], n_bins=15),  # left out, not drawn
    }
    path = write_reliability_diagram(tmp_path / "sub" / "calibration.png", curves, title="test")
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and len(data) > 1000
    with pytest.raises(ValueError, match="nothing to plot"):
        write_reliability_diagram(tmp_path / "none.png", {"empty": curves["empty"]})
    assert not (tmp_path / "none.png").exists()


def test_missing_matplotlib_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` now raises ImportError
    curve = calibration_metrics([0.2, 0.9], [0, 1], n_bins=15)
    with pytest.raises(ImportError) as info:
        write_reliability_diagram(tmp_path / "x.png", {"a": curve})
    assert str(info.value) == MISSING_MATPLOTLIB and "pip install" in str(info.value)
