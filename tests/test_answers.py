"""Final-answer extraction and checking, on hand-written solutions."""

import pytest

from rewardmodels.answers import extract_final_answer, is_correct, last_boxed, parse_gold, split_solution


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("so \\boxed{20}", "20"),
        ("first \\boxed{1}, then \\boxed{2}", "2"),  # the last box is the final answer
        ("\\boxed{\\frac{1}{2}} done", "\\frac{1}{2}"),  # nested braces stay whole
        ("\\boxed {x^{2}}", "x^{2}"),
        ("\\fbox{7}", "7"),
        ("The answer is 5.\n\n# Answer\n\n7\n", "7"),  # PRM800K's heading wins over the sentence
        ("Adding up, the final answer is: $12$.", "12"),
        ("The answer is 3. Then the answer is \\(4\\).", "4"),
        ("The answer is \\boxed{9}.", "9"),
    ],
)
def test_extract_final_answer(text, answer):
    assert extract_final_answer(text) == answer


@pytest.mark.parametrize("text", ["no answer here", "\\boxed{unclosed", "# Answer\n\n   \n", "the answer is"])
def test_no_rule_finds_an_answer(text):
    assert extract_final_answer(text) is None


def test_last_boxed_picks_the_later_command():
    assert last_boxed("\\boxed{1} \\fbox{2}") == "2" and last_boxed("\\fbox{1} \\boxed{2}") == "2"
    assert last_boxed("\\boxed") is None


def test_answer_checking_goes_through_math_verify():
    assert is_correct("thus \\boxed{20}", "20")
    assert is_correct("\\boxed{\\frac{1}{2}}", "0.5")
    assert is_correct("The answer is 1/2.", "\\frac{1}{2}")
    assert is_correct("# Answer\n\n0.5", "\\frac12")
    assert is_correct("first \\boxed{1}, then \\boxed{2}", "2")
    assert not is_correct("first \\boxed{1}, then \\boxed{2}", "1")
    assert not is_correct("\\boxed{21}", "20")
    assert not is_correct("I do not know", "20")
    # without a stated answer math-verify searches the text itself
    assert is_correct("so x = 4", "4")
    assert is_correct("\\boxed{5}", parse_gold("5"))  # a parsed gold is used as it is


def test_split_solution_keeps_the_tail():
    assert split_solution("a\n\n\n\nb\n\n c ") == ["a", "b", "c"]
    assert split_solution("a\n\nb\n\nc\n\nd", max_steps=2) == ["a", "b\n\nc\n\nd"]
    assert split_solution("  \n\n ") == []
    assert split_solution("a. b.", split=". ") == ["a", "b."]


@pytest.mark.parametrize(
    "text, reasoning, lead_in, answer, rule",
    [
        ("2 + 2 = 4\nso \\boxed{4}. Done", "2 + 2 = 4\nso ", "\\boxed{", "4", "boxed"),
        ("a \\fbox {x^{2}} b", "a ", "\\fbox {", "x^{2}", "boxed"),
        ("step\n\n# Answer\n\n  17\n", "step\n\n", "# Answer\n\n  ", "17", "heading"),
        ("So the final answer is: $5$. ok", "So ", "the final answer is: ", "5", "answer_is"),
    ],
)
def test_locate_final_answer_splits_reasoning_lead_in_and_answer(text, reasoning, lead_in, answer, rule):
    from rewardmodels.answers import locate_final_answer

    located = locate_final_answer(text)
    assert (located.answer, located.rule) == (answer, rule) and answer == extract_final_answer(text)
    assert text[: located.start] == reasoning and text[located.start : located.content_start] == lead_in
