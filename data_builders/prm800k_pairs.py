"""Preference pairs from the PRM800K "stepwise-critic" parquet, isolating one rated error where they can.

The parquet is reassembled into solutions by `stepwise.build_prm800k_stepwise` (each trajectory's main path
and every rated alternative step branching off it, path[:k] + [alternative]), and each solution is judged
by `outcome.outcome_of_solution`, the PRM800K rule, with partial solutions allowed:

  chosen     every step rated >= 0 and a final answer that is right: math-verify against `gold=FILE` where
             the file has the problem, elsewhere the raters' ratings stand
  rejected   a step rated -1; it ends at or after that step (a partial "prefix + wrong step" has a rated
             error, so it may end there)
  neither    counted by reason: no final answer, an unrated step, a wrong final answer with no -1 step

Per problem, a chosen C is paired with the rejected solutions that branch off it: R's first -1 step is at
k, R[:k] == C[:k] and R[k] != C[k], so the pair differs only by the error and what follows it
("same-prefix"). A chosen that no rejected branches off falls back to every rejected of its problem
("fallback"). Pairs are made in rounds over the chosen, in a seeded order: each round, each chosen takes
the least-used of its rejected candidates that it is not yet paired with (ties in a seeded order), so under
`per_problem=N` (the first N pairs) chosen and rejected are each used about equally often.

The parquet keeps a solution's final answer in the `answer` field of the step that states it, not in the
step's text (no step of the real files holds PRM800K's "# Answer" heading). It is written back after that
step's text as "# Answer\\n\\nX", where `answers.extract_final_answer` finds it; without it three in four
complete solutions of the train file look unfinished to the rule.

`chosen=matched` (default `full`) evens out the pairs' length: most rejected solutions stop at their error
step, so a whole chosen solution is the longer text in nearly every pair and a BT model can learn "longer is
better". A same-prefix pair whose rejected R = C[:k] + [wrong step] + (whatever follows) has n = len(R) steps
instead keeps C[:n] as the chosen (the whole C where n >= len(C)): both share C[:k] and differ from step k on,
the chosen's steps rated >= 0, the rejected's step k rated -1 (an error at step 0 shares no step but
branches off all the same: the chosen is C[:1]). Fallback pairs (no shared prefix) keep the
whole chosen. A cut chosen may leave two pairs the same text (two chosen sharing C[:n]); the repeat is
dropped, counted, as is a pair whose two texts are identical.

`exclude=FILE` drops every problem found in FILE (rows with problem/prompt/question, e.g. MATH-500, the
problems RewardBench's math-prm subset is built from). Problems are compared after whitespace normalisation
(strip, runs of white space -> one space): the same problem reaches different files with different line
breaks and spacing (MATH-500's jsonl against the reshaped parquet), an exact comparison would let such a copy
into training unseen, and white space never changes which problem a text states. Gold answers are looked up
the same way.
"""

from __future__ import annotations

import logging
import random
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence

from rewardmodels.answers import STEP_JOIN
from rewardmodels.data_builders import stepwise
from rewardmodels.data_builders.outcome import load_gold, outcome_of_solution, problem_text
from rewardmodels.errors import ROW, InputError, Location
from rewardmodels.io import location_of, read_rows, with_location

logger = logging.getLogger("rewardmodels")

ANSWER_HEADING = "# Answer"
SAME_PREFIX, FALLBACK = "same-prefix", "fallback"
CHOSEN_FULL, CHOSEN_MATCHED = "full", "matched"
EXCLUDED = "problem in the exclude file"


def normalize_problem(text: str) -> str:
    """`text` stripped, each run of white space one space (why: module docstring)."""
    return " ".join(text.split())


def load_problems(path: str) -> set[str]:
    """The normalised problems of a file of rows with `problem` (or `prompt`/`question`)."""
    problems = set()
    for i, row in enumerate(read_rows(path)):
        problem = problem_text(row)
        if problem is None:
            where = location_of(row, Location(path, i + 1, ROW))
            raise InputError.at(where, "problem", "expected a problem, prompt or question string")
        problems.add(normalize_problem(problem))
    return problems


