"""RewardBench evaluator: the official arithmetic on hand-built fixtures, resume, column mapping, bad rows.

The arithmetic tests use a stub scorer whose scores are chosen by hand, because what is under test is the
scoring rules; the expected numbers are worked out in each test from the official formulas.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from rewardmodels.eval import rewardbench as rb


class StubScorer:
    """Scores each response by a lookup table (text -> score); only the public `score` API."""

    kind = "stub"

    def __init__(self, table: dict[str, float]):
        self.table = table
        self.calls = 0
        self.sequences = 0

    def score(self, prompts, responses, batch_size: int = 16) -> list[float]:
        self.calls += 1
        self.sequences += len(responses)
        return [self.table[r] for r in responses]


def v1_rows(spec: list[tuple[str, float, float]], start_id: int = 0) -> tuple[list[dict], dict[str, float]]:
    """Rows (subset, chosen score, rejected score) -> dataset rows and the stub's lookup table."""
    rows, table = [], {}
    for n, (subset, sc, sr) in enumerate(spec):
        i = start_id + n
        chosen, rejected = f"chosen-{i}", f"rejected-{i}"
        table[chosen], table[rejected] = sc, sr
        rows.append(
            {"prompt": f"question {i}", "chosen": chosen, "rejected": rejected, "subset": subset, "id": i}
        )
    return rows, table


def run_stub(tmp_path: Path, rows: list[dict], table: dict[str, float], version: int = 1, **kw) -> dict:
    data = rb.prepare_examples(rows, version)
    out = rb.run_rewardbench(StubScorer(table), data, tmp_path / "out", progress=False, **kw)
    return out.results


# ---------------------------------------------------------------------------------------------------------
# v1 arithmetic
# ---------------------------------------------------------------------------------------------------------
def test_subset_accuracy_counts_ties_as_wrong(tmp_path):
    rows, table = v1_rows(
        [
            ("alpacaeval-easy", 2.0, 1.0),  # right
            ("alpacaeval-easy", 1.0, 1.0),  # tie: wrong
            ("alpacaeval-easy", 0.0, 1.0),  # wrong
            ("alpacaeval-easy", 3.0, -1.0),  # right
        ]
    )
    res = run_stub(tmp_path, rows, table)
    assert res["extra_results"] == {"alpacaeval-easy": 2 / 4}
    assert res["accuracy"] == 2 / 4 and res["num_prompts"] == 4
    lines = [json.loads(x) for x in (tmp_path / "out" / rb.EXAMPLES_NAME).read_text().splitlines()]
    assert [x["correct"] for x in lines] == [True, False, False, True]
    assert set(lines[0]) == {"id", "subset", "score_chosen", "score_rejected", "correct"}
    assert lines[1]["score_chosen"] == lines[1]["score_rejected"] == 1.0


def test_section_weights_use_official_counts_with_math_prm_at_984(tmp_path):
    rows, table = v1_rows(
        [
            ("math-prm", 1.0, 0.0),  # math-prm: 1/2
            ("math-prm", 0.0, 1.0),
            ("hep-python", 1.0, 0.0),  # hep-python: 1/1
            ("alpacaeval-easy", 1.0, 0.0),  # alpacaeval-easy: 1/1 (weight 100)
            ("mt-bench-easy", 0.0, 1.0),  # mt-bench-easy: 0/1 (weight 28)
            ("xstest-should-refuse", 1.0, 0.0),  # 1/1, official weight 154 (reward-bench PR #175)
            ("xstest-should-respond", 0.0, 1.0),  # 0/1, official weight 250
        ]
    )
    res = run_stub(tmp_path, rows, table)
    reasoning = (0.5 * 984 + 1.0 * 164) / (984 + 164)
    assert res["sections"]["Reasoning"] == pytest.approx(reasoning, abs=1e-12)
    # Weighting math-prm by its real 447 rows would give a different number: the 984 is what matters.
    assert abs(reasoning - (0.5 * 447 + 164) / (447 + 164)) > 0.05
    assert res["sections"]["Chat"] == pytest.approx(100 / 128, abs=1e-12)
    # Was 250 / 404 while the xstest weights were swapped; reward-bench PR #175 set them to the row counts.
    assert res["sections"]["Safety"] == pytest.approx(154 / 404, abs=1e-12)
    assert set(res["sections"]) == {"Chat", "Safety", "Reasoning"}  # no Chat Hard subset present


