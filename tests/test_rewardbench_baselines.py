"""`rewardmodels eval rewardbench --baseline length|logprob`: the trivial baselines of issue 18.

The length baseline is checked on a literal dataset whose section scores are worked out by hand; the logprob
baseline must give the very scores of `--model M --ref-free avg`, the path it stands for.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rewardmodels.errors import InputError
from rewardmodels.eval import rewardbench as rb
from rewardmodels.scorers.baselines import LengthBaseline
from rewardmodels.scorers.capabilities import ScoresGroups, ScoresTexts, ScoresTokenIds

# (subset, chosen, rejected): lengths in characters in the comments.
ROWS = [
    ("alpacaeval-easy", "short", "much longer"),  # 5 < 11: right
    ("alpacaeval-easy", "abcdef", "xyz"),  # 6 > 3: wrong
    ("donotanswer", "same", "four"),  # 4 == 4: a tie, wrong
    ("hep-go", "no", "yes sir"),  # 2 < 7: right
]


def write_rows(path: Path, rows=ROWS) -> Path:
    lines = [
        json.dumps({"prompt": f"question {i}", "chosen": c, "rejected": r, "subset": s, "id": i})
        for i, (s, c, r) in enumerate(rows)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_length_baseline_scores_minus_characters_and_only_scores_texts():
    scorer = LengthBaseline()
    assert scorer.score(["p", "q"], ["abc", [{"role": "assistant", "content": "hello"}]]) == [-3.0, -5.0]
    assert isinstance(scorer, ScoresTexts)
    assert not isinstance(scorer, ScoresTokenIds | ScoresGroups)
    with pytest.raises(ValueError, match="2 prompts but 1 responses"):
        scorer.score(["p", "q"], ["abc"])


def test_length_baseline_cli_hand_computed_sections(tmp_path, monkeypatch):
    import rewardmodels.scorers.base as scorer_base

    def no_model(*args, **kwargs):
        raise AssertionError("the length baseline loaded a model")

    monkeypatch.setattr(scorer_base, "load_for_scoring", no_model)
    dataset = write_rows(tmp_path / "rows.jsonl")
    monkeypatch.chdir(tmp_path)  # the default output dir is relative to the working directory
    assert rb.main(["--baseline", "length", "--dataset", str(dataset), "--no-progress"]) == 0

    out = tmp_path / "results" / "rewardbench" / "baseline-length"
    lines = read_jsonl(out / rb.EXAMPLES_NAME)
    assert [(x["score_chosen"], x["score_rejected"]) for x in lines] == [
        (-5.0, -11.0),
        (-6.0, -3.0),
        (-4.0, -4.0),
        (-2.0, -7.0),
    ]
    assert [x["correct"] for x in lines] == [True, False, False, True]  # the equal-length tie is wrong
    res = json.loads((out / rb.RESULTS_NAME).read_text())
    # Chat: alpacaeval-easy alone, 1/2; Safety: donotanswer alone, 0/1; Reasoning: hep-go alone, 1/1.
    assert res["sections"] == {"Chat": 0.5, "Safety": 0.0, "Reasoning": 1.0}
    assert res["overall"] == pytest.approx((0.5 + 0.0 + 1.0) / 3, abs=1e-12)
    assert res["accuracy"] == 2 / 4
    assert res["model"] == "baseline-length"
    assert res["scorer"]["baseline"] == "length" and res["scorer"]["mode"] == "baseline"
    assert "Baseline `length`" in (out / rb.MARKDOWN_NAME).read_text()


def test_logprob_baseline_equals_ref_free_avg(tiny_llama, tmp_path):
    dataset = write_rows(tmp_path / "rows.jsonl")
    common = ["--dataset", str(dataset), "--device", "cpu", "--no-progress"]
    base_dir, dpo_dir = tmp_path / "baseline", tmp_path / "dpo"
    assert (
        rb.main(["--baseline", "logprob", "--model", str(tiny_llama), "--output-dir", str(base_dir), *common])
        == 0
    )
    assert (
        rb.main(["--model", str(tiny_llama), "--ref-free", "avg", "--output-dir", str(dpo_dir), *common]) == 0
    )

    baseline = read_jsonl(base_dir / rb.EXAMPLES_NAME)
    dpo = read_jsonl(dpo_dir / rb.EXAMPLES_NAME)
    assert baseline == dpo  # same scores, bit for bit, and the same verdicts
    assert len({x["score_chosen"] for x in baseline}) == len(ROWS)  # real, distinct log-prob means
    res = json.loads((base_dir / rb.RESULTS_NAME).read_text())
    assert res["model"] == "baseline-logprob"
    assert res["scorer"]["baseline"] == "logprob"
    assert res["scorer"]["ref_free"] == "avg" and res["scorer"]["policy"] == str(tiny_llama)
    assert res["sections"] == json.loads((dpo_dir / rb.RESULTS_NAME).read_text())["sections"]
    assert f"under `{tiny_llama}`" in (base_dir / rb.MARKDOWN_NAME).read_text()


def test_logprob_baseline_defaults_to_smollm2_and_ref_free_avg():
    parser = rb.build_parser()
    args = parser.parse_args(["--baseline", "logprob"])
    rb.resolve_baseline(parser, args)
    assert (args.model, args.ref_free, args.ref_model) == ("smollm2-135m", "avg", None)


@pytest.mark.parametrize(
    "argv, message",
    [
        ([], "one of --scorer, --model or --baseline is required"),
        (["--baseline", "length", "--model", "m"], "--baseline length loads no model"),
        (["--baseline", "logprob", "--scorer", "d"], "drop --scorer"),
        (["--baseline", "logprob", "--ref-free", "sum"], "--baseline takes no --ref-model/--ref-free"),
        (["--baseline", "logprob", "--ref-model", "r"], "--baseline takes no --ref-model/--ref-free"),
    ],
)
def test_baseline_flag_combinations_are_usage_errors(argv, message):
    with pytest.raises(InputError) as e:  # one line and exit code 2 from the command table
        rb.main(argv)
    assert message in e.value.one_line() and e.value.one_line().endswith("See --help.")


def test_help_documents_the_baseline_flag(capsys):
    with pytest.raises(SystemExit) as e:
        rb.main(["--help"])
    assert e.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--baseline {length,logprob}" in text
    assert "minus the response's length in characters" in text
    assert "exactly --model M --ref-free avg" in text
    assert "baseline-<name>" in text
