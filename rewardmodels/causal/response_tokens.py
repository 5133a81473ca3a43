"""Where a response starts, and where each of its steps ends, in the token ids of prompt + response.

A (prompt, response) is rendered to one string (`tokenization.render_text`) and tokenized once with the
tokenizer's offset mapping; every boundary is read off those offsets, so the ids are exactly those that are
scored and nothing is re-tokenized in pieces. The rule for a boundary at character c:

    a token lies before c when all of its characters do (its end offset <= c)

so a token that merges the prompt's last characters with the response's first is a response token, and a token
that straddles two steps belongs to the later step. A token without characters (a BOS, or an EOS the tokenizer
adds, with offsets (0, 0)) sits just after the token before it.

Used by every causal-LM scorer (DPO; the implicit PRM's `score_steps`, whose step boundaries come from the
step list the caller passes, mapped through these offsets).
"""

from __future__ import annotations

import os
from bisect import bisect_right
from collections.abc import Sequence

from rewardmodels.tokenization import (
    as_messages,
    chat_text,
    common_prefix_length,
    render_text,
    tokenize_text,
    uses_chat_template,
)


class EncodedResponse(list):
    """Token ids of prompt + response. `response_start` indexes the first response token (at least 1, so it is
    predicted from something). Step k covers response tokens [step_boundaries[k-1], step_boundaries[k]), with
    step_boundaries[-1] read as 0: the form `logprobs.step_sums` takes."""

    def __init__(self, ids: Sequence[int], response_start: int, step_boundaries: Sequence[int] = ()):
        super().__init__(ids)
        self.response_start = response_start
        self.step_boundaries = tuple(step_boundaries)


def tokens_before(offsets: Sequence[tuple[int, int]]) -> list[float]:
    """Keys such that token i lies before character c exactly when keys[i] <= c, so `bisect_right(keys, c)`
    counts the tokens before c. A token without characters gets (end of the token before it) + 0.5: before c
    only when that token ends before c."""
    keys: list[float] = []
    last_end = 0
    for start, end in offsets:
        if end > start:
            last_end = max(last_end, end)
            key = float(last_end)
        else:
            key = max(start, last_end) + 0.5
        keys.append(max(key, keys[-1]) if keys else key)
    return keys


def join_steps(steps: Sequence[str], separator: str) -> tuple[str, list[int]]:
    """`separator.join(steps)` and the character where each step ends in it. A separator belongs to the step
    before it: it is the mark that the step is finished."""
    ends, at = [], 0
    for k, step in enumerate(steps):
        at += len(step) + (len(separator) if k < len(steps) - 1 else 0)
        ends.append(at)
    return separator.join(steps), ends


def response_char_start(tokenizer, prompt, response, text: str, chat: bool) -> int:
    """The character of `text` (the full rendering) where the response begins: where the prompt rendered
    alone, with the template's generation prompt, stops matching it (which also handles templates that render
    earlier turns differently), or after the prompt's share of a plain join."""
    if not chat:
        return len(text) - len(response)
    messages = as_messages(prompt, [])
    head = chat_text(tokenizer, messages, add_generation_prompt=True) if messages else ""
    return len(os.path.commonprefix([head, text]))


def encode_response(
    tokenizer, prompt, response, use_chat_template: bool, step_ends: Sequence[int] | None = None
) -> EncodedResponse:
    """`render_ids`' ids, where the response starts and, given `step_ends` (character offsets into the
    `response` string where each step ends, as `join_steps` gives them), the step boundaries.

    A tokenizer without offsets (a slow one) falls back to the common token prefix with the prompt's own ids,
    and cannot map steps.
    """
    chat = uses_chat_template(use_chat_template, prompt, response)
    text = render_text(tokenizer, prompt, response, chat)
    first_char = response_char_start(tokenizer, prompt, response, text, chat)
    fast = bool(getattr(tokenizer, "is_fast", False))
    ids, offsets = tokenize_text(tokenizer, text, chat, with_offsets=fast)
    if offsets is not None:
        keys = tokens_before(offsets)
        start = bisect_right(keys, first_char)
    else:
        head_ids = tokenizer(text[:first_char], add_special_tokens=not chat)["input_ids"]
        start = common_prefix_length(head_ids, ids)
    start = max(1, min(start, len(ids) - 1))
    if step_ends is None:
        return EncodedResponse(ids, start)
    if offsets is None:
        name = type(tokenizer).__name__
        raise ValueError(f"{name} gives no offset mapping; step boundaries need a fast tokenizer")
    if not isinstance(response, str):
        raise ValueError("step ends are character offsets into the response text; got chat messages instead")
    at = text.find(response, first_char)
    if at < 0:
        raise ValueError("the chat template changed the response text, so its step offsets cannot be located")
    for k, end in enumerate(step_ends):
        previous = step_ends[k - 1] if k else 0
        if not previous <= end <= len(response):
            raise ValueError(
                f"step {k} ends at character {end}: step ends must not decrease (previous {previous}) and "
                f"must lie within the response's {len(response)} characters"
            )
    n = len(ids) - start
    boundaries = [min(max(bisect_right(keys, at + end) - start, 0), n) for end in step_ends]
    return EncodedResponse(ids, start, boundaries)


def keep_last_tokens(encoded: EncodedResponse, max_length: int) -> tuple[EncodedResponse, bool]:
    """The last `max_length` tokens (the prompt is cut first, as for pairs), and whether anything was cut.
    Step boundaries move with their tokens; a step whose tokens were all cut ends at response token 0."""
    if max_length < 2:
        raise ValueError(f"max_length must leave a context token and a response token, got {max_length}")
    if len(encoded) <= max_length:
        return encoded, False
    drop = len(encoded) - max_length
    start = max(1, encoded.response_start - drop)
    shift = encoded.response_start - drop - start  # negative when response tokens were cut
    bounds = [min(max(b + shift, 0), max_length - start) for b in encoded.step_boundaries]
    return EncodedResponse(encoded[drop:], start, bounds), True