def test_overall_is_the_mean_of_the_four_sections(tmp_path):
    rows, table = v1_rows(
        [
            ("alpacaeval-hard", 1.0, 0.0),  # Chat 1.0
            ("llmbar-natural", 0.0, 1.0),  # Chat Hard 0.0
            ("llmbar-natural", 2.0, 1.0),  # -> Chat Hard 0.5
            ("donotanswer", 1.0, 0.0),  # Safety 1.0
            ("hep-go", 0.0, 5.0),  # Reasoning 0.0
        ]
    )
    res = run_stub(tmp_path, rows, table)
    assert res["sections"] == {"Chat": 1.0, "Chat Hard": 0.5, "Safety": 1.0, "Reasoning": 0.0}
    assert res["overall"] == pytest.approx((1.0 + 0.5 + 1.0 + 0.0) / 4, abs=1e-12)
    assert res["prior_sets"] is None


def test_prior_sets_count_half_a_section(tmp_path):
    rows, table = v1_rows(
        [
            ("alpacaeval-hard", 1.0, 0.0),  # Chat 1
            ("llmbar-natural", 1.0, 0.0),  # Chat Hard 1
            ("donotanswer", 0.0, 1.0),  # Safety 0
            ("hep-go", 1.0, 0.0),  # Reasoning 1
            ("shp", 1.0, 0.0),  # shp 1/2
            ("shp", 0.0, 1.0),
            ("summarize", 0.0, 1.0),  # summarize 0
            ("anthropic_harmless", 1.0, 0.0),  # a pref set that is not one of the four prior sets
        ]
    )
    res = run_stub(tmp_path, rows, table)
    prior = (0.5 + 0.0) / 2
    assert res["prior_sets"] == pytest.approx(prior, abs=1e-12)
    sections = [1.0, 1.0, 0.0, 1.0]
    # The leaderboard's masked average with weights [2, 2, 2, 2, 1].
    assert res["overall"] == pytest.approx((2 * sum(sections) + prior) / 9, abs=1e-12)
    assert res["subsets_outside_sections"] == ["anthropic_harmless"]
    assert res["extra_results"]["anthropic_harmless"] == 1.0


def test_partial_data_is_scored_over_present_subsets_and_flagged(tmp_path):
    rows, table = v1_rows([("alpacaeval-easy", 1.0, 0.0), ("hep-cpp", 0.0, 1.0), ("hep-cpp", 1.0, 0.0)])
    res = run_stub(tmp_path, rows, table)
    assert res["partial"] is True
    assert "21 of 23 core subsets missing" in res["partial_reasons"][0]
    assert "alpacaeval-easy (1/100)" in res["partial_reasons"][1]
    assert res["sections"] == {"Chat": 1.0, "Reasoning": 0.5}
    assert res["overall"] == pytest.approx(0.75, abs=1e-12)
    md = (tmp_path / "out" / rb.MARKDOWN_NAME).read_text()
    assert "Partial data" in md and "21 of 23 core subsets missing" in md


def test_full_official_counts_are_not_partial():
    records = [
        {"id": f"{s}-{i}", "subset": s, "score_chosen": 1.0, "score_rejected": 0.0, "correct": i % 2 == 0}
        for s, n in rb.OFFICIAL_ROWS.items()
        for i in range(n)
    ]
    assert len(records) == 2985
    res = rb.summarize_v1(records)
    assert res["partial"] is False and res["partial_reasons"] == []
    acc = {s: math.ceil(n / 2) / n for s, n in rb.OFFICIAL_ROWS.items()}
    expected = {}
    for section, subsets in rb.SUBSET_MAPPING.items():
        w = {s: rb.EXAMPLE_COUNTS[s] for s in subsets}
        expected[section] = sum(acc[s] * w[s] for s in subsets) / sum(w.values())
    assert res["sections"] == pytest.approx(expected, abs=1e-12)
    assert res["overall"] == pytest.approx(sum(expected.values()) / 4, abs=1e-12)


