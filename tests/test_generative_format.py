"""The verification format: rendering the verifier's prompt and templated chains, and parsing hand-written
chains (well formed, missing verdicts, extra steps, a verdict for a step that does not exist,
\\boxed{\\text{correct}}, a chain cut off mid-step), the filter against gold labels, and the template file."""

import json

import pytest

from rewardmodels.verification import (
    VerificationFormat,
    chain_body,
    close_chain,
    cut_after_last_verdict,
    decision_line,
    first_wrong_step,
    fix_step_labels,
    load_format,
    normalise_chain,
    parse_chain,
    render_user_message,
    templated_chain,
    verdicts_agree,
    verifier_prompt,
)

FMT = load_format()

WELL_FORMED = """
Step 1: The equation 2x = 4 is set up correctly. The step is \\boxed{correct}
Step 2: Dividing by 2 gives x = 2. The step is \\boxed{correct}
Step 3: 2 + 3 is 5, not 6. The step is \\boxed{incorrect}
Is the solution correct? No"""


def test_the_default_template_is_thinkprms_format():
    assert FMT.name == "thinkprm"
    message = render_user_message(FMT, " What is x? ", ["2x = 4", " x = 2 "])
    assert message == (
        "You are given a math problem and a proposed step-by-step solution:\n\n[Math Problem]\n\n"
        "What is x?\n\n[Solution]\n\nStep 1: 2x = 4\nStep 2: x = 2\n\nReview and critique each step in "
        "the proposed solution to determine whether each step is correct. If the solution is incomplete, "
        "only verify the provided steps."
    )
    prompt = verifier_prompt(FMT, "What is x?", ["x = 2"], continuation=" more")
    assert prompt[1] == {"role": "assistant", "content": "Let's verify step by step: more"}
    assert decision_line(FMT, True) == "Is the solution correct? Yes"
    assert FMT.trigger_phrases == ("Let me double check", "Let's verify again", "Did I miss something?")


def test_a_problem_holding_a_placeholder_is_not_expanded_twice():
    message = render_user_message(FMT, "Find {solution}", ["a"])
    assert "Find {solution}" in message and "Step 1: a" in message


def test_well_formed_chain():
    parsed = parse_chain(FMT, WELL_FORMED, 3)
    assert parsed.verdicts == [True, True, False] and parsed.complete
    assert parsed.decision is False and parsed.extra_steps == []
    # verdict_at points just after "\boxed{": the label's first token is predicted there
    at = parsed.verdict_at[2]
    assert WELL_FORMED[at - len("\\boxed{") : at] == "\\boxed{" and WELL_FORMED[at:].startswith("incorrect}")
    assert WELL_FORMED[parsed.decision_at :].startswith("Is the solution correct?")


def test_missing_verdict_is_none_and_the_chain_incomplete():
    chain = "Step 1: fine. The step is \\boxed{correct}\nStep 2: I am not sure.\nIs the solution correct? Yes"
    parsed = parse_chain(FMT, chain, 2)
    assert parsed.verdicts == [True, None] and not parsed.complete and parsed.decision is True


def test_extra_steps_and_a_step_that_does_not_exist_are_reported_not_counted():
    chain = (
        "Step 1: ok. The step is \\boxed{correct}\nStep 2: ok. The step is \\boxed{correct}\n"
        "Step 3: an extra step. The step is \\boxed{incorrect}\n"
        "Step 0: nothing. The step is \\boxed{incorrect}\n"
        "Is the solution correct? yes"
    )
    parsed = parse_chain(FMT, chain, 2)
    assert parsed.verdicts == [True, True] and parsed.extra_steps == [3, 0]
    assert parsed.decision is True  # the answer is read in either case


def test_text_wrapped_verdicts_are_normalised():
    chain = (
        "Step 1: ok. The step is \\boxed{\\text{correct}}\n"
        "Step 2: no. The step is \\boxed{ \\text{ incorrect } }"
    )
    normal = normalise_chain(FMT, chain)
    assert normal == "Step 1: ok. The step is \\boxed{correct}\nStep 2: no. The step is \\boxed{incorrect}"
    assert parse_chain(FMT, normal, 2).verdicts == [True, False]
    assert parse_chain(FMT, chain, 2).verdicts == [None, None]  # unnormalised, nothing is read


