"""Verification-chain synthesis: the four filters against gold labels (with the "up to the first wrong step"
rule), ThinkPRM's label fix, verdict count and <think> choice, the teacher cache (a second run makes no teacher
call), the HTTP teacher against a loopback server, and the clearly-labelled templated mode."""

from __future__ import annotations

import json

import pytest

from rewardmodels.data_builders import verification_cots as vc
from rewardmodels.data_builders.cli import main as build_main
from rewardmodels.sampling import SampleCache, Sampler, SamplingParams
from rewardmodels.verification import load_format
from tests.openai_stub import StubServer, chat_reply

FMT = load_format()
LABELS = [True, False, True]  # the first wrong step is step 2; step 3's label is not checked
GOOD = (
    "\nStep 1: fine. The step is \\boxed{\\text{correct}}\nStep 2: 2 + 2 is not 5. The step is \\boxed{incorrect}"
    "\nStep 3: it uses step 2. The step is \\boxed{correct}\nSo the answer is wrong.\nIs the solution correct? No"
)


def words(text: str) -> int:
    return len(text.split())


def test_a_chain_matching_up_to_the_first_wrong_step_is_kept_cut_and_given_the_gold_decision():
    failed, chain = vc.judge_chain(FMT, GOOD, LABELS, words, 4096)
    assert failed is None
    assert chain == (
        "\nStep 1: fine. The step is \\boxed{correct}\nStep 2: 2 + 2 is not 5. The step is \\boxed{incorrect}"
        "\nStep 3: it uses step 2. The step is \\boxed{correct}\nIs the solution correct? No"
    )
    no_decision = GOOD.rsplit("\n", 1)[0]  # the teacher never decides: the gold decision is written
    assert vc.judge_chain(FMT, no_decision, LABELS, words, 4096) == (None, chain)


@pytest.mark.parametrize(
    "chain, labels, reason",
    [
        (GOOD.replace("\\boxed{incorrect}", "no verdict"), LABELS, "malformed"),
        (GOOD.replace("Step 3", "Step 4"), LABELS, "malformed"),  # a verdict for a step that does not exist
        (GOOD.replace("\\boxed{incorrect}", "\\boxed{correct}"), LABELS, "disagreeing"),  # missed the error
        (
            GOOD.replace(
                "Step 1: fine. The step is \\boxed{\\text{correct}}", "Step 1: The step is \\boxed{incorrect}"
            ),
            LABELS,
            "disagreeing",
        ),  # fmt: skip
        # the teacher's own decision is wrong: ThinkPRM never reads it (default changed in issue 23; the old
        # filter is --check-decision, tested below)
        (GOOD.replace("correct? No", "correct? Yes"), LABELS, None),
        (GOOD, [True, True, True], "disagreeing"),
        (GOOD, [True, False, None], None),  # unknown labels are not checked
    ],
)
def test_filters_against_gold_labels(chain, labels, reason):
    assert vc.judge_chain(FMT, chain, labels, words, 4096)[0] == reason


def test_check_decision_keeps_the_old_decision_filter():
    wrong_decision = GOOD.replace("correct? No", "correct? Yes")
    assert vc.judge_chain(FMT, wrong_decision, LABELS, words, 4096, check_decision=True)[0] == "disagreeing"
    assert vc.judge_chain(FMT, GOOD, LABELS, words, 4096, check_decision=True)[0] is None


def test_too_long_chains_are_filtered():
    n = words(vc.judge_chain(FMT, GOOD, LABELS, words, 4096)[1])
    assert vc.judge_chain(FMT, GOOD, LABELS, words, n)[0] is None
    assert vc.judge_chain(FMT, GOOD, LABELS, words, n - 1)[0] == "too_long"


def test_balance_caps_the_larger_outcome():
    rows = [{"solution_correct": c, "i": i} for i, c in enumerate([True, True, True, False])]
    kept, dropped, counts = vc.balance(rows, 1.0, seed=0)
    assert dropped == 2 and counts == {"correct": 1, "incorrect": 1, "balanced": True}
    assert [r["i"] for r in kept][-1] == 3  # order kept
    assert vc.balance(rows, 2.0)[2] == {"correct": 2, "incorrect": 1, "balanced": True}
    only_correct = rows[:3]
    assert vc.balance(only_correct, 1.0)[1:] == (0, {"correct": 3, "incorrect": 0, "balanced": False})


class CountingTeacher:
    """Replies with a fixed chain per prompt position; counts the samples it is asked for."""

    fingerprint = "counting-teacher"

    def __init__(self, replies: list[str]):
        self.replies, self.asked = replies, 0

    def build_prompt(self, problem, prefix, params):
        raise AssertionError("the builder renders its own prompts")

    def generate(self, prompts, params, seeds):
        self.asked += len(prompts)
        return [self.replies[i % len(self.replies)] for i in range(len(prompts))]


