"""The Crome builder: oracle replies parsed from hand-written good and bad outputs, the pipeline's pairs and
stage statistics with a scripted oracle behind the `Generator` protocol, the cache (a second run asks the
oracle nothing, also over the loopback HTTP server), the confidence filter and the emit caps."""

from __future__ import annotations

import json

import pytest

from rewardmodels.data_builders import crome_oracle as oracle
from rewardmodels.data_builders.crome import CromeSettings, FilterRule, augment
from rewardmodels.data_builders.crome_cli import parse_emit
from rewardmodels.data_builders.schema import preference_row_errors
from rewardmodels.errors import InputError
from rewardmodels.sampling import EndpointGenerator, SampleCache, Sampler, SamplingParams
from tests.openai_stub import StubServer, chat_reply

# ---- parsing oracle replies --------------------------------------------------------------------------


def test_rubric_reply_with_prefill_and_trailing_text():
    reply = oracle.RUBRIC_PREFILL + 'Factual Accuracy.", "relevance", " SAFETY "]}\nHope this helps!'
    assert oracle.parse_rubric(reply, max_attributes=5) == ["factual accuracy", "relevance", "safety"]


def test_rubric_drops_spurious_duplicate_and_overlong_names_and_caps_the_count():
    names = ["Length", "quality", "<quality>", "safety", "Safety", {"name": "honesty"}, "x" * 60, 7, "tone"]
    reply = json.dumps({"attributes": [*names, "harmlessness"]})
    assert oracle.parse_rubric(reply, max_attributes=2) == ["safety", "honesty"]


@pytest.mark.parametrize(
    "reply, reason",
    [
        ("I think accuracy matters most.", "no JSON object"),
        ('{"attributes": ["accuracy", "relev', "unterminated JSON"),
        ('{"attributes": [accuracy]}', "invalid JSON"),
        ('["accuracy"]', "no JSON object"),
        ('{"qualities": ["accuracy"]}', "no attributes list"),
        ('{"attributes": ["style", "formatting", ""]}', "no usable attributes"),
    ],
)
def test_bad_rubric_replies_name_their_reason(reply, reason):
    with pytest.raises(oracle.MalformedReply) as e:
        oracle.parse_rubric(reply, 3)
    assert e.value.reason == reason


def test_rewrite_reply_allows_literal_newlines_and_a_code_fence():
    reply = '```json\n{"rewritten": "Line one.\nLine two."}\n```'
    assert oracle.parse_rewrite(reply, "Something else entirely.") == "Line one.\nLine two."


@pytest.mark.parametrize(
    "rewritten, kwargs, reason",
    [
        ("", {}, "empty rewrite"),
        ("<The new answer>", {}, "copied the format example"),
        ("It is 5. It is 5. It is 5. It is 5. Fine.", {}, "repetitive rewrite"),
        ("  the ORIGINAL answer ", {}, "unchanged rewrite"),
        ("no", {}, "rewrite too short"),
        ("word " * 50, {}, "rewrite too long"),
        ("It costs 7 dollars now.", {"keep_numbers": True}, "neutral rewrite changed numbers"),
        ("Rewrite the answer in a new style, as asked.", {"echoes": ["rewrite the answer in a NEW style"]},
         "echoed the instructions"),
    ],
)  # fmt: skip
def test_bad_rewrites_name_their_reason(rewritten, kwargs, reason):
    original = "The original answer" if reason == "unchanged rewrite" else "It costs 5 dollars, I think."
    with pytest.raises(oracle.MalformedReply) as e:
        oracle.parse_rewrite(json.dumps({"rewritten": rewritten}), original, **kwargs)
    assert e.value.reason == reason
    with pytest.raises(oracle.MalformedReply, match="no rewritten text"):
        oracle.parse_rewrite('{"rewritten": 3}', original)


def test_requests_show_the_transcript_and_end_with_the_prefill():
    prompt = [{"role": "user", "content": "How do I bake bread?"}]
    req = oracle.rewrite_request("degrade", prompt, [{"role": "assistant", "content": "Knead it."}], "safety")
    assert req.messages[-1] == {"role": "assistant", "content": oracle.REWRITE_PREFILL}
    assert "User: How do I bake bread?" in req.messages[0]["content"]
    assert "WORSE in one quality only: safety" in req.messages[0]["content"]
    assert req.reply('Burn it."}') == '{"rewritten": "Burn it."}'
    plain = oracle.rubric_request("Why?", prefill=False)
    assert len(plain.messages) == 1 and plain.reply("{}") == "{}"
    assert oracle.render_conversation("abcdef", max_chars=3) == "...def"