def test_a_chain_cut_off_mid_step():
    chain = "Step 1: ok. The step is \\boxed{correct}\nStep 2: Now 3 times 4 is"
    parsed = parse_chain(FMT, chain, 3)
    assert parsed.verdicts == [True, None, None] and parsed.decision is None and parsed.decision_at is None


def test_a_later_section_for_the_same_step_replaces_the_earlier_verdict():
    chain = (
        "Step 1: ok. The step is \\boxed{correct}\nLet me double check\nStep 1: wait, no. "
        "The step is \\boxed{incorrect}\nStep 1: I lost my"
    )
    assert parse_chain(FMT, chain, 1).verdicts == [False]


def test_verdicts_after_the_decision_question_are_ignored():
    chain = (
        "Step 1: ok. The step is \\boxed{correct}\nIs the solution correct? Yes\nStep 1: \\boxed{incorrect}"
    )
    assert parse_chain(FMT, chain, 1).verdicts == [True]
    assert cut_after_last_verdict(FMT, chain) == (
        "Step 1: ok. The step is \\boxed{correct}\nIs the solution correct? Yes"
    )
    rambling = "Step 1: ok. The step is \\boxed{correct} and so on and on"
    assert cut_after_last_verdict(FMT, rambling) == "Step 1: ok. The step is \\boxed{correct}"


def test_filter_checks_up_to_and_including_the_first_wrong_step():
    labels = [True, False, True, None]
    assert first_wrong_step(labels) == 1
    assert verdicts_agree([True, False, False, None], labels)  # after the first wrong step: not checked
    assert not verdicts_agree([True, True, True, True], labels)  # the wrong step judged correct
    assert not verdicts_agree([False, False, True, True], labels)  # a correct step judged incorrect
    assert not verdicts_agree([True, None, True, True], labels)  # no verdict where one is checked
    assert verdicts_agree([True, None], [True, None])  # an unknown label is never checked
    assert first_wrong_step([1.0, 0.75, 0.25]) == 2 and first_wrong_step([None, True]) == -1


def test_templated_chain_round_trips_through_the_parser():
    chain = templated_chain(FMT, [True, False, True])
    assert chain.startswith("\nStep 1: ")
    parsed = parse_chain(FMT, chain, 3)
    assert parsed.verdicts == [True, False, False] and parsed.decision is False
    assert "follows an incorrect step" in chain.splitlines()[3]
    assert parse_chain(FMT, templated_chain(FMT, [True, True]), 2).decision is True
    with pytest.raises(ValueError, match="every label up to the first wrong step"):
        templated_chain(FMT, [None, False])


def test_a_swapped_template_changes_rendering_and_parsing(tmp_path):
    data = {**FMT.to_dict(), "name": "brackets", "chain_step": "[{i}] ", "verdict_open": "<<",
            "verdict_close": ">>", "verdict_labels": {"correct": "ok", "incorrect": "bad"},
            "decision_question": "Verdict:", "decision_answers": {"yes": "Right", "no": "Wrong"}}  # fmt: skip
    path = tmp_path / "format.json"
    path.write_text(json.dumps(data))
    fmt = load_format(path)
    chain = templated_chain(fmt, [True, False])
    assert chain == (
        "\n[1] This step follows from the problem and the steps before it. The step is <<ok>>"
        "\n[2] This step contains a mistake. The step is <<bad>>\nVerdict: Wrong"
    )
    parsed = parse_chain(fmt, chain, 2)
    assert parsed.verdicts == [True, False] and parsed.decision is False