def stated_answers(records: Iterable[dict]) -> dict[tuple, str]:
    """(problem, earlier steps, step) -> the final answer that step states, from the parquet's `answer`."""
    answers = {}
    for r in records:
        answer = r.get("answer")
        if isinstance(answer, str) and answer.strip():
            answers[(r["instruction"], tuple(r.get("responses") or ()), r["next_response"])] = answer.strip()
    return answers


def with_stated_answer(prompt: str, steps: Sequence[str], answers: dict[tuple, str]) -> list[str]:
    """`steps` with the answer their last step states written after it as PRM800K's '# Answer' heading."""
    steps = list(steps)
    answer = answers.get((prompt, tuple(steps[:-1]), steps[-1])) if steps else None
    if answer is not None and ANSWER_HEADING not in steps[-1]:
        steps[-1] = f"{steps[-1]}{STEP_JOIN}{ANSWER_HEADING}{STEP_JOIN}{answer}"
    return steps


def check_chosen_mode(value: str, file: str | None = None) -> None:
    """`chosen=` must be full or matched: an InputError naming the field otherwise."""
    if value not in (CHOSEN_FULL, CHOSEN_MATCHED):
        raise InputError(file, None, "chosen", f"got {value!r}, expected {CHOSEN_FULL} or {CHOSEN_MATCHED}")


def first_error(labels: Sequence) -> int | None:
    """Index of the first step labelled False (rated -1), None when there is none."""
    return next((k for k, label in enumerate(labels) if label is False), None)


def branches_off(rejected: Sequence[str], labels: Sequence, chosen: Sequence[str]) -> bool:
    """Whether `rejected` shares `chosen`'s steps up to its first error and differs at it."""
    k = first_error(labels)
    return (
        k is not None
        and k < len(chosen)
        and list(rejected[:k]) == list(chosen[:k])
        and rejected[k] != chosen[k]
    )


def matched_chosen(chosen: Sequence[str], rejected: Sequence[str]) -> list[str]:
    """chosen[:len(rejected)], the chosen cut to the rejected's number of steps (all of it when the rejected
    is as long or longer)."""
    return list(chosen[: len(rejected)])


def pair_indices(
    eligible: Sequence[Sequence[int]], n_rejected: int, rng: random.Random, per_problem: int | None = None
) -> list[tuple[int, int]]:
    """(chosen, rejected) index pairs, chosen i taking its candidates `eligible[i]` in rounds (module
    docstring): a seeded order of the chosen, the least-used free candidate each turn, at most `per_problem`."""
    order = list(range(len(eligible)))
    rng.shuffle(order)
    tiebreak = list(range(n_rejected))
    rng.shuffle(tiebreak)
    rank = {j: r for r, j in enumerate(tiebreak)}
    used, taken = [0] * n_rejected, [set() for _ in eligible]
    pairs: list[tuple[int, int]] = []
    while True:
        progressed = False
        for i in order:
            free = [j for j in eligible[i] if j not in taken[i]]
            if not free:
                continue
            j = min(free, key=lambda j: (used[j], rank[j]))
            pairs.append((i, j))
            used[j] += 1
            taken[i].add(j)
            progressed = True
            if per_problem is not None and len(pairs) >= per_problem:
                return pairs
        if not progressed:
            return pairs