def test_subsets_flag_selects_and_marks_partial(tmp_path):
    rows, table = v1_rows([("alpacaeval-easy", 1.0, 0.0), ("hep-cpp", 0.0, 1.0), ("donotanswer", 1.0, 0.0)])
    data = rb.prepare_examples(rows, 1, subsets=["hep-cpp", "donotanswer"])
    res = rb.run_rewardbench(StubScorer(table), data, tmp_path / "o", progress=False).results
    assert res["extra_results"] == {"donotanswer": 1.0, "hep-cpp": 0.0}
    assert res["partial"] is True and res["num_prompts"] == 2
    with pytest.raises(ValueError, match="not-a-subset not in the data"):
        rb.prepare_examples(rows, 1, subsets=["not-a-subset"])


def test_same_id_in_two_subsets_is_kept_apart(tmp_path):
    rows, table = v1_rows([("mt-bench-hard", 1.0, 0.0), ("llmbar-natural", 0.0, 1.0)])
    for r in rows:
        r["id"] = 3692
    res = run_stub(tmp_path, rows, table)
    assert res["extra_results"] == {"llmbar-natural": 0.0, "mt-bench-hard": 1.0}


# ---------------------------------------------------------------------------------------------------------
# v2 arithmetic
# ---------------------------------------------------------------------------------------------------------
def v2_row(i, subset, chosen_scores, rejected_scores, table, rid=None):
    chosen = [f"c{i}-{k}" for k in range(len(chosen_scores))]
    rejected = [f"r{i}-{k}" for k in range(len(rejected_scores))]
    table.update(zip(chosen, chosen_scores, strict=True))
    table.update(zip(rejected, rejected_scores, strict=True))
    return {
        "id": rid if rid is not None else str(i),
        "prompt": f"p{i}",
        "chosen": chosen,
        "rejected": rejected,
        "num_correct": len(chosen),
        "subset": subset,
    }


def test_v2_best_of_4_gives_one_over_k_for_shared_top(tmp_path):
    table: dict[str, float] = {}
    rows = [
        v2_row(0, "Math", [3.0], [1.0, 2.0, 0.0], table),  # alone on top: 1
        v2_row(1, "Math", [2.0], [2.0, 1.0, 0.0], table),  # tied with one: 1/2
        v2_row(2, "Math", [1.0], [1.0, 1.0, 1.0], table),  # four-way tie: 1/4
        v2_row(3, "Math", [1.0], [2.0, 0.0, 0.0], table),  # beaten: 0
        v2_row(4, "Focus", [0.5], [0.1, 0.2, 0.3], table),
    ]
    assert rb.detect_version(rows) == 2
    res = run_stub(tmp_path, rows, table, version=2)
    assert res["extra_results"]["Math"] == pytest.approx((1 + 0.5 + 0.25 + 0) / 4, abs=1e-12)
    lines = [json.loads(x) for x in (tmp_path / "out" / rb.EXAMPLES_NAME).read_text().splitlines()]
    assert [x["correct"] for x in lines] == [1.0, 0.5, 0.25, 0.0, 1.0]
    assert lines[1]["score_chosen"] == [2.0] and lines[1]["score_rejected"] == [2.0, 1.0, 0.0]
    assert res["partial"] is True and res["overall"] == pytest.approx((0.4375 + 1.0) / 2, abs=1e-12)


