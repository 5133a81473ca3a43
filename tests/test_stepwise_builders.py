"""Stepwise builders on fixtures written in each source's documented schema, and stepwise row validation."""

import json

import pytest

from rewardmodels.data_builders import stepwise
from rewardmodels.data_builders.schema import DataValidationError
from rewardmodels.data_builders.sources import load_rows

PHASE1 = {
    "labeler": "l1",
    "generation": None,
    "is_quality_control_question": False,
    "is_initial_screening_question": False,
    "question": {"problem": "What is 2+3+4?", "ground_truth_answer": "9"},
    "label": {
        "steps": [
            {
                "completions": [
                    {"text": "2+3=5.", "rating": 1, "flagged": None},
                    {"text": "2+3=6.", "rating": -1, "flagged": False},
                    {"text": "Let us add.", "rating": 0, "flagged": False},
                ],
                "human_completion": None,
                "chosen_completion": 0,
            },
            {
                "completions": [{"text": "5+4=10.", "rating": -1, "flagged": None}],
                "human_completion": {"text": "5+4=9.", "rating": None, "source": "human", "flagged": False},
                "chosen_completion": None,
            },
            {
                "completions": [{"text": "# Answer\n\n9", "rating": 0, "flagged": None}],
                "human_completion": None,
                "chosen_completion": 0,
            },
        ],
        "total_time": 1000,
        "finish_reason": "solution",
    },
}

PHASE2 = {
    "labeler": "l2",
    "generation": 9,
    "is_quality_control_question": False,
    "is_initial_screening_question": False,
    "question": {"problem": "What is 6*7?", "ground_truth_answer": "42", "pre_generated_steps": ["a", "b"]},
    "label": {
        "steps": [
            {
                "completions": [{"text": "6*7 is 6 sevens.", "rating": 0, "flagged": None}],
                "human_completion": None,
                "chosen_completion": 0,
            },
            {
                "completions": [{"text": "That is 48.", "rating": -1, "flagged": None}],
                "human_completion": None,
                "chosen_completion": None,
            },
        ],
        "total_time": 500,
        "finish_reason": "found_error",
    },
}

BAD = {**PHASE2, "label": {**PHASE2["label"], "finish_reason": "bad_problem"}}


@pytest.fixture
def prm800k_file(tmp_path):
    path = tmp_path / "phase_mixed_train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in (PHASE1, PHASE2, BAD)))
    return path


def by_steps(rows):
    return {tuple(r["completions"]): r["labels"] for r in rows}


def test_prm800k_official_neutral_positive(prm800k_file):
    rows, skipped = stepwise.build_prm800k(str(prm800k_file))
    assert skipped == {"bad_problem": 1}
    assert by_steps(rows) == {
        # phase 1: the two unchosen first steps end solutions of their own
        ("2+3=6.",): [False],
        ("Let us add.",): [True],
        # the model step rated -1 at step 2 (a human step was chosen instead)
        ("2+3=5.", "5+4=10."): [True, False],
        # the chosen path: the human step counts as correct, the neutral answer step as positive
        ("2+3=5.", "5+4=9.", "# Answer\n\n9"): [True, True, True],
        # phase 2: the trajectory ends on the step rated -1
        ("6*7 is 6 sevens.", "That is 48."): [True, False],
    }


def test_prm800k_official_neutral_negative_and_no_alternatives(prm800k_file):
    rows, _ = stepwise.build_prm800k(str(prm800k_file), neutral="negative")
    labels = by_steps(rows)
    assert labels[("Let us add.",)] == [False]
    assert labels[("2+3=5.", "5+4=9.", "# Answer\n\n9")] == [True, True, False]
    assert labels[("6*7 is 6 sevens.", "That is 48.")] == [False, False]
    rows, _ = stepwise.build_prm800k(str(prm800k_file), alternatives=False)
    assert by_steps(rows) == {
        ("2+3=5.", "5+4=9.", "# Answer\n\n9"): [True, True, True],
        ("6*7 is 6 sevens.", "That is 48."): [True, False],
    }