def solution_pairs(
    rows: Sequence[dict],
    gold: dict[str, str] | None = None,
    excluded: set[str] | frozenset = frozenset(),
    per_problem: int | None = None,
    seed: int = 0,
    chosen_mode: str = CHOSEN_FULL,
) -> tuple[list[dict], Counter]:
    """Preference rows from stepwise solution rows (answers already in the text), each with `pairing`
    (same-prefix or fallback); `gold` and `excluded` are keyed by `normalize_problem`; `chosen_mode`
    `matched` cuts a same-prefix chosen to its rejected's number of steps (`matched_chosen`)."""
    check_chosen_mode(chosen_mode)
    gold = gold or {}
    skipped: Counter = Counter()
    by_problem: dict[str, tuple[list, list]] = defaultdict(lambda: ([], []))
    seen: set = set()
    for row in rows:
        prompt, steps, labels = row["prompt"], row["completions"], row["labels"]
        key = normalize_problem(prompt)
        if key in excluded:
            skipped[EXCLUDED] += 1
            continue
        verdict, why = outcome_of_solution(steps, labels, gold.get(key), partial=True)
        if verdict is None or (verdict == 0.0 and first_error(labels) is None):
            skipped[why] += 1
            continue
        if (prompt, STEP_JOIN.join(steps), verdict) in seen:
            skipped["duplicate solution text"] += 1
            continue
        seen.add((prompt, STEP_JOIN.join(steps), verdict))
        by_problem[prompt][0 if verdict == 1.0 else 1].append(row)
    pairs = []
    rng = random.Random(seed)
    for prompt, (good, bad) in by_problem.items():
        if not good or not bad:
            skipped[
                "no rated-wrong solution of the problem" if good else "no correct solution of the problem"
            ] += len(good) + len(bad)
            continue
        branching = [
            [j for j, r in enumerate(bad) if branches_off(r["completions"], r["labels"], c["completions"])]
            for c in good
        ]
        eligible = [b or list(range(len(bad))) for b in branching]
        made: set[tuple[str, str]] = set()
        for i, j in pair_indices(eligible, len(bad), rng, per_problem):
            chosen_steps, rejected_steps = good[i]["completions"], bad[j]["completions"]
            if chosen_mode == CHOSEN_MATCHED and branching[i]:
                chosen_steps = matched_chosen(chosen_steps, rejected_steps)
            chosen, rejected = STEP_JOIN.join(chosen_steps), STEP_JOIN.join(rejected_steps)
            if chosen.strip() == rejected.strip():
                skipped["identical chosen and rejected"] += 1
                continue
            if (chosen, rejected) in made:
                skipped["duplicate pair (matched chosen)"] += 1
                continue
            made.add((chosen, rejected))
            pair = {"prompt": prompt, "chosen": chosen, "rejected": rejected}
            pair["pairing"] = SAME_PREFIX if branching[i] else FALLBACK
            pairs.append(with_location(pair, location_of(good[i], Location())))
    return pairs, skipped


def prm800k_solutions(path: str, neutral: str = "positive") -> tuple[list[dict], Counter]:
    """The parquet's reassembled solutions (`stepwise.build_prm800k_stepwise`, alternatives included), each
    last step followed by the final answer it states; plus the reassembly's skip counts."""
    records = read_rows(path)
    solutions, skipped = stepwise.build_prm800k_stepwise(
        path, neutral=neutral, alternatives=True, records=records
    )
    answers = stated_answers(records)
    solutions = [
        with_location(
            {**row, "completions": with_stated_answer(row["prompt"], row["completions"], answers)},
            location_of(row, Location(path)),
        )
        for row in solutions
    ]
    return solutions, skipped


def build_prm800k_pairs(
    path: str,
    exclude: str | None = None,
    gold: str | None = None,
    neutral: str = "positive",
    per_problem=None,
    pair_seed=0,
    chosen: str = CHOSEN_FULL,
) -> tuple[list[dict], Counter]:
    """PRM800K stepwise-critic parquet -> preference rows of a correct solution and a rated-wrong one,
    same-prefix where one branches off it (options: exclude=FILE, gold=FILE, neutral=, per_problem=N,
    pair_seed=, chosen=full|matched)."""
    check_chosen_mode(chosen, path)  # before the parquet is read
    solutions, skipped = prm800k_solutions(path, neutral)
    golds = {normalize_problem(problem): answer for problem, answer in load_gold(gold).items()}
    excluded = load_problems(exclude) if exclude else set()
    cap = int(per_problem) if per_problem not in (None, "") else None
    pairs, why = solution_pairs(solutions, golds, excluded, cap, int(pair_seed), chosen)
    kinds = Counter(p.pop("pairing") for p in pairs)
    logger.info(
        "PRM800K pairs from %s: %d pairs over %d problems (%s)",
        path, len(pairs), len({p["prompt"] for p in pairs}), dict(kinds),
    )  # fmt: skip
    return pairs, skipped + why


__all__ = [
    "branches_off",
    "build_prm800k_pairs",
    "check_chosen_mode",
    "first_error",
    "load_problems",
    "matched_chosen",
    "normalize_problem",
    "pair_indices",
    "prm800k_solutions",
    "solution_pairs",
    "stated_answers",
    "with_stated_answer",
]