STEPWISE = [
    {"prompt": "p0", "completions": ["a", "b", "c"], "labels": LABELS, "id": "r0"},
    {"prompt": "p1", "completions": ["a", "b", "c"], "labels": [True, True, True], "id": "r1"},
]


def test_a_second_run_makes_no_teacher_calls(tmp_path):
    correct_chain = GOOD.replace("\\boxed{incorrect}", "\\boxed{correct}").replace("? No", "? Yes")
    for run in range(2):
        teacher = CountingTeacher([GOOD, correct_chain, "Step 1: hmm"])
        cache = SampleCache(tmp_path / "teacher.sqlite")
        sampler = Sampler(teacher, cache, SamplingParams(max_new_tokens=16))
        rows, stats = vc.synthesize(STEPWISE, sampler, FMT, 3, words, batch_rows=1)
        cache.close()
        assert teacher.asked == (6 if run == 0 else 0)
        assert (stats.sampled, stats.malformed, stats.disagreeing, stats.kept_before_balance) == (6, 2, 2, 2)
        # r0's labels [T, F, T] are fixed to [T, T, T] (ThinkPRM's fix, default since issue 23): the chain
        # that finds no error is the one kept for it
        assert [(r["id"], r["solution_correct"], r["source"]) for r in rows] == [
            ("r0", True, "teacher"),
            ("r1", True, "teacher"),
        ]
        assert rows[0]["labels"] == [True, True, True] and rows[0]["gold_labels"] == LABELS
        assert "gold_labels" not in rows[1] and stats.labels_fixed == 1


def write_rows(path, rows) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_the_http_teacher_runs_against_a_loopback_server(tmp_path, tiny_llama):
    rows = write_rows(tmp_path / "rows.jsonl", STEPWISE)
    correct_chain = GOOD.replace("\\boxed{incorrect}", "\\boxed{correct}")
    replies = [(200, chat_reply(GOOD, "Step 1: no")), (200, chat_reply(correct_chain, correct_chain))]
    out = tmp_path / "chains.jsonl"
    args = ["verification-cots", "--rows", rows, "--output", str(out), "--chains", "2", "--tokenizer",
            str(tiny_llama), "--cache", str(tmp_path / "c.sqlite")]  # fmt: skip
    with StubServer(replies) as stub:
        assert build_main([*args, "--endpoint", stub.url, "--endpoint-model", "teacher"]) == 0
    # one chat request per row (n = 2), continuing the assistant turn opened with "Let's verify step by step:"
    assert [r[2]["n"] for r in stub.requests] == [2, 2]
    body = stub.requests[0][2]
    assert body["continue_final_message"] is True and body["messages"][1]["content"] == FMT.chain_opener
    kept = [json.loads(line) for line in out.read_text().splitlines()]
    stats = json.loads((tmp_path / "chains.jsonl.stats.json").read_text())
    # row 0 (labels fixed to all correct): GOOD disagrees, "Step 1: no" is malformed; row 1: every step judged
    # correct, kept whatever the teacher's own decision says (issue 23: both were (4, 1, 2), 1 kept before)
    assert (stats["sampled"], stats["malformed"], stats["disagreeing"], stats["labels_fixed"]) == (4, 1, 1, 1)
    assert stats["kept"] == len(kept) == 2 and stats["balance"]["balanced"] is False
    assert kept[0]["generator"].endswith("#teacher")
    assert kept[0]["chain"].endswith("\\boxed{correct}\nIs the solution correct? Yes")  # the gold decision
    assert load_format(str(out) + ".format.json") == FMT  # the format used, for the SFT


def test_templated_mode_is_labelled_and_parses_back(tmp_path, tiny_llama):
    out = tmp_path / "templated.jsonl"
    code = build_main(["verification-cots", "--rows", "synthetic:n=20,seed=0", "--mode", "templated",
                       "--output", str(out), "--tokenizer", str(tiny_llama)])  # fmt: skip
    assert code == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    stats = json.loads((tmp_path / "templated.jsonl.stats.json").read_text())
    assert stats["mode"] == "templated" and "not sampled from a teacher" in stats["note"]
    assert {r["source"] for r in rows} == {"templated"} and stats["balance"]["balanced"]
    assert stats["balance"]["correct"] == stats["balance"]["incorrect"] == len(rows) // 2
    for r in rows:
        failed, chain = vc.judge_chain(FMT, r["chain"], r["labels"], words, 4096)
        assert failed is None and chain == r["chain"]