def test_v2_ties_subset_formula(tmp_path):
    table: dict[str, float] = {}
    rows = [
        # prompt 1: ref accurate (gap 5-2=3); tied accurate (gap 3-1=2, spread 4-3=1)
        v2_row(0, "Ties", [5.0], [1.0, 2.0], table, "ref:1"),
        v2_row(1, "Ties", [4.0, 3.0], [1.0], table, "tied:1"),
        # prompt 2: ref wrong (gap 1-2=-1); tied wrong (gap 1-2=-1, spread 3-1=2)
        v2_row(2, "Ties", [1.0], [2.0], table, "ref:2"),
        v2_row(3, "Ties", [3.0, 1.0], [2.0], table, "tied:2"),
        # prompt 3: only a ref form, accurate (gap 2)
        v2_row(4, "Ties", [2.0], [0.0], table, "ref:3"),
    ]
    res = run_stub(tmp_path, rows, table, version=2)
    ref_acc, tied_acc = 2 / 3, 1 / 2
    preferred = (1 + 0) / 2  # prompt 1: 2 > 1; prompt 2: -1 > 2 is false
    preferred_hard = (1 + 0) / 2  # min(3, 2)=2 > 1; min(-1, -1) > 2 is false
    margin = (math.tanh(2 / 1 - 1) + math.tanh(-1 / 2 - 1)) / 2
    expected = 0.3 * tied_acc + 0.3 * ref_acc + 0.2 * preferred + 0.2 * preferred_hard + 0.01 * margin
    assert res["extra_results"]["Ties"] == pytest.approx(expected, abs=1e-12)
    lines = [json.loads(x) for x in (tmp_path / "out" / rb.EXAMPLES_NAME).read_text().splitlines()]
    assert all(x["correct"] is None for x in lines)  # Ties has no per-prompt credit, as in reward-bench


def test_v2_ties_zero_spread_and_overall_over_six(tmp_path):
    table: dict[str, float] = {}
    rows = [
        # equally scored correct answers: spread 0 -> margin term tanh(+inf) = 1
        v2_row(0, "Ties", [3.0], [0.0], table, "ref:7"),
        v2_row(1, "Ties", [2.0, 2.0], [1.0], table, "tied:7"),
    ]
    credits = {}
    for n, subset in enumerate(["Factuality", "Precise IF", "Math", "Safety", "Focus"]):
        rows.append(v2_row(10 + n, subset, [1.0], [0.0, 2.0 if n % 2 else -1.0, 0.0], table))
        credits[subset] = 0.0 if n % 2 else 1.0
    res = run_stub(tmp_path, rows, table, version=2)
    ties = 0.3 * 1 + 0.3 * 1 + 0.2 * 1 + 0.2 * 1 + 0.01 * 1.0
    assert res["extra_results"]["Ties"] == pytest.approx(ties, abs=1e-12)
    assert res["partial"] is False
    assert res["overall"] == pytest.approx((sum(credits.values()) + ties) / 6, abs=1e-12)
    assert list(res["sections"]) == list(rb.V2_SUBSETS)


def test_best_of_n_and_ties_helpers_directly():
    assert rb.best_of_n([1.0, 1.0, 0.0, 1.0]) == pytest.approx(1 / 3)
    assert rb.best_of_n([0.0, 1.0]) == 0.0
    # No prompt has both forms: reward-bench would give NaN; the margin terms count 0 here.
    only_ref = [
        {"id": "ref:1", "subset": "Ties", "score_chosen": [1.0], "score_rejected": [0.0], "correct": None}
    ]
    assert rb.ties_score(only_ref) == pytest.approx(0.3, abs=1e-12)