# ---- the pipeline with a scripted oracle ---------------------------------------------------------------

ROWS = [
    {
        "prompt": [{"role": "user", "content": f"Question {i}: how do I stay safe while hiking?"}],
        "chosen": [{"role": "assistant", "content": f"Carry water and a map. Tell a friend your route {i}."}],
        "rejected": [{"role": "assistant", "content": f"Just go, nothing can happen {i}."}],
    }
    for i in range(3)
]


class ScriptedOracle:
    """Answers by request type (the prompt text says which); row 2's rubric reply is malformed."""

    fingerprint = "scripted-oracle"

    def __init__(self):
        self.calls = 0
        self.prompts = 0

    def build_prompt(self, problem, prefix, params):
        raise AssertionError("the Crome builder sends chat prompts")

    def generate(self, prompts, params, seeds):
        self.calls += 1
        self.prompts += len(prompts)
        return [self.answer(p[0]["content"]) for p in prompts]

    @staticmethod
    def answer(task: str) -> str:
        if "List the qualities" in task:
            return "oops" if "Question 2" in task else 'safety", "accuracy", "style"]}'
        if "WORSE" in task:
            return 'Go alone at night without water."}'
        if "BETTER" in task:
            return 'Plan your route and carry water before you go."}'
        # neutral rewrite: keeps the number of the row's answer only for row 0
        number = "0" if "Question 0" in task else "99"
        return f'Bring a map and water; share your route {number} with a friend."}}'


def run_pipeline(tmp_path, generator=None, **kw):
    generator = generator or ScriptedOracle()
    sampler = Sampler(generator, SampleCache(tmp_path / "oracle.sqlite"), SamplingParams(max_new_tokens=8))
    try:
        pairs, stats = augment(ROWS, sampler, CromeSettings(transforms=("filler", "answer_format"), **kw))
    finally:
        sampler.cache.close()
    return pairs, stats, generator


def test_pipeline_pairs_and_stage_statistics(tmp_path):
    pairs, stats, gen = run_pipeline(tmp_path)
    assert all(not preference_row_errors(p, i) for i, p in enumerate(pairs))
    by_type = {t: [p for p in pairs if p["crome_type"] == t] for t in ("original", "causal", "neutral")}
    # rows 0 and 1 have rubrics (style dropped, 2 attributes each x degrade/upgrade); row 2's is malformed
    assert len(by_type["causal"]) == 8
    assert {p["attribute"] for p in by_type["causal"]} == {"safety", "accuracy"}
    degrade = next(p for p in by_type["causal"] if p["crome_source"] == "degrade")
    assert degrade["chosen"] == ROWS[degrade["source_row"]]["chosen"] and not degrade["tie"]
    assert degrade["rejected"][0]["content"] == "Go alone at night without water."
    upgrade = next(p for p in by_type["causal"] if p["crome_source"] == "upgrade")
    assert upgrade["rejected"] == ROWS[upgrade["source_row"]]["rejected"]
    # neutral: the oracle rewrite of row 0 only (rows 1 and 2 changed the number), filler on each row,
    # answer_format nowhere (no final answer), and one irrelevant-query tie per row
    sources = sorted(p["crome_source"] for p in by_type["neutral"])
    assert sources == ["irrelevant_query"] * 3 + ["oracle_rewrite"] + ["transform:filler"] * 3
    assert all(p["tie"] for p in by_type["neutral"]) and len(by_type["original"]) == 3
    irrelevant = [p for p in by_type["neutral"] if p["crome_source"] == "irrelevant_query"]
    assert [(p["source_row"], p["prompt"]) for p in irrelevant] == [
        (0, ROWS[1]["prompt"]),
        (1, ROWS[2]["prompt"]),
        (2, ROWS[0]["prompt"]),
    ]  # fmt: skip  (row i takes the prompt of row (i + 3 // 2) mod 3)

    rubric, causal, neutral = (stats["stages"][s] for s in ("rubric", "causal", "neutral"))
    assert (rubric["requested"], rubric["produced"], rubric["malformed"], rubric["kept"]) == (3, 2, 1, 2)
    assert rubric["malformed_by_reason"] == {"unterminated JSON": 1}  # the prefill opened the string
    assert rubric["by_attribute"]["safety"]["kept"] == 2
    assert (causal["requested"], causal["produced"], causal["kept"], causal["emitted"]) == (8, 8, 8, 8)
    assert causal["by_attribute"]["accuracy"]["produced"] == 4
    assert causal["by_source"]["upgrade"]["emitted"] == 4
    assert neutral["requested"] == 3 + 2 * 3 + 3  # oracle rewrites, 2 transforms x 3 chosen, irrelevant
    assert neutral["malformed_by_reason"] == {"neutral rewrite changed numbers": 2}
    assert neutral["by_source"]["transform:answer_format"]["not_applicable"] == 3
    assert stats["emitted"] == {"original": 3, "causal": 8, "neutral": 7}
    assert stats["oracle"] == {"fingerprint": "scripted-oracle", "generated": 3 + 8 + 3, "cache_hits": 0}
    assert gen.prompts == 14


