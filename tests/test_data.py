import gzip
import json

import pytest

from rewardmodels.data_builders import preference, synthetic
from rewardmodels.data_builders.schema import DataValidationError, validate_preference_rows
from rewardmodels.data_builders.sources import load_rows
from rewardmodels.io import read_rows, write_jsonl

GOOD = {"prompt": "p", "chosen": "a", "rejected": "b"}


@pytest.mark.parametrize(
    "row, field, kind",
    [
        ({"prompt": "p", "rejected": "b"}, "chosen", "missing field"),
        ({"prompt": "p", "chosen": 3, "rejected": "b"}, "chosen", "wrong type"),
        ({"prompt": "p", "chosen": [{"role": "assistant"}], "rejected": "b"}, "chosen", "wrong type"),
        ({"prompt": "p", "chosen": "a", "rejected": "   "}, "rejected", "empty response"),
        ({"prompt": "p", "chosen": "same", "rejected": "same "}, "rejected", "identical chosen and rejected"),
        ({"prompt": "p", "chosen": "a", "rejected": "b", "margin": "big"}, "margin", "wrong type"),
        ({"prompt": "p", "chosen": "a", "rejected": "b", "margin": float("nan")}, "margin", "wrong type"),
    ],
)
def test_each_error_class_names_row_and_field(row, field, kind):
    with pytest.raises(DataValidationError) as info:
        validate_preference_rows([GOOD, GOOD, row], source="mydata.jsonl")
    err = info.value.errors[0]
    assert (err.index, err.field, err.kind) == (2, field, kind)
    assert f"row 3, field '{field}': {kind}" in str(info.value)  # rows count from 1, as in the file
    assert "mydata.jsonl" in str(info.value)


def test_drop_mode_drops_and_counts():
    rows = [
        GOOD,
        {"prompt": "p", "chosen": "", "rejected": "b"},
        {"prompt": "p", "chosen": "x", "rejected": "x"},
        GOOD,
    ]
    kept, report = validate_preference_rows(rows, drop_invalid=True)
    assert kept == [GOOD, GOOD]
    assert report.dropped == {"empty response": 1, "identical chosen and rejected": 1}
    assert "kept 2, dropped 2" in str(report)


def test_over_length_is_reported_by_count(tiny_tokenizer):
    from rewardmodels.tokenization import tokenize_pairs

    rows = [{"prompt": "word " * 50, "chosen": "a", "rejected": "b"}] * 3 + [GOOD]
    _, truncated = tokenize_pairs(tiny_tokenizer, rows, use_chat_template=False, max_length=16)
    assert truncated == 3


def test_hh_rlhf_transcripts_split_into_messages(tmp_path):
    raw = [
        {
            "chosen": "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: how are you?\n\nAssistant: fine, thanks",
            "rejected": "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: how are you?\n\nAssistant: go away",
        },
        {"chosen": "\n\nHuman: a\n\nAssistant: b", "rejected": "\n\nHuman: DIFFERENT\n\nAssistant: c"},
        {"chosen": "\n\nHuman: a\n\nAssistant:", "rejected": "\n\nHuman: a\n\nAssistant: c"},
    ]
    path = tmp_path / "hh.jsonl.gz"
    with gzip.open(path, "wt") as f:
        f.write("\n".join(json.dumps(r) for r in raw))
    rows, skipped = preference.build_hh_rlhf(str(path))
    assert rows == [
        {
            "prompt": [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "hello"},
                {"role": "user", "content": "how are you?"},
            ],
            "chosen": [{"role": "assistant", "content": "fine, thanks"}],
            "rejected": [{"role": "assistant", "content": "go away"}],
        }
    ]
    assert sum(skipped.values()) == 2
    # through the spec loader, skipped rows are counted in the report
    loaded, report = load_rows(f"hh_rlhf:{path}", "preference")
    assert loaded == rows and report.total == 3 and report.kept == 1


