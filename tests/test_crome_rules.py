"""The rule-based Crome oracle and the spurious-pair builder: replies to concrete requests worked out by hand,
the Crome pipeline run through it on synthetic task (a) (every causal pair right by the task's rule, checked
against the prompt's own expression; filler ties), its cache and determinism, and `spurious_pairs`."""

from __future__ import annotations

import json
import random
import re

import pytest

from rewardmodels.data_builders import crome_oracle as oracle
from rewardmodels.data_builders import synthetic
from rewardmodels.data_builders.crome import CromeSettings, augment
from rewardmodels.data_builders.crome_rules import (
    ARITHMETIC_ATTRIBUTE,
    PLANTED_ATTRIBUTE,
    RuleOracle,
    arithmetic_answer_rules,
    planted_token_rules,
    read_request,
    replace_every,
    replace_word,
    spurious_pairs,
)
from rewardmodels.data_builders.schema import preference_row_errors
from rewardmodels.data_builders.spurious import FILLER_CLOSING, FILLER_OPENING, filler
from rewardmodels.sampling import SampleCache, Sampler, SamplingParams

PROMPT = "Compute 2 + 3 - 1. Work it out one step at a time."
GOOD = "2 + 3 = 5\n5 - 1 = 4\nAnswer: 4"
SLIP = "2 + 3 = 5\n5 - 1 = 4\nAnswer: 9"  # an answer slip: the working is right, the answer is not
CARRIED = "2 + 3 = 8\n8 - 1 = 7\nAnswer: 7"  # a carried slip: 2 + 3 written as 8


def ask(rules, kind, answer=None, attribute=None, seed=0, prefill=True) -> str:
    """The whole reply (prefill + sample) of a RuleOracle to one request, as the builder reads it."""
    if kind == "rubric":
        request = oracle.rubric_request(PROMPT, prefill=prefill)
    else:
        request = oracle.rewrite_request(kind, PROMPT, answer, attribute, prefill=prefill)
    (sample,) = RuleOracle(rules).generate([request.messages], SamplingParams(), [seed])
    return request.reply(sample)


# ---- replies to concrete requests ----------------------------------------------------------------------


def test_arithmetic_replies_by_hand():
    rules = arithmetic_answer_rules()  # offsets (-9, -7, -5, -3, 3, 5, 7, 9)
    assert ask(rules, "rubric") == '{"attributes": ["correct final answer"]}'
    assert oracle.parse_rubric(ask(rules, "rubric"), 3) == [ARITHMETIC_ATTRIBUTE]
    # degrade: seed 0 picks offset -9 (4 - 9 = -5), seed 12 picks offsets[12 mod 8] = 3 (4 + 3 = 7)
    assert json.loads(ask(rules, "degrade", GOOD, ARITHMETIC_ATTRIBUTE, seed=0)) == {
        "rewritten": "2 + 3 = 5\n5 - 1 = 4\nAnswer: -5"
    }
    assert ask(rules, "degrade", GOOD, ARITHMETIC_ATTRIBUTE, seed=12).endswith('Answer: 7"}')
    # upgrade: 2 + 3 - 1 = 4 from the working lines' operands; a carried slip keeps its working lines
    assert json.loads(ask(rules, "upgrade", SLIP, ARITHMETIC_ATTRIBUTE))["rewritten"] == GOOD
    assert json.loads(ask(rules, "upgrade", CARRIED, ARITHMETIC_ATTRIBUTE))["rewritten"] == (
        "2 + 3 = 8\n8 - 1 = 7\nAnswer: 4"
    )
    neutral = ask(rules, "neutral", GOOD)
    assert json.loads(neutral)["rewritten"] == "2 + 3 gives 5\n5 - 1 gives 4\nAnswer: 4"
    # every reply passes the builder's own parser (the neutral one with its numbers-kept check)
    assert oracle.parse_rewrite(neutral, GOOD, keep_numbers=True).endswith("Answer: 4")


def test_the_request_is_read_from_its_text_attribute_normalised():
    messages = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
    request = oracle.rewrite_request(
        "upgrade", messages, [{"role": "assistant", "content": SLIP}], "Correct final answer."
    )
    parsed = read_request(request.messages)
    assert (parsed.kind, parsed.attribute, parsed.answer) == ("upgrade", ARITHMETIC_ATTRIBUTE, SLIP)
    assert parsed.conversation == "User: Hi\n\nAssistant: Hello" and parsed.prefill == oracle.REWRITE_PREFILL
    rubric = read_request(oracle.rubric_request(PROMPT, prefill=False).messages)
    assert (rubric.kind, rubric.conversation, rubric.prefill) == ("rubric", PROMPT, "")
    with pytest.raises(ValueError, match="not a Crome oracle request"):
        read_request([{"role": "user", "content": "What is 2 + 2?"}])


