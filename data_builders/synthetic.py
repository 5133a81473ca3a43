"""The embedded default task: seeded, deterministic running-sum arithmetic with known errors.

A problem is a chain of additions and subtractions of small numbers. A correct solution writes one line per
step and ends with the answer. A corrupted solution makes exactly one slip at a known step; a slip in a working
line is carried forward consistently, as real solutions do, so every row kind can be derived from the same
problem:

- preference: correct solution (chosen) vs corrupted one (rejected)
- stepwise:   steps with per-step labels; steps after the first error are labelled wrong
- outcome:    one solution with a bool label for the final answer
- verification: a step-by-step check ending in a verdict (for ThinkPRM-style SFT; built from stepwise rows
  by data_builders/verification_cots.templated, e.g. `templated:synthetic:n=500,task=a`)

A slip shifts one value by k, |k| in 3..9 (`_slip`).

The difficulty ladder (`task=`), so that a method's promise is tested where SmolLM2-135M has the features,
and a failure higher up belongs to the model rather than to the method:

  a  answer slips, every row kind: problems as in c, every working line right, only the final `Answer: N`
     line misreported. Preference rejected = answer slip; stepwise labels are True for every working line
     and False for the `Answer:` step (`first_error` = its index); outcome label False. A linear probe on
     frozen SmolLM2-135M last-token features separates answer-slip pairs perfectly (held-out 1.00,
     docs/benchmarks.md), so a method that cannot learn (a) has a bug, not a weak model.
  b  carried arithmetic slips in one working line (never the answer line) of easy problems: start and
     operands 1..9, 1-2 operations. The same probe finds these at 0.61: harder, but within reach.
  c  the full task: start and operands 1..20, 2-4 operations, carried arithmetic slips; preference rows have
     no answer slips. The probe finds these at chance (0.45): learning them needs real fine-tuning.

A task fixes the problem ranges (and, for preference rows, where the slip goes), so it takes no
`answer_slip_rate` or problem ranges; `error_rate` (share of stepwise/outcome rows with a slip, 0.5) stays
free. `task=None` keeps the rows these functions gave before the ladder existed, byte for byte. Every
(row kind, task, seed) has its own random stream: the same seed with another task gives other problems, and
another seed gives a held-out set of problems for the same task.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

STEP_SEPARATOR = "\n"


@dataclass(frozen=True)
class Problem:
    start: int
    ops: tuple[tuple[str, int], ...]

    @property
    def question(self) -> str:
        expr = str(self.start) + "".join(f" {op} {n}" for op, n in self.ops)
        return f"Compute {expr}. Work it out one step at a time."

    def steps(self, error_step: int | None = None, slip: int = 0) -> tuple[list[str], int]:
        """Solution lines and final value; `error_step` (0-based) gets its result shifted by `slip`."""
        value, lines = self.start, []
        for i, (op, n) in enumerate(self.ops):
            result = value + n if op == "+" else value - n
            if i == error_step:
                result += slip
            lines.append(f"{value} {op} {n} = {result}")
            value = result
        return lines, value


def make_problem(rng: random.Random, min_ops: int = 2, max_ops: int = 4, max_operand: int = 20) -> Problem:
    start = rng.randint(1, max_operand)
    ops = tuple((rng.choice("+-"), rng.randint(1, max_operand)) for _ in range(rng.randint(min_ops, max_ops)))
    return Problem(start, ops)


@dataclass(frozen=True)
class Rung:
    """One rung of the difficulty ladder: the problems it draws and where its one slip goes."""

    min_ops: int
    max_ops: int
    max_operand: int
    answer_slip: bool  # True: only the `Answer:` line is misreported; False: one working line, carried

    @property
    def problem_kwargs(self) -> dict[str, int]:
        return {"min_ops": self.min_ops, "max_ops": self.max_ops, "max_operand": self.max_operand}


LADDER = {
    "a": Rung(min_ops=2, max_ops=4, max_operand=20, answer_slip=True),
    "b": Rung(min_ops=1, max_ops=2, max_operand=9, answer_slip=False),
    "c": Rung(min_ops=2, max_ops=4, max_operand=20, answer_slip=False),
}
TASKS = tuple(LADDER)


def rung(task: str) -> Rung:
    """The ladder's rung for `task`; a ValueError naming the choices for any other value."""
    if task not in LADDER:
        raise ValueError(f"unknown synthetic task {task!r}: the ladder has {', '.join(TASKS)}")
    return LADDER[task]


