"""Monte Carlo step labels in the Math-Shepherd style: a step is as good as the answers reached from it.

For a solution split into steps, every step prefix (problem + steps 1..i) is continued N times by a generator
model, and each continuation's final answer is checked against the gold answer with math-verify. The label of
step i is then
  hard: True when any continuation reaches the gold answer (Math-Shepherd's "hard estimation")
  soft: the share of continuations that do (its "soft estimation"), a float in [0, 1]
The last step needs no rollouts: its label is whether the solution's own final answer is right.

Sampling goes through `rewardmodels.sampling`: a local model, or an OpenAI-compatible server (--endpoint).
Every sampled continuation is stored in its on-disk SQLite cache, keyed by generator, rendered prompt,
sampling settings and sample index, and each prefix's samples are committed as soon as they are generated,
so an interrupted run resumes without sampling anything twice, and a rerun with the same settings samples
nothing at all. The same cache and sampler produce best-of-N candidates (`rewardmodels eval best-of-n
sample`).

    rewardmodels build mc-labels --generator smollm2-135m \\
        --problems ../shared/data/math500.jsonl --limit 3 --rollouts 4 --output mc_rows.jsonl
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

from rewardmodels.answers import STEP_JOIN, is_correct, parse_gold, split_solution
from rewardmodels.cli_common import progress_bar, run_command, setup_logging
from rewardmodels.sampling import Sampler, add_sampling_arguments, open_sampler

logger = logging.getLogger("rewardmodels")


# ---- labelling --------------------------------------------------------------------------------------------------


def label_solution(
    sampler: Sampler, problem: str, gold: str, steps: Sequence[str], rollouts: int, mode: str = "hard"
) -> dict:
    """MC labels for one solution: `rollouts` continuations from every prefix but the full solution."""
    if mode not in ("hard", "soft"):
        raise ValueError(f"label mode must be hard or soft, got {mode!r}")
    gold_parsed = parse_gold(gold)
    correct_counts = []
    for i in range(len(steps) - 1):
        texts = sampler.samples(problem, list(steps[: i + 1]), rollouts)
        correct_counts.append(sum(is_correct(t, gold_parsed) for t in texts))
    final_ok = is_correct(STEP_JOIN.join(steps), gold_parsed)
    if mode == "hard":
        labels = [c > 0 for c in correct_counts] + [final_ok]
    else:
        labels = [c / rollouts for c in correct_counts] + [1.0 if final_ok else 0.0]
    return {
        "prompt": problem,
        "completions": list(steps),
        "labels": labels,
        "answer": gold,
        "mc_correct": correct_counts,
        "mc_rollouts": rollouts,
        "solution_correct": final_ok,
    }


def _field(row: dict, names: Sequence[str], index: int, what: str):
    for name in names:
        if isinstance(row.get(name), str) and row[name].strip():
            return row[name]
    raise ValueError(
        f"row {index}, field '{names[0]}': a non-empty {what} is required (tried {', '.join(names)})"
    )


def label_problems(
    problems: Sequence[dict],
    sampler: Sampler,
    rollouts: int = 8,
    mode: str = "hard",
    solutions_per_problem: int = 1,
    step_split: str = STEP_JOIN,
    max_steps: int | None = None,
) -> list[dict]:
    """Stepwise rows for problems with gold answers (`problem`/`prompt`/`question` and `answer`).

    A row that already has steps (`completions` or `steps`) is labelled as it is; otherwise the generator
    writes `solutions_per_problem` solutions (the cached samples of the empty prefix), split on `step_split`.
    """
    rows = []
    for index, raw in enumerate(progress_bar(problems, desc="MC labelling", unit="problem")):
        problem = _field(raw, ("problem", "prompt", "question"), index, "problem text")
        gold = str(raw.get("answer", "")).strip()
        if not gold:
            raise ValueError(f"row {index}, field 'answer': a gold answer is required")
        given = raw.get("completions") or raw.get("steps")
        if given:
            solutions = [list(given)]
        else:
            texts = sampler.samples(problem, [], solutions_per_problem)
            solutions = [split_solution(t, step_split, max_steps) for t in texts]
        for j, steps in enumerate(solutions):
            if not steps:
                logger.info("row %d: sampled solution %d is empty; skipped", index, j)
                continue
            row = label_solution(sampler, problem, gold, steps, rollouts, mode)
            row["id"] = f"{raw.get('unique_id', raw.get('id', index))}#{j}"
            row["generator"] = sampler.generator.fingerprint
            rows.append(row)
    return rows


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The labeller's flags, for its own parser and for `rewardmodels build mc-labels` alike."""
    parser.add_argument(
        "--problems",
        required=True,
        help="Rows with problem and answer (e.g. MATH-500), optionally with steps.",
    )
    parser.add_argument("--output", "-o", required=True, help="Stepwise JSONL to write (atomically).")
    parser.add_argument("--limit", type=int, default=None, help="Label only the first N problems.")
    parser.add_argument("--rollouts", type=int, default=8, help="Continuations per step prefix (N).")
    parser.add_argument(
        "--label-mode", choices=["hard", "soft"], default="hard", help="Any correct, or the share."
    )
    parser.add_argument(
        "--solutions", type=int, default=1, help="Solutions sampled per problem without steps."
    )
    parser.add_argument("--step-split", default="\\n\\n", help="How sampled solutions are split into steps.")
    parser.add_argument(
        "--max-steps", type=int, default=None, help="Merge steps beyond this many into the last."
    )
    add_sampling_arguments(parser, "Tokens per sampled continuation.")


def run(args: argparse.Namespace) -> int:
    """Label the problems that the `add_arguments` flags name, and write the rows."""
    setup_logging()
    from rewardmodels.data_builders.schema import stepwise_row_errors, validate_rows
    from rewardmodels.io import read_rows, write_jsonl

    problems = read_rows(args.problems)[: args.limit]
    sampler = open_sampler(args)
    split = args.step_split.replace("\\n", "\n")
    try:
        rows = label_problems(
            problems, sampler, args.rollouts, args.label_mode, args.solutions, split, args.max_steps
        )
    finally:
        sampler.cache.close()
    rows, report = validate_rows(rows, stepwise_row_errors, source="mc labeller")
    n = write_jsonl(args.output, rows)
    print(
        f"wrote {n} labelled rows to {args.output} ({report}); samples: {sampler.generated} generated, "
        f"{sampler.hits} from the cache at {sampler.cache.path}"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m rewardmodels.data_builders.mc_labeller`: `rewardmodels build mc-labels`."""
    import sys

    from rewardmodels.data_builders.cli import main as build_main

    return build_main(["mc-labels", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(run_command("build mc-labels", main, None))