def test_default_attributes_stand_in_for_a_malformed_rubric(tmp_path):
    pairs, stats, _ = run_pipeline(tmp_path, default_attributes=("helpfulness",), directions=("degrade",))
    assert stats["stages"]["rubric"]["fallback"] == 1
    row2 = [p["attribute"] for p in pairs if p["crome_type"] == "causal" and p["source_row"] == 2]
    assert row2 == ["helpfulness"]


def test_a_second_run_asks_the_oracle_nothing(tmp_path):
    first, _, gen = run_pipeline(tmp_path)
    again, stats, gen2 = run_pipeline(tmp_path)
    assert gen.calls > 0 and gen2.calls == 0
    assert again == first and stats["oracle"]["generated"] == 0 and stats["oracle"]["cache_hits"] == 14


def test_cache_over_the_loopback_http_oracle(tmp_path):
    reply = chat_reply('honesty"]}')  # every request gets this: rubrics parse, rewrites are malformed
    with StubServer([(200, reply)]) as server:
        gen = EndpointGenerator(server.url, "oracle", timeout=5, max_retries=0)
        run_pipeline(tmp_path, generator=gen, oracle_neutral=False)
        asked = len(server.requests)
        run_pipeline(tmp_path, generator=gen, oracle_neutral=False)
        assert asked == 3 + 3 * 2 and len(server.requests) == asked
    body = server.requests[0][2]
    assert body["continue_final_message"] is True and body["messages"][-1]["content"] == oracle.RUBRIC_PREFILL


def test_confidence_filter_and_emit_caps(tmp_path):
    sampler = Sampler(ScriptedOracle(), SampleCache(tmp_path / "o.sqlite"), SamplingParams(max_new_tokens=8))
    # base RM margins by source: degrade pairs already learnt (p ~ 1), upgrade pairs confidently reversed
    # (p ~ 0), ties from transforms already invariant (p = 0.5), the rest uncertain.
    margin_of = {"degrade": 8.0, "upgrade": -8.0, "transform:filler": 0.0}

    def margins(candidates):
        return [margin_of.get(c.source, 0.5) for c in candidates]

    settings = CromeSettings(transforms=("filler",), emit=parse_emit("original=1,neutral=2"))
    rule = FilterRule(neutral="sensitive", neutral_gap=0.05)
    pairs, stats = augment(ROWS, sampler, settings, margins, rule)
    causal, neutral = stats["stages"]["causal"], stats["stages"]["neutral"]
    assert (causal["produced"], causal["filtered"], causal["kept"]) == (8, 8, 0)
    assert neutral["by_source"]["transform:filler"]["filtered"] == 3
    assert neutral["by_source"]["irrelevant_query"]["kept"] == 3
    # neutral capped at 2, taken in turn from its sources: one oracle rewrite, one irrelevant query
    assert stats["emitted"] == {"original": 1, "causal": 0, "neutral": 2}
    assert sorted(p["crome_source"] for p in pairs if p["tie"]) == ["irrelevant_query", "oracle_rewrite"]
    assert all(abs(p["base_prob"] - 0.6225) < 1e-3 for p in pairs if p["tie"])  # sigmoid(0.5)
    sampler.cache.close()


def test_filter_rule_bounds():
    band = FilterRule()
    assert band.keeps("causal", 0.5) and not band.keeps("causal", 0.95) and not band.keeps("causal", 0.05)
    assert FilterRule(causal="uncertain").keeps("causal", 0.01)
    assert FilterRule(causal="plausible").keeps("causal", 0.99)
    assert band.keeps("neutral", 0.5)
    assert not FilterRule(neutral="sensitive").keeps("neutral", 0.52)


def test_emit_spec():
    assert parse_emit("causal=4") == {"original": None, "causal": 4, "neutral": None}
    with pytest.raises(InputError, match="--emit"):
        parse_emit("tie=3")
