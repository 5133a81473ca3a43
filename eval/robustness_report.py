"""The robustness evaluator's markdown report and bar chart, scorers side by side, through the shared
`eval/report.py` helpers (tables and charts written atomically)."""

from __future__ import annotations

from pathlib import Path

from rewardmodels.eval import calibration
from rewardmodels.eval.robustness_metrics import STYLES

LENGTH_PARTS = ("chosen_longer", "chosen_shorter", "same_length")


def _scorers(results: dict) -> list[str]:
    return list(results["scorers"])


def markdown_report(results: dict) -> str:
    from rewardmodels.eval.report import markdown_table

    names = _scorers(results)
    runs = results["scorers"]
    lines = ["# Reward-model robustness", ""]
    lines += [f"Scorers: {', '.join(f'`{n}`' for n in names)}.", ""]
    if results.get("dataset"):
        lines += [
            f"Pairs: `{results['dataset']}` ({results['pairs']} pairs; transforms applied to "
            f"{results['apply_to']}). A pair is right when chosen scores strictly above rejected; drop = "
            "original accuracy - transformed accuracy; flips = share of pairs whose ranking changes. Both "
            "are over all pairs (a pair the transform leaves alone keeps its scores).",
            "",
        ]
        headers = ["Transform", "Changed pairs"]
        for n in names:
            headers += [f"{n} acc", f"{n} drop", f"{n} flips"]
        first = runs[names[0]]
        rows = [["original", "–"] + sum(([runs[n]["original"]["accuracy"], None, None] for n in names), [])]
        for t in results["transforms"]:
            row = [t, first["transforms"][t]["changed_pairs"]]
            for n in names:
                e = runs[n]["transforms"][t]
                row += [e["accuracy"], e["drop"], e["flip_rate"]]
            rows.append(row)
        percent = [i for i in range(2, len(headers))]
        lines += [markdown_table(headers, rows, percent_columns=percent, align_right=[1, *percent]), ""]
        lines += ["Length bias (original scores; x100):", ""]
        rows = [
            [part.replace("_", " "), first["length_bias"][part]["pairs"]]
            + [runs[n]["length_bias"][part]["accuracy"] for n in names]
            for part in LENGTH_PARTS
        ]
        rows.append(["gap (longer - shorter)", "–"] + [runs[n]["length_bias"]["gap"] for n in names])
        percent = list(range(2, 2 + len(names)))
        lines += [
            markdown_table(
                ["Chosen is", "Pairs", *names], rows, percent_columns=percent, align_right=[1, *percent]
            ),
            "",
        ]
    if results.get("style_dataset"):
        first = runs[names[0]]["style"]
        lines += [
            f"Style matrix (RM-Bench format): `{results['style_dataset']}`, {first['rows']} rows. Styles "
            f"{', '.join(f'{i} {s}' for i, s in enumerate(STYLES))}; hard = chosen plainer than rejected "
            "(upper triangle), normal = same style, easy = chosen fancier (x100).",
            "",
        ]
        rows = [[split] + [runs[n]["style"][split] for n in names] for split in ("hard", "normal", "easy")]
        for domain in first["by_domain"]:
            rows += [
                [f"{domain}: {split}"] + [runs[n]["style"]["by_domain"][domain][split] for n in names]
                for split in ("hard", "normal", "easy")
            ]
        percent = list(range(1, 1 + len(names)))
        lines += [markdown_table(["Split", *names], rows, percent_columns=percent), ""]
        for n in names:
            matrix = runs[n]["style"]["matrix"]
            rows = [[f"chosen {i}"] + list(matrix[i]) for i in range(len(STYLES))]
            headers = ["", *(f"rejected {j}" for j in range(len(STYLES)))]
            lines += [f"`{n}`:", "", markdown_table(headers, rows, percent_columns=[1, 2, 3]), ""]
    lines += calibration.markdown_lines(calibration_entries(results))
    for n in names:
        truncated = runs[n].get("truncated_examples")
        if truncated:
            lines.append(f"Note: `{n}` truncated {truncated} scored groups to its max length.")
    return "\n".join(lines).rstrip() + "\n"


def calibration_entries(results: dict, variants: tuple[str, ...] | None = None) -> dict:
    """Every scorer's calibration entry per variant (original, each transform, style), named
    "scorer: variant"; only the `variants` named when given."""
    return {
        f"{n}: {v}": entry
        for n in _scorers(results)
        for v, entry in results["scorers"][n].get("calibration", {}).items()
        if variants is None or v in variants
    }


def write_calibration_diagram(output_dir: Path, results: dict) -> Path | None:
    """calibration.png: each scorer's original-pairs and style curves (every variant's figures are in the
    report; a curve per transform would bury the comparison between scorers)."""
    entries = calibration_entries(results, ("original", "style"))
    return calibration.write_diagram(
        output_dir, entries, "Robustness: calibration of sigmoid(chosen - rejected)"
    )


def write_chart(path: Path, results: dict) -> None:
    """Bars per metric, one per scorer (coloured by scorer): transform accuracies, length parts, style."""
    from rewardmodels.eval.report import Bar, bar_chart

    names = _scorers(results)
    runs = results["scorers"]
    bars: list[Bar] = []
    if results.get("dataset"):
        bars += [Bar(f"original [{n}]", runs[n]["original"]["accuracy"], n) for n in names]
        for t in results["transforms"]:
            bars += [Bar(f"{t} [{n}]", runs[n]["transforms"][t]["accuracy"], n) for n in names]
        for part in ("chosen_longer", "chosen_shorter"):
            label = part.replace("_", " ")
            bars += [Bar(f"{label} [{n}]", runs[n]["length_bias"][part]["accuracy"], n) for n in names]
    if results.get("style_dataset"):
        for split in ("hard", "normal", "easy"):
            bars += [Bar(f"style {split} [{n}]", runs[n]["style"][split], n) for n in names]
    bars = [b for b in bars if b.value is not None]
    if bars:
        bar_chart(
            path,
            bars,
            title="Robustness: accuracy",
            xlabel="accuracy",
            reference=0.5,
            reference_label="chance",
        )
