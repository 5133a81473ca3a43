"""The RLCR reward (rewardmodels/scorers/rlcr.py): r = c - (q - c)^2 against hand values, the stated
confidence's parsing, the missing-confidence penalty, and the TRL reward function behind reward_funcs."""

import math

import pytest

from rewardmodels.scorers.reward_funcs import rlcr_reward_function
from rewardmodels.scorers.rlcr import parse_confidence, rlcr_reward, rlcr_rewards


def test_reward_by_hand():
    assert rlcr_reward(True, 0.8) == pytest.approx(0.96)  # 1 - (0.8 - 1)^2 = 1 - 0.04
    assert rlcr_reward(False, 0.8) == pytest.approx(-0.64)  # 0 - (0.8 - 0)^2
    assert rlcr_reward(1, 0.5) == pytest.approx(0.75) and rlcr_reward(0, 0.5) == pytest.approx(-0.25)
    assert (rlcr_reward(1, 1.0), rlcr_reward(0, 0.0)) == (1.0, 0.0)  # sure and right / sure it is wrong
    assert (rlcr_reward(1, 0.0), rlcr_reward(0, 1.0)) == (0.0, -1.0)  # the worst stated confidences


def test_missing_confidence_gets_the_penalty():
    # default penalty 1 = the largest Brier term: no worse than, and never better than, any stated q
    assert rlcr_reward(True, None) == 0.0 and rlcr_reward(False, None) == -1.0
    assert rlcr_reward(True, math.nan) == 0.0 and rlcr_reward(False, 1.5) == -1.0
    assert rlcr_reward(True, None, missing_penalty=0.5) == 0.5
    with pytest.raises(ValueError, match="0 or 1"):
        rlcr_reward(0.7, 0.5)


@pytest.mark.parametrize(
    "text, q",
    [
        ("<confidence>0.8</confidence>", 0.8),
        ("<confidence> .75 </confidence>", 0.75),
        ("<confidence>1</confidence>", 1.0),
        ("<confidence>0.2</confidence> then <confidence>0.9</confidence>", 0.9),  # the last tag
        ("<confidence>\n0.3\n</confidence>", 0.3),
        ("no tag at all", None),
        ("<confidence>80%</confidence>", None),
        ("<confidence>-0.1</confidence>", None),
        ("<confidence>1.5</confidence>", None),
        ("<confidence>nan</confidence>", None),
        ("<confidence>high</confidence>", None),
        ("<confidence>0.8", None),  # never closed
    ],
)
def test_confidence_parsing(text, q):
    assert parse_confidence(text) == q


def test_rewards_of_completions():
    completions = [
        "2 + 5 = 7, so \\boxed{7}. <confidence>0.9</confidence>",  # right, 0.9: 1 - 0.01
        "\\boxed{3} <confidence>0.9</confidence>",  # wrong, 0.9: -0.81
        "\\boxed{7}",  # right, no confidence: 1 - 1
        "\\boxed{3} <confidence>very sure</confidence>",  # wrong, unparseable: 0 - 1
        "I am unsure. <confidence>0.6</confidence>",  # the 0.6 is not the answer: wrong, 0 - 0.36
        # math-verify would read the whole text's $0.6$ as the answer; inside the tag it is not: wrong, and
        # "$0.6$" is no plain number: 0 - 1
        "I think 3\n\n<confidence>$0.6$</confidence>",
        [{"role": "assistant", "content": "\\boxed{7} <confidence>1</confidence>"}],  # chat format: 1
        "\\boxed{7} <confidence>0.5</confidence>",  # no reference: not scored
    ]
    references = ["7", "7", "7", "7", "0.6", "0.6", "7", None]
    got = rlcr_rewards(completions, references)
    assert got[:7] == pytest.approx([0.99, -0.81, 0.0, -1.0, -0.36, -1.0, 1.0]) and got[7] is None


def test_answer_and_confidence_tags_are_configurable():
    text = "<think>5 + 2</think><answer>7</answer><analysis>checked</analysis><conf>0.5</conf>"
    assert rlcr_rewards([text], ["7"], tag="conf", answer_tag="answer") == [pytest.approx(0.75)]
    assert rlcr_rewards([text], ["7"], answer_tag="answer") == [0.0]  # no <confidence> tag: 1 - 1
    with pytest.raises(ValueError, match="XML-style name"):
        rlcr_rewards([text], ["7"], tag="<conf>")


def test_trl_reward_function_reads_the_reference_column():
    f = rlcr_reward_function(answer_column="solution")
    completions = ["\\boxed{4} <confidence>0.7</confidence>", "\\boxed{5} <confidence>0.7</confidence>"]
    # right at 0.7: 1 - 0.09; wrong at 0.7: -0.49
    got = f(prompts=["2 + 2?", "2 + 2?"], completions=completions, solution=["4", "4"], trainer_state=None)
    assert got == pytest.approx([0.91, -0.49]) and f.__name__ == "rlcr_reward"
    with pytest.raises(ValueError, match="'solution' column"):
        f(prompts=["q"], completions=["\\boxed{4}"], answer=["4"])
