"""Reliability diagrams as PNG: per bin, the mean stated probability (x) against the observed frequency of
label 1 (y), one line per curve, with the diagonal y = x of perfect calibration. A curve is the dict that
`calibration_metrics.calibration_metrics` returns (its `reliability`, `ece` and `n`).

matplotlib is imported only when a diagram is drawn, so evaluators that never draw one do not pay for it;
it is a dependency of rewardmodels (pyproject.toml), and a missing install is one clear error.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

MISSING_MATPLOTLIB = (
    "the reliability diagram needs matplotlib, a dependency of rewardmodels that is not installed here: "
    "pip install 'matplotlib>=3.7' (or reinstall rewardmodels with its dependencies)"
)


def plotted_points(curve: Mapping) -> tuple[list[float], list[float], list[int]]:
    """(confidence, accuracy, count) of the curve's non-empty bins, in bin order; empty bins have no point."""
    r = curve["reliability"]
    keep = [k for k, c in enumerate(r["count"]) if c]
    return [r["confidence"][k] for k in keep], [r["accuracy"][k] for k in keep], [r["count"][k] for k in keep]


def write_reliability_diagram(
    path: str | os.PathLike, curves: Mapping[str, Mapping], title: str = ""
) -> Path:
    """One reliability diagram with a line per named curve (label: name, ECE and n), written atomically.

    Curves without points (n = 0) are left out; with none left, ValueError: an empty plot would read as a
    result. Raises ImportError naming matplotlib when it is not installed.
    """
    shown = {name: c for name, c in curves.items() if c.get("n")}
    if not shown:
        raise ValueError("nothing to plot: no curve has a point")
    try:
        import matplotlib  # noqa: F401  (checked here, so the error names the package, not a deep import)
    except ImportError as e:
        raise ImportError(MISSING_MATPLOTLIB) from e
    from rewardmodels.eval.report import png_figure

    with png_figure(path, (5.5, 5.0)) as (plt, ax):
        ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="perfect calibration")
        for name, curve in shown.items():
            conf, acc, count = plotted_points(curve)
            ece = curve.get("ece")
            label = (
                f"{name} (ECE {ece:.3f}, n={curve['n']})" if ece is not None else f"{name} (n={curve['n']})"
            )
            # Marker area grows with the bin's share of points, so a bin of 2 points does not look like 200.
            sizes = [12 + 120 * c / curve["n"] for c in count]
            (line,) = ax.plot(conf, acc, marker=None, linewidth=1.2, label=label)
            ax.scatter(conf, acc, s=sizes, color=line.get_color(), zorder=3)
        bins = next(iter(shown.values())).get("n_bins")
        ax.set_xlim(-0.02, 1.02)  # a little margin, so points at 0 or 1 are not cut in half
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("mean stated probability" + (f" ({bins} equal-width bins)" if bins else ""))
        ax.set_ylabel("observed frequency of label 1")
        ax.set_title(title or "Reliability diagram", fontsize=10)
        ax.legend(fontsize=7, loc="upper left")
    return Path(path)


__all__ = ["MISSING_MATPLOTLIB", "plotted_points", "write_reliability_diagram"]
