"""Pure curation rules for preference pairs: row identity, the consistency test, flipping, the LIM score,
and the length-bias share with its rebalancing. Scoring happens elsewhere (`rewardmodels.eval.curate`);
everything here takes numbers and rows and is deterministic.

Consistency (Skywork-Reward-V2): with margins m_j = s_j(chosen) - s_j(rejected) from scorers j = 1..J, a
pair is inconsistent when m_j < -tau for every j: all of them confidently prefer the rejected response.
Pairs marked `tie: true` carry no direction and are never flagged.

Flip policy: an inconsistent pair flipped has chosen and rejected swapped and `flipped: true` set; its
`margin` field, if any, is removed (it measured confidence in the other direction). Ties are untouched.

LIM (LIMR's learning-impact score): with a_i^k pair i's signal at checkpoint k (1[m > 0] for `correct`,
sigmoid(m) for `sigmoid`) and abar^k the mean of a^k over the pairs,

    s_i = 1 - sum_k (a_i^k - abar^k)^2 / sum_k (1 - abar^k)^2

1 for a pair that learns exactly as the run does on average; a pair that stays far from the run's mean
trajectory scores low (and can be negative).

Length bias: per source, the share of pairs whose chosen response is longer, in characters of the response
text (chat messages: their contents joined by newlines), among the pairs whose two lengths differ (equal
lengths carry no length signal). Rebalancing drops pairs of the majority side, a seeded sample, until the
share is at most the target (from above) or at least it (from below).
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

from rewardmodels.data_builders.schema import text_of
from rewardmodels.errors import InputError, Location
from rewardmodels.io import location_of, read_rows

LIM_SIGNALS = ("correct", "sigmoid")
ACTIONS = ("keep", "drop", "flip")


def row_key(row: dict) -> str:
    """A pair's identity: a hash of its prompt, chosen and rejected (as JSON), the same wherever it is read."""
    payload = json.dumps(
        [row.get("prompt"), row.get("chosen"), row.get("rejected")], sort_keys=True, ensure_ascii=False
    )
    return hashlib.sha1(payload.encode("utf-8")).hexdigest()[:20]


def is_tie(row: dict) -> bool:
    return row.get("tie") is True


def inconsistent(margins: Sequence[Sequence[float]], tau: float) -> list[bool]:
    """`margins[j][i]`: scorer j's margin on pair i. Pair i is inconsistent when every margin is < -tau."""
    if not margins:
        return []
    count = len(margins[0])
    if any(len(m) != count for m in margins):
        raise ValueError("every scorer needs one margin per pair")
    return [all(m[i] < -tau for m in margins) for i in range(count)]


def flipped(row: dict) -> dict:
    """The pair with chosen and rejected swapped (module docstring: the flip policy)."""
    out = {k: v for k, v in row.items() if k != "margin"}
    out["chosen"], out["rejected"] = row["rejected"], row["chosen"]
    out["flipped"] = True
    return out


def pair_signal(margin: float, kind: str) -> float:
    """a = 1[margin > 0] (`correct`) or sigmoid(margin) (`sigmoid`)."""
    if kind == "correct":
        return 1.0 if margin > 0 else 0.0
    if kind == "sigmoid":
        return 0.5 * (1.0 + math.tanh(0.5 * margin))  # = 1 / (1 + e^-m), without overflow
    raise ValueError(f"the LIM signal must be one of {', '.join(LIM_SIGNALS)}, got {kind!r}")


def lim_scores(signals: Sequence[Sequence[float]]) -> tuple[list[float], list[float]]:
    """(s_i per pair, abar^k per checkpoint) from `signals[i][k]`, pair i's signal at checkpoint k (module
    docstring). sum_k (1 - abar^k)^2 = 0 (every pair right at every checkpoint) leaves s undefined: an
    InputError says so."""
    if not signals:
        raise InputError(None, None, "checkpoints", "no pairs to compute LIM scores for")
    k_count = len(signals[0])
    if k_count == 0 or any(len(s) != k_count for s in signals):
        raise InputError(None, None, "checkpoints", "every pair needs one signal per checkpoint")
    means = [sum(s[k] for s in signals) / len(signals) for k in range(k_count)]
    denominator = sum((1.0 - m) ** 2 for m in means)
    if denominator == 0.0:
        raise InputError(
            None, None, "checkpoints",
            "the LIM score is undefined: every pair is at the run's ceiling (signal 1) at every checkpoint, so "
            "sum_k (1 - abar^k)^2 = 0",
            hint="Use checkpoints from earlier in the run, or --lim-signal sigmoid.",
        )  # fmt: skip
    scores = [1.0 - sum((s[k] - means[k]) ** 2 for k in range(k_count)) / denominator for s in signals]
    return scores, means


