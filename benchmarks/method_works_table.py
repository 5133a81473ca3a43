"""The docs/results.md table of benchmarks/method_works.py's records: one row per (method, task, metric), the
mean and every seed's value, baseline and control, and the wall time of each run.

    python benchmarks/method_works_table.py [benchmarks/results/method_works.jsonl]

A mean over seeds is only as good as its seeds: the per-seed values are printed beside it, and a row lists the
seeds it has, so a missing run is visible instead of averaged away.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.method_works import DEFAULT_OUTPUT, number, read_records  # noqa: E402

HEADER = (
    "| method | task | metric | mean value | seeds | values | baselines | controls | wall s |\n"
    "|---|---|---|---:|---|---|---|---|---|"
)


def table(records: list[dict]) -> str:
    """Markdown rows in the records' first-seen order of (method, task, metric), seeds ascending."""
    groups: dict[tuple[str, str, str], list[dict]] = {}
    for record in records:
        groups.setdefault((record["method"], record["task"], record["metric"]), []).append(record)
    rows = [HEADER]
    for (method, task, metric), runs in groups.items():
        runs = sorted(runs, key=lambda r: r["seed"])
        digits = 1 if metric.endswith("f1") else 3
        values = [r["value"] for r in runs]
        mean = statistics.fmean(values) if None not in values else None

        def column(key: str, runs=runs, digits=digits) -> str:
            return ", ".join(number(r[key], digits) for r in runs)

        rows.append(
            f"| {method} | {task} | {metric} | {number(mean, digits)} | {', '.join(str(r['seed']) for r in runs)} "
            f"| {column('value')} | {column('baseline')} | {column('control')} "
            f"| {', '.join(str(round(r['wall_s'])) for r in runs)} |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    path = Path(argv[0]) if argv else DEFAULT_OUTPUT
    records = read_records(path)
    if not records:
        print(f"method_works_table: no records in {path}", file=sys.stderr)
        return 2
    print(table(records))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