def test_bad_templates_name_the_field(tmp_path):
    base = FMT.to_dict()
    with pytest.raises(ValueError, match="placeholder \\{solution\\}"):
        VerificationFormat.from_dict({**base, "user_message": "{problem}"})
    with pytest.raises(ValueError, match="missing field\\(s\\) chain_opener"):
        VerificationFormat.from_dict({k: v for k, v in base.items() if k != "chain_opener"})
    with pytest.raises(ValueError, match="unknown field\\(s\\) colour"):
        VerificationFormat.from_dict({**base, "colour": "red"})
    with pytest.raises(ValueError, match="two different texts"):
        VerificationFormat.from_dict({**base, "decision_answers": {"yes": "A", "no": "A"}})
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_format(bad)


# ---- ThinkPRM's label fix and <think> wrapping (issue 23) --------------------------------------------------


@pytest.mark.parametrize(
    "labels, fixed",
    [
        # mukhal/ThinkPRM prm_dataset.py:198-212 on '+'/'-': every label before the last '+' becomes '+'
        ([True, False, True, False], [True, True, True, False]),
        ([False, False], [False, False]),  # no '+': unchanged
        ([True, True, False], [True, True, False]),
        ([False, True, None], [True, True, None]),  # from the last correct step on: as given
        (
            [True, None, True],
            [True, True, True],
        ),  # the reference reads an unlabelled step as '-', then fixes it
        ([0.2, 0.9, 0.1], [True, 0.9, 0.1]),  # soft labels: correct is >= 0.5
        ([], []),
    ],
)
def test_fix_step_labels_by_hand(labels, fixed):
    assert fix_step_labels(labels) == fixed


THINK = load_format("thinkprm_think")


def test_the_think_template_wraps_the_chain_as_thinkprm_trains_it():
    assert THINK.name == "thinkprm_think" and (THINK.think_open, THINK.think_close) == (
        "<think>\n",
        "\n</think>",
    )
    assert {k: v for k, v in THINK.to_dict().items() if not k.startswith(("think", "name", "desc"))} == {
        k: v for k, v in FMT.to_dict().items() if not k.startswith(("think", "name", "desc"))
    }
    assert (FMT.think_open, FMT.think_close) == ("", "")  # the default format does not wrap
    opener = verifier_prompt(THINK, "What is x?", ["x = 2"])[1]["content"]
    chain = templated_chain(THINK, [True, False])
    generation = (
        "Step 1: This step follows from the problem and the steps before it. The step is \\boxed{correct}\n"
        "Step 2: This step contains a mistake. The step is \\boxed{incorrect}"
    )
    # prm_dataset.py:568-571 and helper.py:58-59: "<think>\nLet's verify step by step:\n" + generation +
    # "\n</think>" + "\nIs the solution correct? No"
    assert opener + chain == (
        "<think>\nLet's verify step by step:\n" + generation + "\n</think>\nIs the solution correct? No"
    )
    parsed = parse_chain(THINK, chain, 2)
    assert parsed.verdicts == [True, False] and parsed.decision is False
    assert close_chain(FMT, "\nbody  ", True) == "\nbody\nIs the solution correct? Yes"


def test_a_chain_ends_at_its_decision_question_or_its_closing_think_tag():
    assert chain_body(THINK, "a</think>b Is the solution correct? Yes") == ("a", True)
    assert chain_body(THINK, "a Is the solution correct? b</think>") == ("a ", True)
    assert chain_body(THINK, "a b") == ("a b", False)
    assert chain_body(FMT, "a</think>b") == ("a</think>b", False)  # no think_close: the tag is text
    late = "\nStep 1: ok. The step is \\boxed{correct}\n</think>\nStep 2: no. The step is \\boxed{incorrect}"
    assert parse_chain(THINK, late, 2).verdicts == [True, None]  # nothing after the thinking counts


def test_load_format_takes_a_template_name_or_a_path(tmp_path, monkeypatch):
    assert load_format("thinkprm") == FMT and load_format("thinkprm_think") == THINK
    monkeypatch.chdir(tmp_path)
    (tmp_path / "thinkprm_think").write_text(json.dumps({**FMT.to_dict(), "name": "local"}))
    assert load_format("thinkprm_think").name == "local"  # an existing file wins over a template name
    with pytest.raises(FileNotFoundError):
        load_format("no_such_template")
