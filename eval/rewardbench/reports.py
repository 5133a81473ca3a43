"""RewardBench reports: the markdown tables and the bar chart, from a finished run's results."""

from __future__ import annotations

from pathlib import Path

from rewardmodels.eval.rewardbench.official import (
    OFFICIAL_ROWS,
    PRIOR_SETS,
    SECTION_OF,
    SUBSET_MAPPING,
    V2_SUBSETS,
)


def markdown_report(results: dict) -> str:
    from rewardmodels.eval.report import markdown_table

    v = results["version"]
    title = "RewardBench" if v == 1 else "RewardBench 2"
    lines = [f"# {title}: {results.get('model')}", ""]
    if results.get("ref_model"):
        lines += [f"Reference model: `{results['ref_model']}`", ""]
    scorer = results.get("scorer") or {}
    if scorer.get("baseline") == "length":
        lines += ["Baseline `length`: score = -len(response) in characters (equal lengths tie: wrong).", ""]
    elif scorer.get("baseline") == "logprob":
        lines += [
            f"Baseline `logprob`: mean per-token log-prob of the response under `{scorer['policy']}`.",
            "",
        ]
    data = results["data"]
    lines += [
        f"Dataset: `{data.get('dataset')}`" + (f" (split `{data['split']}`)" if data.get("split") else ""),
        "",
    ]
    if results["partial"]:
        lines += ["> **Partial data**: these numbers are not comparable with the leaderboard.", ">"]
        lines += [f"> - {r}" for r in results["partial_reasons"]] + [""]
    head = [["Overall", results["overall"]]]
    if v == 1:
        head += [[s, results["sections"].get(s)] for s in SUBSET_MAPPING]
        if results.get("prior_sets") is not None:
            head.append(["Prior Sets (0.5 weight)", results["prior_sets"]])
    else:
        head += [[s, results["sections"].get(s)] for s in V2_SUBSETS]
    lines += [markdown_table(["Score", "Value (x100)"], head, percent_columns=[1]), ""]
    rows = []
    for subset, value in results["extra_results"].items():
        group = SECTION_OF.get(subset, "Prior Sets" if subset in PRIOR_SETS else "")
        official = OFFICIAL_ROWS.get(subset) if v == 1 else None
        rows.append([subset, group, results["subset_counts"].get(subset), official, value])
    lines += [
        markdown_table(
            ["Subset", "Section", "Rows", "Official rows", "Accuracy (x100)"],
            rows,
            percent_columns=[4],
            align_right=[2, 3, 4],
        ),
        "",
    ]
    lines += [
        f"Prompts: {results['num_prompts']}; rows read: {data['rows']}; malformed rows dropped: "
        f"{data['malformed_dropped']}; rows with an empty response: {data['empty_responses']}; "
        f"rows truncated to max length {data.get('max_length')}: "
        f"{'unknown' if data['truncated_examples'] is None else data['truncated_examples']}.",
    ]
    for note in data.get("notes", []):
        lines.append(f"Note: {note}.")
    if results.get("calibration"):
        from rewardmodels.eval.calibration import markdown_lines

        lines += ["", *markdown_lines({"pairs": results["calibration"]})]
    return "\n".join(lines) + "\n"


def write_chart(path: Path, results: dict) -> None:
    from rewardmodels.eval.report import Bar, bar_chart

    bars = [Bar("Overall", results["overall"], "Overall")]
    if results["version"] == 1:
        bars += [Bar(s, results["sections"].get(s), "Section") for s in SUBSET_MAPPING]
        if results.get("prior_sets") is not None:
            bars.append(Bar("Prior Sets (0.5 weight)", results["prior_sets"], "Section"))
        order = [s for sec in SUBSET_MAPPING.values() for s in sec] + list(PRIOR_SETS)
        extra = results["extra_results"]
        subsets = [s for s in order if s in extra] + [s for s in extra if s not in order]
        bars += [Bar(s, extra[s], SECTION_OF.get(s, "Other")) for s in subsets]
    else:
        bars += [Bar(s, results["sections"].get(s), "Subset") for s in V2_SUBSETS]
    bars = [b for b in bars if b.value is not None]
    if len(bars) == 0:
        return
    partial = " (partial data)" if results["partial"] else ""
    bar_chart(
        path,
        bars,
        title=f"RewardBench{' 2' if results['version'] == 2 else ''}: {results.get('model')}{partial}",
        xlabel="score",
        reference=0.5 if results["version"] == 1 else 0.25,
        reference_label="chance",
    )
