"""Planted-token data for the learnability tier (tests/test_learnability.py).

A solution is a prompt and 3-4 "steps" of random filler words. Its planted twin is the same text with one
word of one step (never a step's first word, so the planted word always follows a space) replaced by
PLANTED. Every filler word and PLANTED are one token each in tests/tiny.py's BPE (`check_vocabulary`), so
the twin has exactly the clean text's token count: the planted token is the only thing that tells a bad
response from a good one, and a method that fails to learn it has a bug in its plumbing (label placement,
masks, signs, the reference, verdict parsing), not a task too hard for a tiny model.

Row kinds, in the canonical schemas of data_builders/schema.py:
  preference  {prompt, chosen: clean text, rejected: planted text}
  stepwise    {prompt, completions, labels}: every even-numbered solution planted, its steps labelled True
              before the planted step and False from it on; the others clean, all True
  outcome     {prompt, completion, label}: the same solutions joined, label 0 when planted, else 1

Every builder takes `plant`: with `plant=False` the planted word is a decoy instead (another filler word at
the same place, `Solution.decoy_steps`) and the labels stay as they were: the control with the token
removed, whose rows carry no signal. `position_only_f1` is the ceiling of chance for first-error prediction:
the best ProcessBench F1 of any predictor that sees only the number of steps.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from dataclasses import dataclass

from rewardmodels.eval.processbench_metrics import subset_metrics
from rewardmodels.eval.step_baselines import gold_first_errors

PLANTED = "bad"
FILLER = ("a", "one", "out", "it", "time", "step", "at", *(str(n) for n in range(36)))
SEPARATOR = "\n\n"  # the PRM's and the implicit PRM's default step separator


@dataclass(frozen=True)
class Solution:
    prompt: str
    steps: tuple[str, ...]
    planted_steps: tuple[str, ...]  # `steps` with one word of step `planted_at` replaced by PLANTED
    decoy_steps: tuple[str, ...]  # the same word replaced by another filler word instead: no signal
    planted_at: int

    def edited(self, plant: bool) -> tuple[str, ...]:
        return self.planted_steps if plant else self.decoy_steps


def check_vocabulary(tokenizer) -> int:
    """The planted token's id, after checking that " PLANTED" and every " FILLER" word are one token each and
    that no filler word holds the planted one."""
    planted = tokenizer(" " + PLANTED, add_special_tokens=False)["input_ids"]
    assert len(planted) == 1, f"{PLANTED!r} is {len(planted)} tokens in this vocabulary"
    for word in FILLER:
        ids = tokenizer(" " + word, add_special_tokens=False)["input_ids"]
        assert len(ids) == 1 and ids != planted and PLANTED not in word, word
    return planted[0]


def solutions(
    n: int, seed: int, n_steps: Sequence[int] = (3, 4), n_words: Sequence[int] = (3, 5)
) -> list[Solution]:
    """`n` random solutions: the prompt 3 words, each of the n_steps steps n_words[0]..n_words[1] words."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        prompt = "Check: " + " ".join(rng.choices(FILLER, k=3))
        steps = [rng.choices(FILLER, k=rng.randint(*n_words)) for _ in range(rng.choice(n_steps))]
        at = rng.randrange(len(steps))
        word = rng.randrange(1, len(steps[at]))
        planted, decoy = [list(s) for s in steps], [list(s) for s in steps]
        planted[at][word] = PLANTED
        decoy[at][word] = rng.choice([w for w in FILLER if w != steps[at][word]])
        texts = [tuple(map(" ".join, x)) for x in (steps, planted, decoy)]
        out.append(Solution(prompt, *texts, at))
    return out


def is_planted(index: int) -> bool:
    """Which solutions stepwise and outcome rows plant: every second one, so both outcomes are half."""
    return index % 2 == 0


def preference_rows(sols: Sequence[Solution], plant: bool = True) -> list[dict]:
    return [
        {"prompt": s.prompt, "chosen": SEPARATOR.join(s.steps), "rejected": SEPARATOR.join(s.edited(plant))}
        for s in sols
    ]


def stepwise_rows(sols: Sequence[Solution], plant: bool = True) -> list[dict]:
    """Step labels True before the planted step and False from it on (all True for clean solutions).
    `plant=False` keeps those labels but writes the decoy text: the control with the token removed."""
    rows = []
    for i, s in enumerate(sols):
        bad = is_planted(i)
        labels = [not bad or k < s.planted_at for k in range(len(s.steps))]
        text = s.edited(plant) if bad else s.steps
        rows.append({"prompt": s.prompt, "completions": list(text), "labels": labels})
    return rows


def outcome_rows(sols: Sequence[Solution], plant: bool = True) -> list[dict]:
    return [
        {
            "prompt": r["prompt"],
            "completion": SEPARATOR.join(r["completions"]),
            "label": int(all(r["labels"])),
        }
        for r in stepwise_rows(sols, plant)
    ]


def position_only_f1(rows: Sequence[dict]) -> float:
    """The best first-error F1 (`processbench_metrics.subset_metrics`) on stepwise `rows` of any predictor
    that sees only a solution's step count: every assignment of step count -> predicted index (or -1) is
    tried. A model that learned no more than the position prior cannot beat it."""
    labels = gold_first_errors(rows)
    counts = sorted({len(r["completions"]) for r in rows})
    best = 0.0
    for choice in itertools.product(*[range(-1, n) for n in counts]):
        predict = dict(zip(counts, choice, strict=True))
        f1 = subset_metrics(labels, [predict[len(r["completions"])] for r in rows])["f1"]
        best = max(best, f1 or 0.0)
    return best