def test_prm800k_spec_options_through_load_rows(prm800k_file):
    rows, report = load_rows(f"prm800k:{prm800k_file}?neutral=negative,alternatives=false", "stepwise")
    assert len(rows) == 2 and report.dropped == {"bad_problem": 1}
    with pytest.raises(ValueError, match="builds stepwise rows"):
        load_rows(f"prm800k:{prm800k_file}", "preference")


def critic_rows():
    """Two trajectories in the stepwise-critic layout: one row per rated step, with the earlier steps."""
    q1, q2 = "What is 1+1?", "What is 3*3?"

    def r(q, ctx, step, rating, preferred=False, human=False):
        return {
            "instruction": q,
            "responses": ctx,
            "next_response": step,
            "answer": None,
            "is_human_response": human,
            "is_solution": False,
            "is_preferred_response": preferred,
            "rating": rating,
        }

    return [
        r(q1, [], "1+1 is 2.", 1.0, preferred=True),
        r(q1, [], "1+1 is 3.", -1.0),
        r(q1, [], "Hmm.", None),  # unrated: no label, no solution
        r(q1, ["1+1 is 2."], "# Answer\n\n2", 0.0, preferred=True),
        r(q1, ["1+1 is 2."], "# Answer\n\n2", 0.0),  # the same step rated twice: one solution only
        r(q2, [], "3*3 is 6.", -1.0),
        r(q2, [], "I give up", None, preferred=True, human=True),
    ]