def test_without_prefill_the_reply_is_the_whole_json():
    reply = ask(arithmetic_answer_rules(), "degrade", GOOD, ARITHMETIC_ATTRIBUTE, seed=1, prefill=False)
    assert reply == json.dumps({"rewritten": "2 + 3 = 5\n5 - 1 = 4\nAnswer: -3"})


@pytest.mark.parametrize(
    "kind, answer, attribute",
    [
        ("degrade", GOOD, "safety"),  # not an attribute of the task: no rule
        ("upgrade", GOOD, ARITHMETIC_ATTRIBUTE),  # already right
        ("degrade", "no answer line here", ARITHMETIC_ATTRIBUTE),
    ],
)
def test_a_rule_that_does_not_apply_answers_unchanged_and_the_builder_skips_it(kind, answer, attribute):
    reply = ask(arithmetic_answer_rules(), kind, answer, attribute)
    assert json.loads(reply)["rewritten"] == answer
    with pytest.raises(oracle.MalformedReply) as e:
        oracle.parse_rewrite(reply, answer)
    assert e.value.reason == "unchanged rewrite"


def test_planted_token_replies_by_hand():
    rules = planted_token_rules("bad")
    assert oracle.parse_rubric(ask(rules, "rubric"), 3) == [PLANTED_ATTRIBUTE]
    # degrade: word 4 mod 3 = 1 replaced; the length in words is kept
    assert (
        json.loads(ask(rules, "degrade", "yes no good", PLANTED_ATTRIBUTE, seed=4))["rewritten"]
        == "yes bad good"
    )
    assert json.loads(ask(rules, "upgrade", "bad no bad", PLANTED_ATTRIBUTE))["rewritten"] == "the no the"
    assert json.loads(ask(rules, "neutral", "yes bad"))["rewritten"] == "- yes\n- bad"
    assert (
        json.loads(ask(rules, "degrade", "yes bad", PLANTED_ATTRIBUTE))["rewritten"] == "yes bad"
    )  # already bad
    assert replace_word("a  b\nc", 2, "x") == "a  b\nx" and replace_word("a b", 5, "x") == "a b"
    assert replace_every("bad badly bad", "bad", "the") == "the badly the"  # whole words only
    with pytest.raises(ValueError, match="one non-empty word"):
        planted_token_rules("two words")


def test_fingerprint_names_the_rules_and_math_prompts_are_refused():
    assert (
        RuleOracle(planted_token_rules("bad")).fingerprint == "rule-oracle-v1:planted-token(bad,stand_in=the)"
    )
    assert (
        RuleOracle(arithmetic_answer_rules((3,))).fingerprint
        != RuleOracle(arithmetic_answer_rules()).fingerprint
    )
    with pytest.raises(TypeError):
        RuleOracle(arithmetic_answer_rules()).build_prompt("1 + 1", [], SamplingParams())
    with pytest.raises(ValueError, match="non-zero"):
        arithmetic_answer_rules((0, 3))


# ---- the Crome pipeline through the rule oracle, on synthetic task (a) ------------------------------------


def right_answer(prompt: str) -> int:
    """The value of the prompt's own expression ("Compute 13 - 2 + 6. ..."), independent of any answer."""
    expression = re.match(r"Compute (.+?)\. ", prompt).group(1)
    tokens = expression.split()
    value = int(tokens[0])
    for op, n in zip(tokens[1::2], tokens[2::2], strict=True):
        value = value + int(n) if op == "+" else value - int(n)
    return value


def stated_answer(text: str) -> int:
    return int(re.findall(r"^Answer: (-?\d+)", text, re.MULTILINE)[-1])


def masked(text: str) -> str:
    return re.sub(r"^Answer: -?\d+", "Answer: N", text, flags=re.MULTILINE)


def run_augment(path, rows, **settings):
    sampler = Sampler(
        RuleOracle(arithmetic_answer_rules()), SampleCache(path), SamplingParams(temperature=0.0)
    )
    try:
        settings = {"transforms": ("filler",), "irrelevant_query": False, **settings}
        return augment(rows, sampler, CromeSettings(**settings))
    finally:
        sampler.cache.close()