def test_sharegpt_rows(tmp_path):
    raw = [
        {
            "conversations": [{"from": "system", "value": "be nice"}, {"from": "human", "value": "q"}],
            "chosen": {"from": "gpt", "value": "good"},
            "rejected": {"from": "gpt", "value": "bad"},
        }
    ]
    path = tmp_path / "demo.json"
    path.write_text(json.dumps(raw))
    rows, _ = preference.build_sharegpt(str(path))
    assert rows[0]["prompt"] == [{"role": "system", "content": "be nice"}, {"role": "user", "content": "q"}]
    assert rows[0]["chosen"] == [{"role": "assistant", "content": "good"}]
    bad = [
        {
            "conversations": [{"from": "robot", "value": "q"}],
            "chosen": {"from": "gpt", "value": "a"},
            "rejected": {"from": "gpt", "value": "b"},
        }
    ]
    path.write_text(json.dumps(bad))
    with pytest.raises(ValueError, match="row 1, field 'conversations'"):
        preference.build_sharegpt(str(path))


@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".parquet"])
def test_generic_files_with_column_map(tmp_path, suffix):
    raw = [{"question": "q1", "good": "a", "bad": "b"}, {"question": "q2", "good": "c", "bad": "d"}]
    path = tmp_path / f"rows{suffix}"
    if suffix == ".jsonl":
        write_jsonl(path, raw)
    elif suffix == ".json":
        path.write_text(json.dumps(raw))
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(raw), path)
    rows, report = load_rows(
        str(path), "preference", {"question": "prompt", "good": "chosen", "bad": "rejected"}
    )
    assert [r["prompt"] for r in rows] == ["q1", "q2"] and rows[1]["rejected"] == "d"
    assert report.kept == 2
    assert read_rows(path)[0]["question"] == "q1"


def test_generic_missing_column_without_map_is_an_error(tmp_path):
    path = tmp_path / "rows.jsonl"
    write_jsonl(path, [{"question": "q", "chosen": "a", "rejected": "b"}])
    with pytest.raises(DataValidationError, match="line 1, field 'prompt': missing field"):
        load_rows(str(path), "preference")


def test_synthetic_is_deterministic_and_seeds_are_disjoint():
    a, b = synthetic.preference_rows(50, seed=0), synthetic.preference_rows(50, seed=0)
    assert a == b
    held_out = synthetic.preference_rows(50, seed=1)
    assert a != held_out

    # the chosen solution is arithmetically right and answers its last value; the rejected one has exactly one
    # slip: either one wrong step (carried forward) or a misreported final answer
    def slips(solution: str) -> int:
        *lines, answer = solution.split("\n")
        wrong_steps = sum(eval(x.split(" = ")[0]) != int(x.split(" = ")[1]) for x in lines)  # noqa: S307 - our own "a + b"
        return wrong_steps + (int(answer.removeprefix("Answer: ")) != int(lines[-1].split(" = ")[1]))

    assert all(slips(r["chosen"]) == 0 for r in a)
    assert all(slips(r["rejected"]) == 1 for r in a)
    only_answer = synthetic.preference_rows(20, seed=0, answer_slip_rate=1.0)
    assert all(r["chosen"].split("\n")[:-1] == r["rejected"].split("\n")[:-1] for r in only_answer)
    only_steps = synthetic.preference_rows(20, seed=0, answer_slip_rate=0.0)
    assert all(
        r["chosen"].split("\n")[0] != r["rejected"].split("\n")[0]
        or r["chosen"].split("\n")[-2] != r["rejected"].split("\n")[-2]
        for r in only_steps
    )


def test_synthetic_stepwise_and_outcome_rows_agree():
    steps = synthetic.stepwise_rows(20, seed=3)
    for row in steps:
        first = row["first_error"]
        assert row["labels"] == [first == -1 or i < first for i in range(len(row["completions"]))]
    outcomes = synthetic.outcome_rows(20, seed=3)
    assert [o["label"] for o in outcomes] == [r["first_error"] == -1 for r in steps]
    assert any(o["label"] for o in outcomes) and not all(o["label"] for o in outcomes)
