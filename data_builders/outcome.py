"""Outcome rows (prompt, completion, label in [0, 1]) for implicit PRMs, and preference pairs made of them.

Sources:

  sampled solutions   a generator writes N solutions per problem through `rewardmodels.sampling` (cached on
                      disk, so an interrupted or repeated run samples nothing twice); each is labelled by its
                      final answer against the gold one (`answers.is_correct`, math-verify)
  PRM800K             a solution (steps joined with a blank line) is correct when every step is rated
                      non-negative and its final answer matches the gold answer; official .jsonl records carry
                      the gold answer (question.ground_truth_answer), the stepwise-critic parquet does not, so a
                      `gold=FILE` of problems and answers (e.g. MATH-500) is checked where it has the problem,
                      and elsewhere the raters' non-negative rating of the answer step stands for the check
  the synthetic task  `synthetic:` rows of schema outcome (data_builders/synthetic.py)

The PRM800K rule, per reassembled solution (`stepwise` builders, neutral ratings positive by default):

  a step rated -1                          -> label 0 when the solution goes on to a final answer; a
                                              trajectory that stops at the error is skipped unless
                                              `partial=true` ("partial solution with an error")
  an unrated step, no step rated -1        -> skipped ("unrated step")
  every step rated >= 0, no final answer   -> skipped ("no final answer": the trajectory stopped early)
  every step rated >= 0, a final answer    -> label 1 if it matches the gold answer (or there is no gold
                                              answer to check), else 0

`pairs_from_outcomes` turns outcome rows into DPO pairs: per prompt, each correct solution against an
incorrect one (seeded, each incorrect one used about equally often).
"""

from __future__ import annotations

import argparse
import logging
import random
from collections import Counter, defaultdict
from collections.abc import Sequence

from rewardmodels.answers import STEP_JOIN, extract_final_answer, is_correct, parse_gold
from rewardmodels.data_builders import stepwise
from rewardmodels.errors import ROW, InputError, Location
from rewardmodels.io import location_of, read_rows, with_location

logger = logging.getLogger("rewardmodels")


# ---- PRM800K ----------------------------------------------------------------------------------------------


def problem_text(row: dict) -> str | None:
    """A problem row's text: its `problem`, else `prompt`, else `question` string (None if it has none)."""
    return next((row[k] for k in ("problem", "prompt", "question") if isinstance(row.get(k), str)), None)


def load_gold(path: str | None) -> dict[str, str]:
    """problem text (stripped) -> gold answer, from rows with `problem` (or prompt/question) and `answer`."""
    if not path:
        return {}
    gold = {}
    for row in read_rows(path):
        problem = problem_text(row)
        if problem is not None and row.get("answer") not in (None, ""):
            gold[problem.strip()] = str(row["answer"])
    return gold


def outcome_of_solution(
    steps: Sequence[str], labels: Sequence, gold: str | None, partial: bool = False
) -> tuple[float | None, str]:
    """The PRM800K rule (module docstring) for one solution: (label or None when skipped, why)."""
    # The final answer is the last step's: an earlier step may box or state an intermediate result.
    has_answer = bool(steps) and extract_final_answer(steps[-1]) is not None
    if any(label is False or label == 0 for label in labels if label is not None):
        if not partial and not has_answer:
            return None, "partial solution with an error"
        return 0.0, "a step rated -1"
    if any(label is None for label in labels):
        return None, "unrated step"
    if not has_answer:
        return None, "no final answer"
    if gold is None:
        return 1.0, "rated correct, no gold answer to check"
    return (
        (1.0, "answer matches the gold one") if is_correct(steps[-1], gold) else (0.0, "wrong final answer")
    )


def outcome_rows_from_stepwise(
    rows: Sequence[dict], gold: dict[str, str] | None = None, partial: bool = False
) -> tuple[list[dict], Counter, Counter]:
    """Outcome rows from stepwise rows; returns (rows, skipped by reason, kept by reason)."""
    gold = gold or {}
    out, skipped, kept = [], Counter(), Counter()
    for row in rows:
        answer = gold.get(row["prompt"].strip()) if isinstance(row["prompt"], str) else None
        label, why = outcome_of_solution(row["completions"], row["labels"], answer, partial)
        if label is None:
            skipped[why] += 1
            continue
        kept[why] += 1
        outcome = {"prompt": row["prompt"], "completion": STEP_JOIN.join(row["completions"]), "label": label}
        outcome.update({k: row[k] for k in ("id",) if k in row})
        outcome["answer_checked"] = answer is not None
        out.append(with_location(outcome, location_of(row, Location())))
    return out, skipped, kept


def _spec_bool(value) -> bool:
    return value if isinstance(value, bool) else str(value).lower() in ("true", "yes", "1")


def build_prm800k_stepwise_outcome(
    path: str, gold: str | None = None, neutral: str = "positive", partial=False
) -> tuple[list[dict], Counter]:
    """PRM800K stepwise-critic parquet -> outcome rows (options: gold=FILE, neutral=, partial=)."""
    rows, skipped = stepwise.build_prm800k_stepwise(path, neutral=neutral, alternatives=True)
    out, why_skipped, kept = outcome_rows_from_stepwise(rows, load_gold(gold), _spec_bool(partial))
    logger.info("PRM800K outcome rows from %s: %s", path, dict(kept))
    return out, skipped + why_skipped