@pytest.mark.parametrize("share", [None, 0.9])  # plain task (a) rows, and with filler on 90% of chosen sides
def test_augment_emits_causal_pairs_right_by_the_rule_and_filler_ties(tmp_path, share):
    rows = synthetic.preference_rows(12, seed=3, task="a")
    if share is not None:
        rows = spurious_pairs(rows, "filler", share, seed=0)
    pairs, stats = run_augment(tmp_path / "cache.sqlite", rows)
    assert all(not preference_row_errors(p, i) for i, p in enumerate(pairs))
    causal = [p for p in pairs if p["crome_type"] == "causal"]
    assert stats["emitted"] == {
        "original": 12,
        "causal": 24,
        "neutral": 24,
    }  # degrade + upgrade; filler + restyle
    assert stats["stages"]["causal"]["malformed"] == 0 and stats["stages"]["rubric"]["produced"] == 12
    for p in causal:
        row = rows[p["source_row"]]
        truth = right_answer(p["prompt"])
        assert p["attribute"] == ARITHMETIC_ATTRIBUTE and not p["tie"]
        assert stated_answer(p["chosen"]) == truth != stated_answer(p["rejected"])
        # one side is the row's own answer, the other that answer with only its Answer line's number moved
        kept, rewritten = ("chosen", "rejected") if p["crome_source"] == "degrade" else ("rejected", "chosen")
        assert p[kept] == row[kept] and masked(p[rewritten]) == masked(row[kept].strip())
    ties = [p for p in pairs if p["crome_source"] == "transform:filler"]
    assert len(ties) == 12 and all(p["tie"] for p in ties)
    assert all(p["rejected"] == filler(rows[p["source_row"]]["chosen"]) for p in ties)
    restyled = [p for p in pairs if p["crome_source"] == "oracle_rewrite"]
    assert all(p["tie"] and " gives " in p["rejected"] for p in restyled) and len(restyled) == 12
    assert stats["oracle"]["fingerprint"].startswith("rule-oracle-v1:arithmetic-answer")


def test_augment_is_deterministic_and_a_rerun_reads_the_cache(tmp_path):
    rows = synthetic.preference_rows(8, seed=5, task="a")
    first, stats1 = run_augment(tmp_path / "a.sqlite", rows)
    fresh, _ = run_augment(tmp_path / "b.sqlite", rows)
    again, stats2 = run_augment(tmp_path / "a.sqlite", rows)
    assert first == fresh == again
    assert stats1["oracle"]["generated"] == 8 + 16 + 8 and stats1["oracle"]["cache_hits"] == 0
    assert stats2["oracle"]["generated"] == 0 and stats2["oracle"]["cache_hits"] == 32


# ---- spurious pairs ------------------------------------------------------------------------------------


def test_spurious_pairs_put_the_transform_on_the_drawn_side():
    rows = [{"prompt": f"p{i}", "chosen": f"good {i}", "rejected": f"poor {i}", "id": i} for i in range(200)]
    flipped = spurious_pairs(rows, "filler", 0.0)
    unflipped = spurious_pairs(rows, "filler", 1.0)
    assert all(r["rejected"].startswith(FILLER_OPENING) and r["chosen"] == f"good {r['id']}" for r in flipped)
    assert all(r["chosen"].endswith(FILLER_CLOSING) and r["spurious_side"] == "chosen" for r in unflipped)
    mixed = spurious_pairs(rows, "filler", 0.7, seed=4)
    rng = random.Random("spurious-4")  # the docstring's draw, one per row in order
    expected = ["chosen" if rng.random() < 0.7 else "rejected" for _ in rows]
    assert [r["spurious_side"] for r in mixed] == expected
    assert 0.6 < expected.count("chosen") / len(rows) < 0.8
    assert mixed == spurious_pairs(rows, "filler", 0.7, seed=4) != spurious_pairs(rows, "filler", 0.7, seed=5)
    assert [r["id"] for r in mixed] == list(range(200)) and rows[0]["chosen"] == "good 0"  # input untouched


def test_spurious_pairs_mark_rows_the_transform_leaves_alone():
    rows = [{"prompt": "p", "chosen": "no answer here", "rejected": "none here either"}]
    (row,) = spurious_pairs(rows, "answer_format", 1.0)
    assert row["spurious_side"] is None and row["chosen"] == "no answer here"
    with pytest.raises(ValueError, match="unknown transform"):
        spurious_pairs(rows, "shouting", 0.5)