def lim_keep(
    scores: Sequence[float], threshold: float | None = 0.6, top_fraction: float | None = None
) -> list[bool]:
    """Which pairs to keep: s_i >= threshold, or (given `top_fraction`) the ceil(fraction x n) highest
    scores, earlier pairs first among equal scores (equal to 9 decimals)."""
    if top_fraction is not None:
        if not 0.0 < top_fraction <= 1.0:
            raise ValueError(f"the LIM top fraction must be in (0, 1], got {top_fraction}")
        take = math.ceil(top_fraction * len(scores))
        # scores equal up to float rounding (the same trajectory summed in another order) count as equal
        order = sorted(range(len(scores)), key=lambda i: (-round(scores[i], 9), i))
        chosen = set(order[:take])
        return [i in chosen for i in range(len(scores))]
    if threshold is None:
        raise ValueError("give a LIM threshold or a top fraction")
    return [s >= threshold for s in scores]


@dataclass(frozen=True)
class LengthShare:
    """Pairs by which response is longer (characters); `share` = chosen_longer / (chosen_longer +
    rejected_longer), None when no pair differs in length."""

    chosen_longer: int
    rejected_longer: int
    equal: int

    @property
    def share(self) -> float | None:
        differ = self.chosen_longer + self.rejected_longer
        return self.chosen_longer / differ if differ else None

    def to_dict(self) -> dict:
        return {**self.__dict__, "share": self.share}


def length_sign(row: dict) -> int:
    """+1 when chosen is longer (characters), -1 when rejected is, 0 when equal or a tie (no preference)."""
    if is_tie(row):
        return 0
    diff = len(text_of(row["chosen"])) - len(text_of(row["rejected"]))
    return (diff > 0) - (diff < 0)


def length_share(rows: Sequence[dict]) -> LengthShare:
    signs = [length_sign(r) for r in rows if not is_tie(r)]
    return LengthShare(signs.count(1), signs.count(-1), signs.count(0))


def rebalance_drops(signs: Sequence[int], target: float, rng: random.Random) -> list[int]:
    """Indices to drop so that the chosen-longer share is at most `target` (too many chosen-longer pairs)
    or at least it (too many rejected-longer): with L chosen-longer and S rejected-longer pairs,

        L / (L + S) > target:  keep floor(target x S / (1 - target)) of the L
        L / (L + S) < target:  keep floor((1 - target) x L / target) of the S

    the kept ones a seeded sample; equal-length pairs (sign 0) are never dropped."""
    if not 0.0 < target < 1.0:
        raise ValueError(f"the length target must be in (0, 1), got {target}")
    longer = [i for i, s in enumerate(signs) if s > 0]
    shorter = [i for i, s in enumerate(signs) if s < 0]
    if not longer and not shorter:
        return []
    share = len(longer) / (len(longer) + len(shorter))
    if share > target:
        keep = math.floor(target * len(shorter) / (1.0 - target) + 1e-9)
        pool = longer
    elif share < target:
        keep = math.floor((1.0 - target) * len(longer) / target + 1e-9)
        pool = shorter
    else:
        return []
    kept = set(rng.sample(pool, min(keep, len(pool))))
    return [i for i in pool if i not in kept]


def apply_decisions(rows: list, decisions: dict[str, str], source: str, path: str) -> tuple[list, dict]:
    """Training rows after a curate run's decisions (key -> keep, drop or flip): dropped rows removed,
    flipped rows swapped. A row the decisions do not know (the data changed since curation) is an
    InputError naming the source and the decisions file. Returns the rows and the counts of each action."""
    out, counts, unknown = [], {a: 0 for a in ACTIONS}, 0
    for row in rows:
        action = decisions.get(row_key(row))
        if action is None:
            unknown += 1
            continue
        counts[action] += 1
        if action == "keep":
            out.append(row)
        elif action == "flip":
            out.append(flipped(row))
    if unknown:
        raise InputError(
            path, None, "key",
            f"{unknown} of {len(rows)} training rows of source '{source}' are not in this curate decisions file",
            hint="The data changed since it was curated: run `rewardmodels curate` again.",
        )  # fmt: skip
    return out, counts


def read_decisions(path: str) -> dict[str, str]:
    """key -> action from a curate run's decisions.jsonl; a row without a known action is an InputError."""
    decisions = {}
    for i, row in enumerate(read_rows(path)):
        action = row.get("action") if isinstance(row, dict) else None
        if action not in ACTIONS or not isinstance(row.get("key"), str):
            where = location_of(row, Location(path, i + 1))
            raise InputError.at(
                where, "action", f"expected a string key and an action, one of {', '.join(ACTIONS)}"
            )
        decisions[row["key"]] = action
    return decisions
