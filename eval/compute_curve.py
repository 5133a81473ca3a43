"""`rewardmodels eval compute-curve`: accuracy against verifier compute, from several evaluator runs.

Each results.json (`eval processbench`, `eval rewardbench`, `eval best-of-n`) of a scorer that reports its
compute (`ReportsCompute`, e.g. a generative verifier at different parallel K / sequential rounds / budgets)
is one point per metric: x = tokens generated per verified solution, y = the metric. Default metrics:

  processbench  average.f1 (first-error F1) and solution_level.average.f1 (the solution-level F1)
  rewardbench   accuracy
  best_of_n     top1

`--metric DOTTED.PATH` (repeatable) picks others. Writes compute_curve.png and compute_curve.md (a table of
the points with their settings), atomically; a run without compute is refused, naming its file.

    rewardmodels eval compute-curve results/pb-k1/results.json results/pb-k2/results.json \\
        results/pb-r2/results.json --output-dir results/compute_curve
"""

from __future__ import annotations

import json
from pathlib import Path

from rewardmodels.cli_common import ArgumentParser, add_output_dir_argument
from rewardmodels.errors import InputError

DEFAULT_METRICS = {
    "processbench": ["average.f1", "solution_level.average.f1"],
    "rewardbench": ["accuracy"],
    "best_of_n": ["top1"],
}
METRIC_NAMES = {"average.f1": "first-error F1", "solution_level.average.f1": "solution-level F1"}


def lookup(results: dict, dotted: str):
    """results["a"]["b"] for "a.b"; None when a key is missing."""
    value = results
    for key in dotted.split("."):
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def run_label(results: dict, path: str) -> str:
    """K, R and the budget when the compute block has them, else the run directory's name."""
    c = results.get("compute") or {}
    if "parallel" in c:
        return f"K={c['parallel']} R={c.get('rounds', 1)} B={c.get('max_new_tokens')}"
    return Path(path).parent.name


def curve_points(paths: list[str], metrics: list[str] | None = None) -> list[dict]:
    """One point per (results file, metric): label, metric, tokens per solution, value, and the settings."""
    points = []
    for path in paths:
        try:
            results = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            raise InputError(path, None, None, f"cannot read a results.json: {e}") from None
        compute = results.get("compute")
        if not isinstance(compute, dict) or compute.get("tokens_per_solution") is None:
            raise InputError(path, None, "compute", "no compute recorded: the scorer does not report it")
        for metric in metrics or DEFAULT_METRICS.get(results.get("benchmark"), []):
            value = lookup(results, metric)
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise InputError(path, None, metric, f"no numeric value (got {value!r})")
            points.append(
                {
                    "run": run_label(results, path),
                    "metric": METRIC_NAMES.get(metric, metric),
                    "tokens_per_solution": float(compute["tokens_per_solution"]),
                    "value": float(value),
                    "forced_verdicts": compute.get("forced_verdicts"),
                    "chains": compute.get("chains"),
                    "file": str(path),
                }
            )
    return points


def markdown(points: list[dict]) -> str:
    from rewardmodels.eval.report import markdown_table

    rows = [[p["run"], p["metric"], p["tokens_per_solution"], p["value"], p["forced_verdicts"], p["chains"]]
            for p in points]  # fmt: skip
    headers = ["run", "metric", "tokens / solution", "value", "forced verdicts", "chains"]
    table = markdown_table(headers, rows, percent_columns=(3,), align_right=(2, 3, 4, 5))
    return "# Accuracy against verifier compute\n\nValues in percent.\n\n" + table + "\n"


def plot(points: list[dict], path: str | Path, title: str = "Accuracy against verifier compute") -> Path:
    """Each run's point per metric (runs are different scaling settings, so the points are not joined),
    labelled with the run; the y axis spans 0-100 percent."""
    from rewardmodels.eval.report import png_figure

    with png_figure(path, (7, 4.5)) as (_, ax):
        for m, metric in enumerate(dict.fromkeys(p["metric"] for p in points)):
            series = [p for p in points if p["metric"] == metric]
            xs, ys = [p["tokens_per_solution"] for p in series], [100 * p["value"] for p in series]
            ax.plot(xs, ys, linestyle="none", marker="os^vD"[m % 5], markersize=7, alpha=0.8, label=metric)
        for i, run in enumerate(dict.fromkeys(p["file"] for p in points)):
            mine = [p for p in points if p["file"] == run]
            top = max(mine, key=lambda p: p["value"])
            # one label per run, staggered so runs of similar compute stay readable
            where = (top["tokens_per_solution"], 100 * top["value"])
            offset = (4, 8 + 12 * (i % 3))
            ax.annotate(top["run"], where, textcoords="offset points", xytext=offset, fontsize=7)
        ax.set_ylim(-3, 103)
        ax.set_xlabel("tokens generated per solution")
        ax.set_ylabel("percent")
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=8, loc="best")
    return Path(path)


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="rewardmodels eval compute-curve", description=__doc__)
    parser.add_argument(
        "results", nargs="+", help="results.json files of evaluator runs that report compute."
    )
    parser.add_argument(
        "--metric",
        action="append",
        default=None,
        help="Dotted path of a metric in results.json (repeatable).",
    )
    add_output_dir_argument(parser, "Where compute_curve.png and .md are written.", required=True)
    parser.add_argument("--title", default="Accuracy against verifier compute", help="The plot's title.")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    points = curve_points(args.results, args.metric)
    out = Path(args.output_dir)
    plot(points, out / "compute_curve.png", args.title)
    from rewardmodels.eval.report import write_text

    write_text(out / "compute_curve.md", markdown(points))
    print(markdown(points))
    print(f"written to {out}")
    return 0
