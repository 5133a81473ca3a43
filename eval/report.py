"""Report helpers shared by the evaluators: markdown tables and PNG bar charts, both written atomically.

Nothing here knows about a particular benchmark. An evaluator hands over rows of cells or (label, value,
group) bars, and gets a file that either is complete or is not there at all.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from rewardmodels.io import atomic_path


def format_cell(value, percent: bool = False, digits: int = 1) -> str:
    """Numbers as fixed-point text (optionally x100), None and NaN as an en dash, anything else as str."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        return f"{value * 100:.{digits}f}" if percent else f"{value:.{max(digits, 4)}g}"
    return str(value).replace("|", "\\|")


def markdown_table(
    headers: Sequence[str],
    rows: Sequence[Sequence],
    percent_columns: Sequence[int] = (),
    digits: int = 1,
    align_right: Sequence[int] | None = None,
) -> str:
    """A GitHub markdown table. Columns listed in `percent_columns` show fractions as x100 with `digits`."""
    if any(len(r) != len(headers) for r in rows):
        raise ValueError("every row must have one cell per header")
    percent = set(percent_columns)
    right = set(align_right if align_right is not None else percent)
    cells = [[format_cell(v, percent=i in percent, digits=digits) for i, v in enumerate(row)] for row in rows]
    lines = ["| " + " | ".join(str(h) for h in headers) + " |"]
    lines.append("|" + "|".join("---:" if i in right else "---" for i in range(len(headers))) + "|")
    lines += ["| " + " | ".join(r) + " |" for r in cells]
    return "\n".join(lines)


def write_text(path: str | os.PathLike, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
    return Path(path)


@dataclass
class Bar:
    label: str
    value: float
    group: str = ""


@contextlib.contextmanager
def png_figure(path: str | os.PathLike, figsize: tuple[float, float]) -> Iterator[tuple]:
    """(pyplot, axes) of a new figure, laid out and written to `path` as a PNG (atomically) when the block
    ends, and closed however it ends. The Agg backend needs no display: servers never pop up a window."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=figsize)
    try:
        yield plt, ax
        fig.tight_layout()
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=110)
    finally:
        plt.close(fig)


def bar_chart(
    path: str | os.PathLike,
    bars: Sequence[Bar],
    title: str = "",
    xlabel: str = "",
    xlim: tuple[float, float] | None = (0.0, 1.0),
    reference: float | None = None,
    reference_label: str = "",
) -> Path:
    """Horizontal bars (one per label, coloured by group, top to bottom in the given order) saved as PNG.

    Horizontal bars keep long subset names readable. `reference` draws a dashed vertical line, e.g. chance.
    Bars whose value is None or NaN are left out rather than drawn as zero, which would read as a result.
    """
    shown = [b for b in bars if b.value is not None and not math.isnan(b.value)]
    if not shown:
        raise ValueError("nothing to plot: every bar value is missing")
    groups = list(dict.fromkeys(b.group for b in shown))
    height = max(2.5, 0.32 * len(shown) + 1.2)
    with png_figure(path, (8, height)) as (plt, ax):
        palette = plt.get_cmap("tab10")
        colour = {g: palette(i % 10) for i, g in enumerate(groups)}
        y = list(range(len(shown)))[::-1]
        ax.barh(y, [b.value for b in shown], color=[colour[b.group] for b in shown])
        ax.set_yticks(y, [b.label for b in shown], fontsize=8)
        for yi, b in zip(y, shown, strict=True):
            ax.text(b.value, yi, f" {b.value:.3f}", va="center", fontsize=7)
        if xlim is not None:
            ax.set_xlim(*xlim)
        if reference is not None:
            ax.axvline(reference, linestyle="--", color="grey", linewidth=1, label=reference_label or None)
        if len(groups) > 1 or reference_label:
            from matplotlib.patches import Patch

            handles = [Patch(color=colour[g], label=g) for g in groups if g]
            if reference is not None and reference_label:
                handles.append(ax.get_lines()[-1])
            if handles:
                ax.legend(handles=handles, fontsize=7, loc="lower right")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(xlabel)
    return Path(path)