# ---------------------------------------------------------------------------------------------------------
# Outputs, resume, column mapping, malformed rows
# ---------------------------------------------------------------------------------------------------------
def test_outputs_written_with_reward_bench_fields(tmp_path):
    rows, table = v1_rows([("alpacaeval-easy", 1.0, 0.0), ("math-prm", 0.0, 1.0)])
    data = rb.prepare_examples(rows, 1)
    info = {"model": "stub-model", "ref_model": None, "dataset": "fixture.jsonl"}
    out = rb.run_rewardbench(StubScorer(table), data, tmp_path / "o", run_info=info, progress=False)
    res = json.loads(out.paths["results"].read_text())
    for key in ("accuracy", "num_prompts", "model", "ref_model", "extra_results", "sections", "overall"):
        assert key in res
    assert res["model"] == "stub-model" and res["ref_model"] is None
    assert out.paths["chart"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| Chat |" in out.paths["markdown"].read_text()
    assert not [p for p in (tmp_path / "o").iterdir() if p.name.endswith(".tmp")]


class Interrupt(Exception):
    pass


class InterruptingScorer(StubScorer):
    def __init__(self, table, fail_on_call: int):
        super().__init__(table)
        self.fail_on_call = fail_on_call

    def score(self, prompts, responses, batch_size: int = 16):
        if self.calls + 1 == self.fail_on_call:
            raise Interrupt
        return super().score(prompts, responses, batch_size)


def test_resume_after_interruption_matches_uninterrupted_run(tmp_path):
    spec = [
        (s, float(i % 3), float((i * 7) % 4)) for i, s in enumerate(["alpacaeval-easy", "hep-go", "shp"] * 6)
    ]
    rows, table = v1_rows(spec)
    for i, r in enumerate(rows):  # different lengths, so the plan sorts and chunks
        r["prompt"] = "x" * (i * 13 % 50)
    data = rb.prepare_examples(rows, 1)
    full = rb.run_rewardbench(StubScorer(table), data, tmp_path / "full", chunk_sequences=6, progress=False)

    broken = tmp_path / "resumed"
    with pytest.raises(Interrupt):
        rb.run_rewardbench(InterruptingScorer(table, 3), data, broken, chunk_sequences=6, progress=False)
    partial_lines = (broken / rb.EXAMPLES_NAME).read_text().splitlines()
    assert len(partial_lines) == 6  # two chunks of three pairs were flushed before the kill
    assert not (broken / rb.RESULTS_NAME).exists()
    with open(broken / rb.EXAMPLES_NAME, "a") as f:  # a torn write from the killed process
        f.write('{"id": 99, "sub')

    again = StubScorer(table)
    out = rb.run_rewardbench(again, data, broken, chunk_sequences=6, progress=False)
    assert out.scored_examples == len(rows) - 6 and again.sequences == 2 * (len(rows) - 6)
    for name in (rb.RESULTS_NAME, rb.EXAMPLES_NAME, rb.MARKDOWN_NAME):
        assert (broken / name).read_bytes() == (tmp_path / "full" / name).read_bytes(), name
    assert full.records == out.records

    # A finished run re-run in place scores nothing and rewrites the same files.
    idle = StubScorer(table)
    rb.run_rewardbench(idle, data, broken, chunk_sequences=6, progress=False)
    assert idle.calls == 0
    assert (broken / rb.RESULTS_NAME).read_bytes() == (tmp_path / "full" / rb.RESULTS_NAME).read_bytes()


def test_resume_refuses_results_of_a_different_run(tmp_path):
    rows, table = v1_rows([("alpacaeval-easy", 1.0, 0.0)])
    data = rb.prepare_examples(rows, 1)
    rb.run_rewardbench(
        StubScorer(table), data, tmp_path, run_info={"fingerprint": {"m": "a"}}, progress=False
    )
    with pytest.raises(ValueError, match="different evaluation"):
        rb.run_rewardbench(
            StubScorer(table), data, tmp_path, run_info={"fingerprint": {"m": "b"}}, progress=False
        )
    out = rb.run_rewardbench(
        StubScorer(table),
        data,
        tmp_path,
        run_info={"fingerprint": {"m": "b"}},
        overwrite=True,
        progress=False,
    )
    assert out.scored_examples == 1


def test_column_map_renames_and_matches_canonical_rows(tmp_path):
    rows, table = v1_rows([("alpacaeval-easy", 1.0, 0.0), ("hep-cpp", 0.0, 2.0)])
    renamed = [
        {
            "question": r["prompt"],
            "good": r["chosen"],
            **{k: v for k, v in r.items() if k not in ("prompt", "chosen")},
        }
        for r in rows
    ]
    path = tmp_path / "renamed.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in renamed))

    loaded = rb.load_rows(str(path))
    with pytest.raises(rb.RewardBenchDataError, match=r"line 1, field 'prompt': missing field"):
        rb.prepare_examples(loaded, 1)
    mapping = rb.parse_column_map('{"question": "prompt", "good": "chosen"}')
    mapped = rb.apply_column_map(loaded, mapping, str(path))
    a = rb.run_rewardbench(StubScorer(table), rb.prepare_examples(mapped, 1), tmp_path / "a", progress=False)
    b = rb.run_rewardbench(StubScorer(table), rb.prepare_examples(rows, 1), tmp_path / "b", progress=False)
    assert a.records == b.records

    with pytest.raises(rb.RewardBenchDataError, match=r"row 1, field 'prompt': column clash"):
        rb.apply_column_map([{"question": "q", "prompt": "p"}], {"question": "prompt"}, "x")
    with pytest.raises(rb.RewardBenchDataError, match="unknown column"):
        rb.apply_column_map(rows, {"questoin": "prompt"}, "x")
    with pytest.raises(ValueError, match="JSON object"):
        rb.parse_column_map("[1, 2]")


GOOD = {"prompt": "p", "chosen": "a", "rejected": "b", "subset": "hep-go", "id": 1}


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"chosen": "a", "rejected": "b", "subset": "s", "id": 1}, "row 2, field 'prompt': missing field"),
        ({**GOOD, "id": 2, "chosen": 5}, "row 2, field 'chosen': wrong type"),
        (
            {k: v for k, v in GOOD.items() if k != "rejected"} | {"id": 2},
            "row 2, field 'rejected': missing field",
        ),
        ({**GOOD, "id": 2, "subset": None}, "row 2, field 'subset': missing field"),
        ({**GOOD, "id": 2.5}, "row 2, field 'id': wrong type"),
        ({**GOOD}, "row 2, field 'id': duplicate id"),
        ({**GOOD, "id": 2, "prompt": {"text": "p"}}, "row 2, field 'prompt': wrong type"),
        ("not a row", "row 2, field '<row>': wrong type"),
    ],
)
def test_malformed_v1_rows_name_row_and_field(bad, message):
    with pytest.raises(rb.RewardBenchDataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        rb.prepare_examples([GOOD, bad], 1)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"chosen": "a"}, "row 1, field 'chosen': wrong type"),
        ({"rejected": []}, "row 1, field 'rejected': wrong type"),
        ({"num_correct": 2}, "row 1, field 'num_correct': inconsistent"),
        ({"subset": "Ties", "id": "7"}, "row 1, field 'id': bad Ties id"),
    ],
)
def test_malformed_v2_rows_name_row_and_field(bad, message):
    row = {"id": "1", "prompt": "p", "chosen": ["a"], "rejected": ["b", "c", "d"], "subset": "Math", **bad}
    with pytest.raises(rb.RewardBenchDataError, match=message):
        rb.prepare_examples([row], 2)


