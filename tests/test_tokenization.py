from bisect import bisect_right

import pytest

from rewardmodels.causal.response_tokens import (
    EncodedResponse,
    encode_response,
    join_steps,
    keep_last_tokens,
    tokens_before,
)
from rewardmodels.tokenization import (
    common_prefix_length,
    render_ids,
    resolve_chat_template,
    shared_prefix_length,
    tokenize_pair,
    tokenize_pairs,
    truncate_pair,
    truncate_sequence,
)


def test_plain_rows_get_a_newline_join_and_eos(tiny_tokenizer):
    ids = render_ids(tiny_tokenizer, "Compute 2 + 3.", "2 + 3 = 5", use_chat_template=False)
    assert ids[-1] == tiny_tokenizer.eos_token_id
    assert tiny_tokenizer.decode(ids[:-1]) == "Compute 2 + 3.\n2 + 3 = 5"


def test_chat_rows_go_through_the_template(tiny_tokenizer):
    ids = render_ids(tiny_tokenizer, "hi", "yes", use_chat_template=True)
    assert (
        tiny_tokenizer.decode(ids) == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nyes<|im_end|>\n"
    )
    messages = [{"role": "user", "content": "hi"}]
    assert render_ids(tiny_tokenizer, messages, [{"role": "assistant", "content": "yes"}], False) == ids


def test_resolve_chat_template_auto(tiny_tokenizer):
    assert resolve_chat_template("auto", [{"prompt": "x"}], tiny_tokenizer) is False
    assert (
        resolve_chat_template("auto", [{"prompt": [{"role": "user", "content": "x"}]}], tiny_tokenizer)
        is True
    )
    assert resolve_chat_template("always", [{"prompt": "x"}], tiny_tokenizer) is True
    with pytest.raises(ValueError, match="auto, always or never"):
        resolve_chat_template("sometimes", [], tiny_tokenizer)


def test_shared_prefix_is_found_in_token_ids():
    assert shared_prefix_length([1, 2, 3, 4], [1, 2, 5]) == 2
    # each side keeps at least one token of its own, even when one is a prefix of the other
    assert shared_prefix_length([1, 2], [1, 2, 3]) == 1
    assert shared_prefix_length([7], [8]) == 0


def test_tokenize_pair_splits_at_the_token_prefix(tiny_tokenizer):
    row = {"prompt": "Compute 2 + 3.", "chosen": "2 + 3 = 5\nAnswer: 5", "rejected": "2 + 3 = 9\nAnswer: 9"}
    pair = tokenize_pair(tiny_tokenizer, row, use_chat_template=True, max_length=512)
    full_c = render_ids(tiny_tokenizer, row["prompt"], row["chosen"], True)
    full_r = render_ids(tiny_tokenizer, row["prompt"], row["rejected"], True)
    assert pair.prefix_ids + pair.chosen_ids == full_c
    assert pair.prefix_ids + pair.rejected_ids == full_r
    assert pair.chosen_ids[0] != pair.rejected_ids[0]
    assert not pair.truncated


def test_truncation_cuts_prompt_from_left_then_keeps_response_end():
    prefix, chosen, rejected = [1, 2, 3, 4, 5], [6, 7], [8, 9, 10]
    # fits: untouched
    assert truncate_pair(prefix, chosen, rejected, 8).prefix_ids == [1, 2, 3, 4, 5]
    # 5 + 3 > 6: the prefix keeps its last 6 - 3 = 3 tokens, responses intact
    cut = truncate_pair(prefix, chosen, rejected, 6)
    assert (cut.prefix_ids, cut.chosen_ids, cut.rejected_ids, cut.truncated) == (
        [3, 4, 5],
        [6, 7],
        [8, 9, 10],
        True,
    )
    # a response longer than max_length alone keeps its end, and the prefix goes entirely
    cut = truncate_pair(prefix, chosen, rejected, 2)
    assert (cut.prefix_ids, cut.chosen_ids, cut.rejected_ids) == ([], [6, 7], [9, 10])
    assert truncate_sequence([1, 2, 3], 2) == ([2, 3], True)
    assert truncate_sequence([1, 2, 3], 3) == ([1, 2, 3], False)


def test_tokenize_pairs_counts_truncation_and_keeps_margin(tiny_tokenizer):
    rows = [
        {"prompt": "Compute 2 + 3. " * 30, "chosen": "5", "rejected": "9", "margin": 1.5},
        {"prompt": "hi", "chosen": "yes", "rejected": "no"},
    ]
    features, cut = tokenize_pairs(tiny_tokenizer, rows, use_chat_template=False, max_length=20)
    assert cut == 1
    assert features[0]["margin"] == 1.5 and "margin" not in features[1]
    assert (
        len(features[0]["prefix_ids"]) + max(len(features[0]["chosen_ids"]), len(features[0]["rejected_ids"]))
        == 20
    )


# ---- one rendering, tokenized once: the same ids as before, and the boundaries read off its offsets ---------


class SlowView:
    """A tokenizer that gives no offset mapping, as a slow (python) tokenizer does."""

    is_fast = False

    def __init__(self, tokenizer):
        self._tokenizer = tokenizer

    def __getattr__(self, name):
        return getattr(self._tokenizer, name)

    def __call__(self, *args, **kwargs):
        return self._tokenizer(*args, **kwargs)


