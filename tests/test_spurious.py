"""The deterministic spurious transforms on literal strings: the exact output of each, and that numbers,
code blocks and the final answer survive (or the text comes back unchanged)."""

from __future__ import annotations

import pytest

from rewardmodels.data_builders.spurious import (
    FILLER_CLOSING,
    FILLER_OPENING,
    TRANSFORMS,
    content_of,
    numbers_in,
    parse_transform_names,
    split_code,
    transform_response,
    transform_text,
)

CODE = "```python\ndef double(value):\n    return value * 2\n```\n"
TEXT = (
    "Here are some details:\n\n"
    "Preheat the oven to 180 degrees. Then bake the bread for 25 minutes.\n\n"
    + CODE
    + "\nThe **answer** is $\\boxed{42}$."
)


def test_whitespace_doubles_paragraph_breaks_and_sentence_spaces():
    out = transform_text("whitespace", "One sentence. Another one.\n\nSecond paragraph.")
    assert out == "One sentence.  Another one.\n\n\nSecond paragraph."


def test_bullets_turn_prose_paragraphs_into_items_and_leave_lists_and_answers():
    text = "First idea\nwraps here.\n\n- already a bullet\n\n# Answer\n\n17"
    expected = "- First idea\n  wraps here.\n\n- already a bullet\n\n# Answer\n\n17"
    assert transform_text("bullets", text) == expected


def test_headers_add_a_title_and_promote_short_colon_lines():
    text = "Steps to follow:\n\nMix the flour and water."
    expected = "## Response\n\n### Steps to follow:\n\nMix the flour and water."
    assert transform_text("headers", text) == expected


def test_plain_strips_markdown_but_keeps_numbered_items_and_the_answer_heading():
    text = "## Title\n\n- **bold** item\n* *italic* item\n1. first\n\n# Answer\n\n5"
    assert transform_text("plain", text) == "Title\n\nbold item\nitalic item\n1. first\n\n# Answer\n\n5"


def test_filler_wraps_the_text_with_neutral_sentences():
    assert transform_text("filler", "Paris.") == f"{FILLER_OPENING}\n\nParis.\n\n{FILLER_CLOSING}"
    assert not numbers_in(FILLER_OPENING + FILLER_CLOSING)


def test_typos_swap_letters_in_every_fourth_long_word_outside_code_and_math():
    text = "alpha bravo charlie delta `echoes` foxtrot golfing $hotel$ indigo juliet kilos"
    # long prose words in order: alpha bravo charlie delta | foxtrot golfing indigo juliet (4th, 8th swapped)
    assert transform_text("typos", text) == (
        "alpha bravo charlie dleta `echoes` foxtrot golfing $hotel$ indigo jluiet kilos"
    )


def test_answer_format_boxed_to_heading_and_back():
    out = transform_text("answer_format", "So $x = \\boxed{\\frac{1}{2}}$.")
    assert out == "So $x = \\frac{1}{2}$.\n\n# Answer\n\n\\frac{1}{2}"
    back = transform_text("answer_format", "Add them.\n\n# Answer\n\n17")
    assert back == "Add them.\n\nThe answer is $\\boxed{17}$."
    assert transform_text("answer_format", "No answer stated here.") == "No answer stated here."


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_every_transform_keeps_numbers_code_and_final_answer(name):
    out = transform_text(name, TEXT)
    before, after = content_of(TEXT), content_of(out)
    assert after == before
    assert before.numbers == {"180", "25", "2", "42"} and before.final_answer == "42"
    assert before.code_blocks == (CODE.rstrip(),)
    assert CODE in out


def test_every_transform_changes_the_sample_text():
    assert all(transform_text(name, TEXT) != TEXT for name in TRANSFORMS)


def test_unfenced_code_is_left_alone():
    body = "    total = 0\n    for item in items:\n        total += item\n    return total\n"
    assert split_code(body) == [(True, body)]
    for name in ("whitespace", "bullets", "plain", "typos"):
        assert transform_text(name, body) == body


def test_a_rewrite_that_would_change_content_is_refused():
    # Swapping letters in the prose answer would change the final answer: the text comes back unchanged.
    text = "alpha bravo. The answer is beautiful"
    assert TRANSFORMS["typos"].apply(text) != text
    assert transform_text("typos", text) == text


def test_transform_response_rewrites_the_last_message_only():
    messages = [{"role": "assistant", "content": "Paris."}]
    out = transform_response("filler", messages)
    assert out[0]["content"].startswith(FILLER_OPENING) and messages[0]["content"] == "Paris."
    assert transform_response("answer_format", messages) is messages


def test_parse_transform_names():
    assert parse_transform_names(None) == list(TRANSFORMS)
    assert parse_transform_names("typos, filler") == ["typos", "filler"]
    with pytest.raises(ValueError, match="unknown transform.*nope"):
        parse_transform_names("typos,nope")