# ---- ThinkPRM's verdict count, label fix and <think> choice (issue 23) -----------------------------------

UP_TO_ERROR = (
    "\nStep 1: ok. The step is \\boxed{correct}\nStep 2: 2 + 2 is not 5. The step is \\boxed{incorrect}"
)


@pytest.mark.parametrize(
    "chain, labels, reason",
    [
        # prm_dataset.py:528: as many verdicts as labels up to the first error (2 here), or as steps
        (UP_TO_ERROR, [True, False, False], None),
        (UP_TO_ERROR + "\nStep 3: follows. The step is \\boxed{incorrect}", [True, False, False], None),
        (
            UP_TO_ERROR + "\nStep 3: x. The step is \\boxed{incorrect}",
            [True, False, False, False],
            "malformed",
        ),
        (UP_TO_ERROR, [True, False], None),  # exactly the steps
        (UP_TO_ERROR, [True, True, False], "malformed"),  # stops before the first error
        (UP_TO_ERROR.split("\nStep 2")[0], [True, True], "malformed"),  # a correct solution: every step
        (
            UP_TO_ERROR.replace("Step 1: ok. The step is \\boxed{correct}", "Step 1: ok."),
            [True, False],
            "malformed",
        ),
    ],
)
def test_a_chain_may_stop_at_the_first_error(chain, labels, reason):
    assert vc.judge_chain(FMT, chain, labels, words, 4096)[0] == reason


def test_a_chain_stopping_at_the_first_error_is_kept_and_closed_with_the_gold_decision():
    failed, chain = vc.judge_chain(FMT, UP_TO_ERROR + "\nSo it is wrong.", [True, False, False], words, 4096)
    assert failed is None and chain == UP_TO_ERROR + "\nIs the solution correct? No"
    teacher = CountingTeacher([UP_TO_ERROR])
    rows = [{"prompt": "p", "completions": ["a", "b", "c"], "labels": [True, False, None], "id": "r"}]
    sampler = Sampler(teacher, SampleCache(":memory:"), SamplingParams(max_new_tokens=16))
    kept, stats = vc.synthesize(rows, sampler, FMT, 1, words)
    assert len(kept) == 1 and stats.stopped_at_first_error == 1 and stats.labels_fixed == 0


def test_no_fix_labels_judges_against_the_labels_as_given():
    teacher = CountingTeacher([GOOD])
    sampler = Sampler(teacher, SampleCache(":memory:"), SamplingParams(max_new_tokens=16))
    fixed, stats = vc.synthesize(STEPWISE[:1], sampler, FMT, 1, words)
    assert fixed == [] and stats.disagreeing == 1 and stats.labels_fixed == 1  # GOOD flags step 2
    given, stats = vc.synthesize(STEPWISE[:1], sampler, FMT, 1, words, fix_labels=False)
    assert len(given) == 1 and given[0]["labels"] == LABELS and not given[0]["solution_correct"]
    assert stats.labels_fixed == 0 and "gold_labels" not in given[0]


def test_reference_format_wraps_in_think_when_the_tokenizer_has_the_token():
    from tests.tiny import build_tokenizer

    tokenizer = build_tokenizer()  # its own: the session's tiny_tokenizer must not change
    assert vc.reference_format(tokenizer) == FMT  # no '<think>' token (SmolLM2 has none either)
    tokenizer.add_tokens(["<think>", "</think>"])
    think = vc.reference_format(tokenizer)
    assert think.name == "thinkprm_think" and think.think_open == "<think>\n"
    # a chat template that opens the thinking itself (R1-Distill-Qwen): only the closing tag is written
    tokenizer.chat_template = tokenizer.chat_template.replace(
        "<|im_start|>assistant\n{% endif %}", "<|im_start|>assistant\n<think>\n{% endif %}"
    )
    opened = vc.reference_format(tokenizer)
    assert opened.name == "thinkprm_think_close" and (opened.think_open, opened.think_close) == (
        "",
        "\n</think>",
    )


def test_templated_chains_in_the_think_format_through_the_cli(tmp_path, tiny_llama):
    out = tmp_path / "think.jsonl"
    assert build_main(["verification-cots", "--rows", "synthetic:n=4,seed=0", "--mode", "templated",
                       "--format", "thinkprm_think", "--output", str(out), "--tokenizer", str(tiny_llama)]) == 0  # fmt: skip
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    think = load_format(str(out) + ".format.json")
    assert think.name == "thinkprm_think" and {r["format"] for r in rows} == {"thinkprm_think"}
    for r in rows:
        assert "\n</think>\nIs the solution correct? " in r["chain"]
        assert vc.judge_chain(think, r["chain"], r["labels"], words, 4096) == (None, r["chain"])
