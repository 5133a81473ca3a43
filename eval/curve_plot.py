"""The PNG of `rewardmodels report curve`: held-out accuracy against training compute (log axis), overall
and per source, the fitted curve through the overall points, its ceiling A and its C_mid."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rewardmodels.eval.curve_fit import saturating_curve
from rewardmodels.io import atomic_path


def write_curve_png(path: str | Path, result: dict) -> None:
    """Draw `result` (the curve.json object) to `path`, atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = [m for m in result["points"] if m["compute"] > 0]
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    compute = np.array([m["compute"] for m in points])
    ax.plot(compute, [m["accuracy"] for m in points], "o", color="black", label="all held-out pairs")
    for name in points[0]["by_source"] if points else []:
        ax.plot(compute, [m["by_source"][name] for m in points], ".--", alpha=0.6, label=name)
    fit = result.get("fit") or {}
    if points and "error" not in fit:
        low, high = compute.min(), compute.max()
        grid = np.logspace(np.log10(low) - 0.5, np.log10(max(high, fit["c_mid"])) + 1.0, 200)
        ax.plot(grid, saturating_curve(grid, fit["r0"], fit["a"], fit["c_mid"], fit["b"]), color="tab:red",
                label=f"fit: A = {fit['a']:.3f}, C_mid = {fit['c_mid']:.2g}, B = {fit['b']:.2f}")  # fmt: skip
        ax.axhline(fit["a"], color="tab:red", linestyle=":", linewidth=1)
        ax.axvline(fit["c_mid"], color="tab:red", linestyle=":", linewidth=1)
    if result.get("initial"):
        ax.axhline(
            result["initial"]["accuracy"], color="grey", linestyle="--", linewidth=1, label="step 0 (R0)"
        )
    ax.set_xscale("log")
    ax.set_xlabel(f"training compute, FLOPs ({result['formula']})")
    ax.set_ylabel("held-out pair accuracy")
    ax.set_title(Path(result["run_dir"]).name)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