def _stream(kind: str, seed: int, task: str | None, problem_kwargs: dict) -> tuple[random.Random, dict]:
    """The random stream of (row kind, task, seed) and the problem ranges to draw from. Without a task the
    stream is the pre-ladder one (`"{kind}-{seed}"`), so old rows stay byte-identical."""
    if task is None:
        return random.Random(f"{kind}-{seed}"), problem_kwargs
    ladder_rung = rung(task)
    if problem_kwargs:
        raise ValueError(f"task {task!r} fixes the problem ranges; drop {', '.join(sorted(problem_kwargs))}")
    return random.Random(f"{kind}-task-{task}-{seed}"), ladder_rung.problem_kwargs


def _slip(rng: random.Random) -> int:
    return rng.choice([-1, 1]) * rng.randint(3, 9)


def _solution_steps(problem: Problem, error_step: int | None = None, slip: int = 0) -> list[str]:
    """Working lines and the `Answer:` line. `error_step` < number of ops: that line slips by `slip` and the
    wrong value is carried on; `error_step` == number of ops: only the answer is misreported by `slip`."""
    lines, value = problem.steps(error_step, slip)
    if error_step == len(problem.ops):
        value += slip
    return lines + [f"Answer: {value}"]


def preference_rows(
    n: int, seed: int = 0, answer_slip_rate: float | None = None, task: str | None = None, **problem_kwargs
) -> list[dict]:
    """Pairs (correct solution, one slip) with string fields; seeded, so different seeds give held-out sets.

    With probability `answer_slip_rate` (0.5 when None and no task) the rejected solution's working is right
    but its final answer is misreported; otherwise one step slips and the wrong value is carried forward.
    Measured on SmolLM2-135M's frozen last-token features (docs/benchmarks.md), answer slips are linearly
    separable at once, while carried arithmetic slips need real fine-tuning, so the rate sets how hard the
    task is. A `task` (module docstring) fixes the rate: 1 for a, 0 for b and c.
    """
    rng, problem_kwargs = _stream("preference", seed, task, problem_kwargs)
    if task is not None:
        if answer_slip_rate is not None:
            raise ValueError(f"task {task!r} fixes where the slip goes; drop answer_slip_rate")
        answer_slip_rate = 1.0 if rung(task).answer_slip else 0.0
    elif answer_slip_rate is None:
        answer_slip_rate = 0.5
    rows = []
    for _ in range(n):
        problem = make_problem(rng, **problem_kwargs)
        # The draws come in the pre-ladder order (coin, step, slip), which keeps task=None rows unchanged.
        n_ops = len(problem.ops)
        error_step = n_ops if rng.random() < answer_slip_rate else rng.randrange(n_ops)
        rejected = _solution_steps(problem, error_step, _slip(rng))
        rows.append(
            {
                "prompt": problem.question,
                "chosen": STEP_SEPARATOR.join(_solution_steps(problem)),
                "rejected": STEP_SEPARATOR.join(rejected),
            }
        )
    return rows


def stepwise_rows(
    n: int, seed: int = 0, error_rate: float = 0.5, task: str | None = None, **problem_kwargs
) -> list[dict]:
    """Solutions as step lists with labels; `first_error` is the 0-based index of the slip, or -1.

    A share `error_rate` of rows has one slip: in a working line (carried on) without a task and for tasks b
    and c, on the `Answer:` line for task a (first_error = the Answer step's index, every working line True).
    """
    rng, problem_kwargs = _stream("stepwise", seed, task, problem_kwargs)
    answer_slips = task is not None and rung(task).answer_slip
    rows = []
    for _ in range(n):
        problem = make_problem(rng, **problem_kwargs)
        n_ops = len(problem.ops)
        error_step = (n_ops if answer_slips else rng.randrange(n_ops)) if rng.random() < error_rate else None
        steps = _solution_steps(problem, error_step, _slip(rng) if error_step is not None else 0)
        first_error = -1 if error_step is None else error_step
        labels = [first_error == -1 or i < first_error for i in range(len(steps))]
        rows.append(
            {"prompt": problem.question, "completions": steps, "labels": labels, "first_error": first_error}
        )
    return rows


def outcome_rows(
    n: int, seed: int = 0, error_rate: float = 0.5, task: str | None = None, **problem_kwargs
) -> list[dict]:
    """Whole solutions with a bool label for whether the final answer is right (the stepwise rows joined)."""
    return [
        {
            "prompt": r["prompt"],
            "completion": STEP_SEPARATOR.join(r["completions"]),
            "label": r["first_error"] == -1,
        }
        for r in stepwise_rows(n, seed=seed, error_rate=error_rate, task=task, **problem_kwargs)
    ]