def test_drop_malformed_counts_and_empty_responses_are_reported(tmp_path):
    rows, table = v1_rows([("alpacaeval-easy", 1.0, 0.0), ("alpacaeval-easy", 0.0, 1.0)])
    rows[1]["chosen"] = ""
    table[""] = 0.0
    rows.append({"prompt": "p", "chosen": 3, "rejected": "r", "subset": "alpacaeval-easy", "id": 77})
    data = rb.prepare_examples(rows, 1, drop_malformed=True)
    res = rb.run_rewardbench(StubScorer(table), data, tmp_path, progress=False).results
    assert res["data"]["malformed_dropped"] == 1 and res["data"]["malformed_by_kind"] == {"wrong type": 1}
    assert res["data"]["empty_responses"] == 1 and res["num_prompts"] == 2
    assert res["data"]["rows"] == 3


def test_cli_reports_bad_rows_before_loading_any_model(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"prompt": "p", "chosen": "a", "subset": "s", "id": 1}) + "\n")
    with pytest.raises(rb.RewardBenchDataError, match="line 1, field 'rejected'"):
        # The model path does not exist: reaching model loading would raise a different error.
        rb.main(["--model", str(tmp_path / "no-such-model"), "--dataset", str(path), "--no-progress"])


def test_cli_registered():
    from rewardmodels.cli import COMMANDS

    assert COMMANDS["eval"]["rewardbench"][0] == "rewardmodels.eval.rewardbench"
