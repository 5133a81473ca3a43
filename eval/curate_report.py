"""The report of `rewardmodels curate`: report.json (everything), report.md (the tables) and report.png
(pairs kept, flipped and dropped per source and reason; the chosen-longer share per source before and after
rebalancing), each written atomically."""

from __future__ import annotations

from pathlib import Path

from rewardmodels.io import atomic_path, write_json

REASON_COLOURS = {
    "contaminated": "tab:red",
    "inconsistent": "tab:orange",
    "low_lim": "tab:purple",
    "length_rebalance": "tab:brown",
}


def _share(value) -> str:
    return "-" if value is None else f"{value:.3f}"


def markdown(report: dict) -> str:
    """The report's tables: counts per source and reason, overlaps per evaluation set, consistency, LIM and
    the length shares."""
    counts = report["counts"]
    reasons = sorted({r for entry in counts.values() for r in entry["reasons"]})
    inputs = ", ".join("`" + entry["spec"] + "`" for entry in report["inputs"])
    lines = ["# Curation report", "", f"Inputs: {inputs}", ""]
    lines += ["## Pairs by source", "", "| source | read | kept | flipped | dropped | " + " | ".join(reasons) + " |",
              "|---|---:|---:|---:|---:|" + "---:|" * len(reasons)]  # fmt: skip
    for name, entry in counts.items():
        cells = [str(entry["reasons"].get(r, 0)) for r in reasons]
        label = f"**{name}**" if name == "total" else name
        lines.append(f"| {label} | {entry['read']} | {entry['kept']} | {entry['flipped']} | {entry['dropped']} | "
                     + " | ".join(cells) + " |")  # fmt: skip
    decon = report.get("decontamination")
    if decon:
        against = ", ".join(name + " (" + ", ".join("`" + f + "`" for f in files) + ")"
                            for name, files in decon["files"].items())  # fmt: skip
        fields = "prompts and responses" if decon["check_responses"] else "prompts"
        lines += ["", "## Decontamination", "",
                  f"Exact prompt match (case and whitespace normalised) and word {decon['ngram']}-gram overlap of "
                  f"{fields} against: {against}. Action: {decon['action']}. Pairs with an overlap: "
                  f"{decon['pairs_flagged']}.", ""]  # fmt: skip
        kinds = ["exact", f"{decon['ngram']}-gram"]
        lines += ["| source | eval set | " + " | ".join(kinds) + " |", "|---|---|" + "---:|" * len(kinds)]
        for source, evals in decon["by_source"].items():
            for name, found in evals.items():
                lines.append(
                    f"| {source} | {name} | " + " | ".join(str(found.get(k, 0)) for k in kinds) + " |"
                )
        if not decon["by_source"]:
            lines.append("| (none) | | " + " | ".join("0" for _ in kinds) + " |")
    cons = report.get("consistency")
    if cons:
        lines += ["", "## Consistency", "",
                  f"Flagged when every scorer's margin s(chosen) - s(rejected) < -{cons['tau']} "
                  f"({', '.join(cons['scorers'])}): {cons['pairs_flagged']} of "
                  f"{cons['pairs_judged']} pairs judged; action: {cons['action']}."]  # fmt: skip
        lines += [f"- {source}: {n}" for source, n in cons["by_source"].items()]
    lim = report.get("lim")
    if lim:
        rule = (
            f"top {lim['top_fraction']:.0%}"
            if lim["top_fraction"] is not None
            else f"s >= {lim['threshold']}"
        )
        means = ", ".join(f"{m:.3f}" for m in lim["mean_signal_by_checkpoint"])
        lines += ["", "## Learning impact (LIM)", "",
                  f"{lim['pairs_scored']} pairs the run trained on scored ({lim['pairs_not_trained_on']} it never saw "
                  f"left unscored and kept), signal `{lim['signal']}` at checkpoints {', '.join(lim['checkpoints'])}; "
                  "run mean per checkpoint "
                  f"{means}. Kept: {rule}; {lim['pairs_below']} kept pairs fell below (action: {lim['action']}). "
                  "Score quantiles: " + ", ".join(f"{q}: {v:.3f}" for q, v in lim["score_quantiles"].items()) + "."]  # fmt: skip
    size = report["length"]
    target = "report only" if size["target"] is None else f"target {size['target']}, seed {size['seed']}"
    lines += ["", "## Length bias", "",
              f"Share of pairs whose chosen response is longer ({size['unit']}), among pairs whose lengths "
              f"differ; {target}.", "",
              "| source | chosen longer | rejected longer | equal | share before | share after |",
              "|---|---:|---:|---:|---:|---:|"]  # fmt: skip
    for source, before in size["before"].items():
        after = size["after"][source]
        lines.append(f"| {source} | {after['chosen_longer']} | {after['rejected_longer']} | {after['equal']} | "
                     f"{_share(before['share'])} | {_share(after['share'])} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def write_png(path: Path, report: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = {k: v for k, v in report["counts"].items() if k != "total"}
    sources = list(counts)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 0.5 * len(sources) + 2.8))
    lefts = [0] * len(sources)
    segments = [("kept", "tab:green", [counts[s]["kept"] - counts[s]["flipped"] for s in sources]),
                ("flipped", "tab:olive", [counts[s]["flipped"] for s in sources])]  # fmt: skip
    for reason in sorted({r for s in sources for r in counts[s]["reasons"]}):
        colour = REASON_COLOURS.get(reason, "tab:gray")
        segments.append(
            (f"dropped: {reason}", colour, [counts[s]["reasons"].get(reason, 0) for s in sources])
        )
    for label, colour, widths in segments:
        if any(widths):
            left.barh(sources, widths, left=lefts, color=colour, label=label)
            lefts = [a + b for a, b in zip(lefts, widths, strict=True)]
    left.set_xlabel("pairs")
    left.set_title("pairs by source and decision")
    left.legend(fontsize=8)
    size = report["length"]
    before = [size["before"][s]["share"] or 0.0 for s in sources if s in size["before"]]
    after = [size["after"][s]["share"] or 0.0 for s in sources if s in size["before"]]
    shown = [s for s in sources if s in size["before"]]
    ys = range(len(shown))
    right.barh([y + 0.2 for y in ys], before, height=0.4, color="tab:gray", label="before")
    right.barh([y - 0.2 for y in ys], after, height=0.4, color="tab:blue", label="after")
    right.set_yticks(list(ys), shown)
    right.axvline(0.5, color="black", linewidth=0.8, linestyle=":")
    if size["target"] is not None:
        right.axvline(size["target"], color="tab:red", linewidth=1, label=f"target {size['target']}")
    right.set_xlim(0, 1)
    right.set_xlabel(f"share of pairs whose chosen is longer ({size['unit']})")
    right.set_title("length bias")
    right.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def write_report(out: Path, report: dict) -> dict[str, Path]:
    """report.json, report.md and report.png in `out`; returns their paths."""
    paths = {"json": out / "report.json", "markdown": out / "report.md", "png": out / "report.png"}
    write_json(paths["json"], report)
    with atomic_path(paths["markdown"]) as tmp:
        tmp.write_text(markdown(report), encoding="utf-8")
    write_png(paths["png"], report)
    return paths