def build_prm800k_outcome(path: str, neutral: str = "positive", partial=False) -> tuple[list[dict], Counter]:
    """Official PRM800K .jsonl -> outcome rows, checked against each record's ground_truth_answer."""
    out, skipped = [], Counter()
    for i, record in enumerate(read_rows(path)):
        where = location_of(record, Location(path, i + 1, ROW))
        try:
            rows, why = stepwise.prm800k_record_rows(record, neutral, alternatives=True, id_prefix=f"{i}")
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as e:
            raise InputError.at(where, "label.steps", str(e)) from None
        skipped.update(why)
        truth = (record.get("question") or {}).get("ground_truth_answer")
        gold = {rows[0]["prompt"].strip(): str(truth)} if rows and truth not in (None, "") else {}
        got, why_skipped, _ = outcome_rows_from_stepwise(rows, gold, _spec_bool(partial))
        out.extend(with_location(r, where) for r in got)
        skipped.update(why_skipped)
    return out, skipped


# ---- pairs ---------------------------------------------------------------------------------------------------


def pairs_from_outcomes(rows: Sequence[dict], seed: int = 0, per_prompt: int | None = None) -> list[dict]:
    """Preference rows: per prompt, every correct solution (label >= 0.5) against an incorrect one, cycling
    through the incorrect ones in a seeded order; at most `per_prompt` pairs a prompt."""
    rng = random.Random(seed)
    by_prompt: dict[str, tuple[list, list]] = defaultdict(lambda: ([], []))
    for row in rows:
        key = row["prompt"] if isinstance(row["prompt"], str) else repr(row["prompt"])
        by_prompt[key][0 if row["label"] >= 0.5 else 1].append(row)
    pairs = []
    for good, bad in by_prompt.values():
        if not good or not bad:
            continue
        rng.shuffle(bad)
        for j, chosen in enumerate(good[:per_prompt] if per_prompt else good):
            rejected = bad[j % len(bad)]
            if chosen["completion"] != rejected["completion"]:
                pairs.append(
                    {
                        "prompt": chosen["prompt"],
                        "chosen": chosen["completion"],
                        "rejected": rejected["completion"],
                    }
                )
    return pairs


def build_prm800k_stepwise_pairs(
    path: str, gold: str | None = None, neutral: str = "positive", pair_seed=0, per_prompt=None
) -> tuple[list[dict], Counter]:
    """PRM800K stepwise-critic parquet -> preference pairs of a correct and an incorrect solution (options:
    gold=FILE, neutral=, pair_seed=, per_prompt=)."""
    rows, skipped = build_prm800k_stepwise_outcome(path, gold, neutral)
    pairs = pairs_from_outcomes(rows, int(pair_seed), int(per_prompt) if per_prompt else None)
    return pairs, skipped


# ---- sampled solutions ----------------------------------------------------------------------------------------


def sample_outcome_rows(problems: Sequence[dict], sampler, n: int) -> list[dict]:
    """`n` cached samples per problem (`problem`/`prompt`/`question` and gold `answer`), each an outcome row
    labelled 1.0 when its final answer matches the gold one."""
    from rewardmodels.cli_common import progress_bar

    rows = []
    for i, raw in enumerate(progress_bar(problems, desc="sampling solutions", unit="problem")):
        problem = next(
            (raw[k] for k in ("problem", "prompt", "question") if isinstance(raw.get(k), str)), None
        )
        if problem is None or str(raw.get("answer", "")).strip() == "":
            raise ValueError(f"row {i}: needs 'problem' (or prompt/question) and a gold 'answer'")
        gold = parse_gold(str(raw["answer"]))
        for j, text in enumerate(sampler.samples(problem, [], n)):
            if not text.strip():
                continue
            rows.append({
                "prompt": problem, "completion": text, "label": 1.0 if is_correct(text, gold) else 0.0,
                "id": f"{raw.get('unique_id', raw.get('id', i))}#{j}", "answer": str(raw["answer"]),
                "generator": sampler.generator.fingerprint,
            })  # fmt: skip
    return rows


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `rewardmodels build outcome-samples`."""
    from rewardmodels.sampling import add_sampling_arguments

    parser.add_argument(
        "--problems", required=True, help="Rows with problem and gold answer (e.g. MATH-500)."
    )
    parser.add_argument("--output", "-o", required=True, help="Outcome JSONL to write (atomically).")
    parser.add_argument("--n", type=int, default=4, help="Solutions sampled per problem.")
    parser.add_argument("--limit", type=int, default=None, help="Only the first N problems.")
    add_sampling_arguments(parser, "Tokens per sampled solution.")


def run(args: argparse.Namespace) -> int:
    """Sample, label and write the outcome rows the `add_arguments` flags name."""
    from rewardmodels.cli_common import setup_logging
    from rewardmodels.data_builders.schema import outcome_row_errors, validate_rows
    from rewardmodels.io import write_jsonl
    from rewardmodels.sampling import open_sampler

    setup_logging()
    problems = read_rows(args.problems)[: args.limit]
    sampler = open_sampler(args)
    try:
        rows = sample_outcome_rows(problems, sampler, args.n)
    finally:
        sampler.cache.close()
    rows, report = validate_rows(rows, outcome_row_errors, source="sampled outcomes")
    n = write_jsonl(args.output, rows)
    correct = sum(r["label"] >= 0.5 for r in rows)
    print(
        f"wrote {n} outcome rows ({correct} correct) to {args.output} ({report}); samples: "
        f"{sampler.generated} generated, {sampler.hits} from the cache at {sampler.cache.path}"
    )
    return 0


__all__ = [
    "build_prm800k_outcome",
    "build_prm800k_stepwise_outcome",
    "build_prm800k_stepwise_pairs",
    "load_gold",
    "outcome_of_solution",
    "outcome_rows_from_stepwise",
    "pairs_from_outcomes",
    "sample_outcome_rows",
]