def test_prm800k_stepwise_critic_reassembly(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "critic.parquet"
    pq.write_table(pa.Table.from_pylist(critic_rows()), path)
    rows, skipped = stepwise.build_prm800k_stepwise(str(path))
    assert by_steps(rows) == {
        ("1+1 is 3.",): [False],
        ("1+1 is 2.", "# Answer\n\n2"): [True, True],
        ("3*3 is 6.",): [False],
        ("I give up",): [True],  # a human-written step counts as correct
    }
    assert skipped["unrated step row"] == 1
    assert len({r["id"] for r in rows}) == len(rows)
    rows, _ = stepwise.build_prm800k_stepwise(str(path), neutral="negative", alternatives=False)
    assert by_steps(rows) == {("1+1 is 2.", "# Answer\n\n2"): [True, False], ("I give up",): [True]}


def test_math_shepherd_parsing():
    text = "Tom has 3 apples and buys 2. How many? Step 1: 3 + 2 = 5 ки\nStep 2: He has 6 apples. The answer is: 6 ки"
    label = "Tom has 3 apples and buys 2. How many? Step 1: 3 + 2 = 5 +\nStep 2: He has 6 apples. The answer is: 6 -"
    prompt, steps, labels = stepwise.parse_math_shepherd(text, label)
    assert prompt == "Tom has 3 apples and buys 2. How many?"
    assert steps == ["3 + 2 = 5", "He has 6 apples. The answer is: 6"]
    assert labels == [True, False]
    _, raw_steps, _ = stepwise.parse_math_shepherd(text, label, strip_step_numbers=False)
    assert raw_steps[1].startswith("Step 2:")
    with pytest.raises(ValueError, match="differs from the input"):
        stepwise.parse_math_shepherd(text, label.replace("3 + 2", "3 + 9"))


def test_math_shepherd_file_errors_name_the_row(tmp_path):
    good = {"input": "Q? Step 1: a ки", "label": "Q? Step 1: a +", "task": "GSM8K"}
    bad = {"input": "Q? Step 1: a ки", "label": "Q? Step 1: a ?"}
    path = tmp_path / "shepherd.jsonl"
    path.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(ValueError, match=r"line 2, field 'label'"):
        stepwise.build_math_shepherd(str(path))
    path.write_text(json.dumps(good) + "\n")
    rows, _ = load_rows(f"math_shepherd:{path}", "stepwise")
    assert rows[0]["completions"] == ["a"] and rows[0]["labels"] == [True] and rows[0]["task"] == "GSM8K"


def test_processbench_labels_never_mark_steps_after_the_error_correct(tmp_path):
    assert stepwise.processbench_step_labels(-1, 3) == [True, True, True]
    assert stepwise.processbench_step_labels(0, 3) == [False]
    assert stepwise.processbench_step_labels(1, 4, "unlabelled") == [True, False, None, None]
    with pytest.raises(ValueError, match="outside"):
        stepwise.processbench_step_labels(3, 3)
    rows = [
        {
            "id": "g-0",
            "generator": "m",
            "problem": "P0",
            "steps": ["a", "b", "c"],
            "final_answer_correct": False,
            "label": 1,
        },
        {
            "id": "g-1",
            "generator": "m",
            "problem": "P1",
            "steps": ["a", "b"],
            "final_answer_correct": True,
            "label": -1,
        },
    ]
    path = tmp_path / "pb.json"
    path.write_text(json.dumps(rows))
    out, _ = load_rows(f"processbench:{path}", "stepwise")
    assert [(r["completions"], r["labels"]) for r in out] == [
        (["a", "b"], [True, False]),
        (["a", "b"], [True, True]),
    ]
    out, _ = load_rows(f"processbench:{path}?after_error=unlabelled", "stepwise")
    assert out[0]["completions"] == ["a", "b", "c"] and out[0]["labels"] == [True, False, None]


def test_stepwise_validation_names_row_and_field(tmp_path):
    rows = [
        {"prompt": "p", "completions": ["a", "b"], "labels": [True, 0.5]},
        {"prompt": "p", "completions": ["a", "b"], "labels": [True]},
        {"prompt": "p", "completions": ["a", " "], "labels": [True, 1.5]},
        {"prompt": "p", "completions": ["a"], "labels": [None]},
    ]
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(DataValidationError) as e:
        load_rows(str(path), "stepwise")
    text = str(e.value)
    assert "line 2, field 'labels': length mismatch" in text
    assert "line 3, field 'completions[1]': empty step" in text
    assert "line 3, field 'labels[1]': bad label" in text
    assert "line 4, field 'labels': no labelled steps" in text
    kept, report = load_rows(str(path), "stepwise", drop_invalid=True)
    assert kept == rows[:1] and report.kept == 1 and report.total == 4


def test_outcome_validation(tmp_path):
    path = tmp_path / "o.jsonl"
    path.write_text(
        json.dumps({"prompt": "p", "completion": "c", "label": 0.3})
        + "\n"
        + json.dumps({"prompt": "p", "completion": "c", "label": 2})
        + "\n"
    )
    with pytest.raises(DataValidationError, match=r"line 2, field 'label'"):
        load_rows(str(path), "outcome")


def test_synthetic_stepwise_rows_validate_and_mark_the_first_error():
    rows, report = load_rows("synthetic:n=50,seed=3", "stepwise")
    assert report.kept == 50
    for r in rows:
        fe = r["first_error"]
        assert r["labels"] == [fe == -1 or i < fe for i in range(len(r["completions"]))]


def test_spec_options_limit_and_sample(tmp_path):
    rows = [
        {"id": f"g-{i}", "problem": f"P{i}", "steps": ["a", "b"], "label": -1 if i % 2 else 0}
        for i in range(10)
    ]
    path = tmp_path / "pb.json"
    path.write_text(json.dumps(rows))
    first, _ = load_rows(f"processbench:{path}?limit=3", "stepwise")
    assert [r["id"] for r in first] == ["g-0", "g-1", "g-2"]
    picked, _ = load_rows(f"processbench:{path}?sample=4,seed=7", "stepwise")
    again, _ = load_rows(f"processbench:{path}?sample=4,seed=7", "stepwise")
    ids = [r["id"] for r in picked]
    assert len(ids) == 4 and ids == [r["id"] for r in again]
    assert ids == sorted(ids, key=lambda x: int(x[2:]))  # original order is kept
    with pytest.raises(ValueError, match="key=value"):
        stepwise.split_spec("x.json?limit")
