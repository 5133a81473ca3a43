"""The RLCR reward (Damani et al. 2025, "Beyond Binary Rewards: Training LMs to Reason About Their
Uncertainty"): correctness plus a Brier term on the confidence the completion states. No model is involved.

With c in {0, 1} whether the completion's final answer matches the reference, and q in [0, 1] the confidence
it states in its last `<confidence>...</confidence>` tag (the tag name is configurable):

    r = c - (q - c)^2                                  the paper's RLCR(y, q, y*) = 1[y = y*] - (q - 1[y = y*])^2

so a right answer earns r in [0, 1] (best at q = 1) and a wrong one r in [-1, 0] (best at q = 0); the Brier
term is a bounded proper scoring rule, so the expected reward is highest at the true probability of being
right. A missing or unparseable confidence (no tag, not a plain decimal number, NaN, or outside [0, 1]) gives

    r = c - missing_penalty                            (default missing_penalty = 1)

1 is the largest the Brier term can be, so with the default, leaving the confidence out never earns more
than stating any confidence; a smaller penalty would teach the policy to omit it when unsure. (The authors'
code likewise gives a malformed confidence the lowest calibration reward.) It is a value, never an exception,
so one bad completion cannot stop an RL step.

c comes from the shared answer module (`rewardmodels.answers`: last \\boxed{}, "# Answer", "The answer is",
compared by math-verify) on the completion with its confidence tags removed, so the stated confidence is
never read as the answer; with `answer_tag` (e.g. "answer"), the content of the last `<answer>` tag is the
answer instead. The TRL reward function (`rlcr_reward_func`, hooked into `scorers.reward_funcs`) reads the
reference from a dataset column; a row without a reference gets None ("not scored", TRL's convention).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence

from rewardmodels.data_builders.schema import text_of

DEFAULT_TAG = "confidence"
MISSING_PENALTY = 1.0
# A plain decimal number: "0.8", ".75", "1", "1.0"; no sign, exponent, percent, "nan" or "inf", which
# float() would accept but a stated probability should not be.
_DECIMAL = re.compile(r"\d+(?:\.\d*)?|\.\d+")


def _tag_pattern(tag: str) -> re.Pattern:
    if not tag or not re.fullmatch(r"[A-Za-z_][\w.-]*", tag):
        raise ValueError(f"tag must be an XML-style name such as 'confidence', got {tag!r}")
    return re.compile(rf"<{re.escape(tag)}>(.*?)</{re.escape(tag)}>", re.DOTALL)


def tagged(text: str, tag: str) -> str | None:
    """The content of the last `<tag>...</tag>` in `text`, stripped; None when there is none."""
    found = _tag_pattern(tag).findall(text)
    return found[-1].strip() if found else None


def parse_confidence(text: str, tag: str = DEFAULT_TAG) -> float | None:
    """q from the last `<tag>...</tag>`: a plain decimal number in [0, 1]; None when there is no tag or its
    content is anything else (text, a percent, a sign, NaN, inf, a value above 1)."""
    content = tagged(text, tag)
    if content is None or not _DECIMAL.fullmatch(content):
        return None
    q = float(content)
    return q if 0.0 <= q <= 1.0 else None


def without_tags(text: str, tag: str) -> str:
    """`text` with every `<tag>...</tag>` removed (so a stated confidence is never taken for the answer)."""
    return _tag_pattern(tag).sub(" ", text)


def rlcr_reward(
    correct: bool | int, confidence: float | None, missing_penalty: float = MISSING_PENALTY
) -> float:
    """r = c - (q - c)^2, with c = 1 for a correct answer and 0 otherwise; a confidence that is None, NaN or
    outside [0, 1] gives r = c - missing_penalty instead (module docstring)."""
    if correct not in (0, 1):  # True/False and 0/1; anything else is a caller's bug, not a sample's
        raise ValueError(f"correct must be 0 or 1, got {correct!r}")
    c = float(correct)
    if confidence is None or math.isnan(confidence) or not 0.0 <= confidence <= 1.0:
        return c - missing_penalty
    return c - (confidence - c) ** 2


def is_correct_completion(
    text: str, reference, tag: str = DEFAULT_TAG, answer_tag: str | None = None
) -> bool:
    """Whether the completion's final answer matches `reference` by math-verify: the answer module on the
    text without its confidence tags, or the last `<answer_tag>` content when `answer_tag` is given."""
    from rewardmodels.answers import answers_match, is_correct, parse_gold

    if answer_tag is None:
        return is_correct(without_tags(text, tag), str(reference))
    answer = tagged(text, answer_tag)
    return answer is not None and answers_match(parse_gold(str(reference)), parse_gold(answer))


def rlcr_rewards(
    completions: Sequence,
    references: Sequence,
    tag: str = DEFAULT_TAG,
    answer_tag: str | None = None,
    missing_penalty: float = MISSING_PENALTY,
) -> list[float | None]:
    """One RLCR reward per completion (a string or chat messages); None where the reference is None."""
    if len(completions) != len(references):
        raise ValueError(f"{len(completions)} completions but {len(references)} references")
    _tag_pattern(tag)  # a bad tag name is refused before any sample is read
    rewards: list[float | None] = []
    for completion, reference in zip(completions, references, strict=True):
        if reference is None:
            rewards.append(None)
            continue
        text = text_of(completion)
        correct = is_correct_completion(text, reference, tag, answer_tag)
        rewards.append(rlcr_reward(correct, parse_confidence(text, tag), missing_penalty))
    return rewards


def rlcr_reward_func(
    answer_column: str = "answer",
    tag: str = DEFAULT_TAG,
    answer_tag: str | None = None,
    missing_penalty: float = MISSING_PENALTY,
    name: str = "rlcr_reward",
) -> Callable:
    """`rlcr_rewards` as a TRL reward function: f(prompts=, completions=, **columns) reads the reference
    answers from the dataset column `answer_column` (TRL passes every column as a keyword)."""
    _tag_pattern(tag)
    if answer_tag is not None:
        _tag_pattern(answer_tag)

    def reward_func(prompts, completions, completion_ids=None, **kwargs) -> list[float | None]:
        if answer_column not in kwargs:
            raise ValueError(
                f"{name}: the dataset has no {answer_column!r} column with the reference answers"
            )
        return rlcr_rewards(list(completions), list(kwargs[answer_column]), tag, answer_tag, missing_penalty)

    reward_func.__name__ = reward_func.__qualname__ = name
    return reward_func


__all__ = [
    "DEFAULT_TAG",
    "MISSING_PENALTY",
    "is_correct_completion",
    "parse_confidence",
    "rlcr_reward",
    "rlcr_reward_func",
    "rlcr_rewards",
    "tagged",
    "without_tags",
]