def test_render_ids_equals_transformers_own_chat_tokenization(tiny_tokenizer):
    messages = [{"role": "user", "content": "hi <|im_end|> there"}, {"role": "assistant", "content": "yes"}]
    direct = tiny_tokenizer.apply_chat_template(messages, tokenize=True, return_dict=False)
    assert render_ids(tiny_tokenizer, messages[:1], messages[1:], use_chat_template=True) == list(direct)


def test_common_prefix_length():
    assert (
        common_prefix_length([1, 2, 3], [1, 2, 3, 4]) == 3
    )  # unlike shared_prefix_length, no token kept back
    assert common_prefix_length([1, 2], [3]) == 0
    assert shared_prefix_length([1, 2, 3], [1, 2, 3, 4]) == 2


def test_tokens_before_by_hand():
    # BOS (0, 0), "abc", " ", "defg", then an EOS with no characters
    keys = tokens_before([(0, 0), (0, 3), (3, 4), (4, 8), (0, 0)])
    assert keys == [0.5, 3.0, 4.0, 8.0, 8.5]
    # before char 3: BOS and "abc"; before char 5: "defg" straddles it, so it is after; the EOS is never before
    assert [bisect_right(keys, c) for c in (0, 3, 5, 8)] == [0, 2, 3, 4]


def test_join_steps_gives_each_step_its_separator():
    text, ends = join_steps(["a", "bc", "d"], "\n\n")
    assert (text, ends) == ("a\n\nbc\n\nd", [3, 7, 8])
    assert join_steps([], "\n") == ("", [])


def test_chat_response_starts_after_the_generation_prompt(tiny_tokenizer):
    user = [{"role": "user", "content": "what is the answer"}]
    enc = encode_response(tiny_tokenizer, "what is the answer", "the answer is yes", use_chat_template=True)
    head = tiny_tokenizer.apply_chat_template(
        user, tokenize=True, add_generation_prompt=True, return_dict=False
    )
    assert list(enc) == render_ids(tiny_tokenizer, "what is the answer", "the answer is yes", True)
    assert enc.response_start == len(head) and enc[: len(head)] == list(head)
    assert tiny_tokenizer.decode(enc[enc.response_start :]) == "the answer is yes<|im_end|>\n"


def test_plain_response_start_and_a_token_merged_across_the_boundary(tiny_tokenizer):
    enc = encode_response(tiny_tokenizer, "what is the answer", "the answer is yes", use_chat_template=False)
    assert tiny_tokenizer.decode(enc[enc.response_start :]) == "the answer is yes" + tiny_tokenizer.eos_token
    # "what is " + "bad": the prompt's trailing space merges into the one token " bad", which holds response
    # characters, so it is a response token
    merged = encode_response(tiny_tokenizer, "what is ", "bad", use_chat_template=False)
    assert len(tiny_tokenizer(" bad", add_special_tokens=False)["input_ids"]) == 1
    assert tiny_tokenizer.decode(merged[merged.response_start :]) == " bad" + tiny_tokenizer.eos_token
    assert tiny_tokenizer.decode(merged[: merged.response_start]) == "what is"


@pytest.mark.parametrize("chat", [True, False])
def test_a_slow_tokenizer_finds_the_same_response_start(tiny_tokenizer, chat):
    fast = encode_response(tiny_tokenizer, "why is the sky blue", "it is blue", chat)
    slow = encode_response(SlowView(tiny_tokenizer), "why is the sky blue", "it is blue", chat)
    assert list(slow) == list(fast) and slow.response_start == fast.response_start
    with pytest.raises(ValueError, match="fast tokenizer"):
        encode_response(SlowView(tiny_tokenizer), "why", "it is", chat, step_ends=[2])


@pytest.mark.parametrize("chat", [True, False])
def test_step_boundaries_come_from_the_offsets_of_the_scored_ids(tiny_tokenizer, chat):
    steps = ["the answer is good", "so the answer is yes", "yes"]
    text, ends = join_steps(steps, "\n")
    enc = encode_response(tiny_tokenizer, "what is the answer", text, chat, step_ends=ends)
    assert list(enc) == render_ids(tiny_tokenizer, "what is the answer", text, chat)  # nothing re-tokenized
    response = enc[enc.response_start :]
    bounds = [0, *enc.step_boundaries]
    pieces = [tiny_tokenizer.decode(response[a:b]) for a, b in zip(bounds, bounds[1:], strict=False)]
    assert pieces == ["the answer is good\n", "so the answer is yes\n", "yes"]
    # what follows the last step (EOS, or the template's end of turn) belongs to no step
    assert enc.step_boundaries[-1] < len(response)
    with pytest.raises(ValueError, match="step 1 ends at character 3"):
        encode_response(tiny_tokenizer, "q", text, chat, step_ends=[5, 3])


def test_keep_last_tokens_moves_step_boundaries_with_their_tokens():
    # ids 1..10, response = ids 5..10 (index 4 on), steps [5, 6], [7, 8], [9, 10]
    enc = EncodedResponse(list(range(1, 11)), 4, (2, 4, 6))
    assert keep_last_tokens(enc, 10) == (enc, False)
    cut, was_cut = keep_last_tokens(enc, 8)  # only prompt tokens go
    assert was_cut and (list(cut), cut.response_start, cut.step_boundaries) == (
        [3, *range(4, 11)],
        2,
        (2, 4, 6),
    )
    cut, _ = keep_last_tokens(enc, 5)  # 5 is gone and 6 becomes context: step 0 is left empty
    assert (list(cut), cut.response_start, cut.step_boundaries) == ([6, 7, 8, 9, 10], 1, (0, 2, 4))
    with pytest.raises(ValueError, match="max_length"):
        keep_last_tokens(enc, 1)
