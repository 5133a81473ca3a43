"""What the Crome builder asks its oracle LLM, and how each reply is read and validated.

A request is a chat: one user message holding the task, the conversation and (for rewrites) the answer, and,
with `prefill` (the default), the opening of the assistant's JSON reply, which the model continues (both
sampling backends continue a final assistant message; servers that cannot, such as OpenAI's own API, need
`--no-prefill`). The reply read is prefill + sample. Asking small models to continue `{"attributes": ["`
turns most of their prose into JSON; large models do not need it.

Reading a reply: the first `{` opens the JSON object, decoded with literal newlines allowed inside strings
(small models write them); text before or after it (a code fence, a remark) is ignored. Every failure is a
`MalformedReply` whose `reason` is one of a few fixed phrases, which the builder counts per stage and
attribute and then skips; nothing here raises anything else.

  rubric            {"attributes": [name, ...]}  the causal qualities that decide how good an answer is
  degrade/upgrade   {"rewritten": text}          the answer made worse / better along one attribute only
  neutral           {"rewritten": text}          the answer restyled, content kept
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from rewardmodels.data_builders.schema import text_of
from rewardmodels.data_builders.spurious import numbers_in

Message = dict[str, str]

RUBRIC_PREFILL = '{"attributes": ["'
REWRITE_PREFILL = '{"rewritten": "'
DIRECTIONS = ("degrade", "upgrade")
# Attribute names that describe how an answer looks rather than what it says; Crome's rubrics are causal
# qualities only, so an oracle that lists these has not followed the task, and they are dropped.
SPURIOUS_ATTRIBUTE_WORDS = frozenset(
    {"length", "format", "formatting", "style", "tone", "verbosity", "markdown", "wording", "brevity"}
    | {"detailed", "concise", "conciseness"}
)
# What the format examples show in place of real content; small models copy them verbatim.
PLACEHOLDERS = frozenset({"quality", "qualities", "attribute", "the new answer", "new answer"})
MAX_ATTRIBUTE_CHARS = 40
MAX_ATTRIBUTE_WORDS = 5

RUBRIC_TASK = (
    "You judge answers to the conversation below. List the qualities that truly decide how good the "
    "assistant's final answer is for this conversation (for example: factual accuracy, relevance, "
    "completeness, safety, harmlessness, helpfulness). Do not list style, length or formatting.\n"
    'Reply with JSON only, in this form: {"attributes": ["<quality>", "<quality>", "<quality>"]}'
)
REWRITE_TASKS = {
    "degrade": "Rewrite the answer so that it is clearly WORSE in one quality only: {attribute}. Keep its "
    "length, tone and format about the same, and change nothing else.",
    "upgrade": "Rewrite the answer so that it is clearly BETTER in one quality only: {attribute}. Keep its "
    "length, tone and format about the same, and change nothing else.",
    "neutral": "Rewrite the answer in a different style: reword it, reorder it or reformat it, but keep "
    "every fact, claim, number and its quality exactly the same. Add no information and remove none.",
}
REWRITE_FORMAT = 'Reply with JSON only, in this form: {"rewritten": "<the new answer>"}'


class MalformedReply(ValueError):
    """An oracle reply that cannot be used; `reason` is a short fixed phrase, counted in the statistics."""

    def __init__(self, reason: str, detail: str = ""):
        self.reason, self.detail = reason, detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


@dataclass(frozen=True)
class OracleRequest:
    """A prompt for the sampler and the text the reply starts with (prepended to the sample)."""

    messages: list[Message]
    prefill: str

    def reply(self, sample: str) -> str:
        return self.prefill + sample


def render_conversation(prompt, max_chars: int) -> str:
    """A prompt (text or chat messages) as a plain transcript 'User: ...' / 'Assistant: ...', keeping its
    last `max_chars` characters (the turns nearest the answer matter most), cut marked with '...'."""
    if isinstance(prompt, str):
        text = prompt.strip()
    else:
        names = {"user": "User", "assistant": "Assistant", "system": "System"}
        text = "\n\n".join(
            f"{names.get(m['role'], m['role'].title())}: {m['content'].strip()}" for m in prompt
        )
    return text if len(text) <= max_chars else "..." + text[len(text) - max_chars :]


def _request(task: str, body: str, prefill: str, use_prefill: bool) -> OracleRequest:
    messages = [{"role": "user", "content": f"{task}\n\n{body}"}]
    if use_prefill:
        messages.append({"role": "assistant", "content": prefill})
    return OracleRequest(messages, prefill if use_prefill else "")


def rubric_request(prompt, *, max_chars: int = 2000, prefill: bool = True) -> OracleRequest:
    body = f"Conversation:\n{render_conversation(prompt, max_chars)}"
    return _request(RUBRIC_TASK, body, RUBRIC_PREFILL, prefill)


def rewrite_request(
    kind: str, prompt, answer, attribute: str | None = None, *, max_chars: int = 2000, prefill: bool = True
) -> OracleRequest:
    """`kind` is degrade, upgrade (along `attribute`) or neutral."""
    if kind not in REWRITE_TASKS:
        raise ValueError(f"rewrite kind must be one of {', '.join(REWRITE_TASKS)}, got {kind!r}")
    if kind != "neutral" and not attribute:
        raise ValueError(f"a {kind} rewrite needs an attribute")
    task = REWRITE_TASKS[kind].format(attribute=attribute) + "\n" + REWRITE_FORMAT
    body = f"Conversation:\n{render_conversation(prompt, max_chars)}\n\nAnswer:\n{text_of(answer).strip()}"
    return _request(task, body, REWRITE_PREFILL, prefill)


# ---- reading replies ----------------------------------------------------------------------------------


def parse_json_object(reply: str) -> dict:
    """The JSON object that the first `{` of `reply` opens (literal newlines allowed in its strings)."""
    start = reply.find("{")
    if start < 0:
        raise MalformedReply("no JSON object", reply[:80])
    try:
        value, _ = json.JSONDecoder(strict=False).raw_decode(reply, start)
    except json.JSONDecodeError as e:
        # A reply that stops inside the object most often ran out of tokens.
        ran_out = e.msg.startswith("Unterminated") or e.pos >= len(reply.rstrip())
        reason = "unterminated JSON" if ran_out else "invalid JSON"
        raise MalformedReply(reason, e.msg) from None
    if not isinstance(value, dict):
        raise MalformedReply("not a JSON object", type(value).__name__)
    return value


def normalise_attribute(name: str) -> str:
    """'  Factual Accuracy. ' -> 'factual accuracy': lower case, inner whitespace collapsed, punctuation at
    the ends removed."""
    return re.sub(r"\s+", " ", name).strip().strip(".,;:!?\"'`*-_ ").lower()


def parse_rubric(reply: str, max_attributes: int) -> list[str]:
    """The attribute names of a rubric reply: at most `max_attributes`, normalised, distinct, each of 2 to
    MAX_ATTRIBUTE_CHARS characters and at most MAX_ATTRIBUTE_WORDS words with a letter in it, none naming a
    spurious quality (SPURIOUS_ATTRIBUTE_WORDS) or copying the format example (PLACEHOLDERS, `<...>`).
    Items may be strings or {"name": ...} objects."""
    value = parse_json_object(reply).get("attributes")
    if not isinstance(value, list):
        raise MalformedReply("no attributes list", type(value).__name__)
    names: list[str] = []
    for item in value:
        raw = item.get("name") if isinstance(item, dict) else item
        if not isinstance(raw, str):
            continue
        name = normalise_attribute(raw)
        words = name.split()
        if not (2 <= len(name) <= MAX_ATTRIBUTE_CHARS and len(words) <= MAX_ATTRIBUTE_WORDS):
            continue
        if not re.search(r"[a-z]", name) or SPURIOUS_ATTRIBUTE_WORDS.intersection(words):
            continue
        if name in PLACEHOLDERS or "<" in name or ">" in name:
            continue
        if name not in names:
            names.append(name)
    if not names:
        raise MalformedReply("no usable attributes", json.dumps(value)[:80])
    return names[:max_attributes]


def _squash(text: str) -> str:
    return " ".join(text.split()).lower()


def is_repetitive(text: str) -> bool:
    """Four or more sentences of which fewer than half are distinct: a small model's loop."""
    sentences = [_squash(x) for x in re.split(r"(?<=[.!?])\s+", text.strip()) if x.strip()]
    return len(sentences) >= 4 and len(set(sentences)) < 0.5 * len(sentences)


def parse_rewrite(
    reply: str,
    original: str,
    *,
    keep_numbers: bool = False,
    min_ratio: float = 0.2,
    max_ratio: float = 4.0,
    echoes: Sequence[str] = (),
) -> str:
    """The rewritten answer of a rewrite reply. Refused: no string `rewritten`; empty; the format example
    (`<the new answer>`) copied; the original again (ignoring case and whitespace); a length outside
    [min_ratio, max_ratio] x the original's; a loop (`is_repetitive`); a text that repeats a line of the
    instructions (`echoes`); with `keep_numbers` (neutral rewrites), another set of numbers than the
    original's."""
    value = parse_json_object(reply).get("rewritten")
    if not isinstance(value, str):
        raise MalformedReply("no rewritten text", type(value).__name__)
    text = value.strip()
    if not text:
        raise MalformedReply("empty rewrite")
    if _squash(text).strip("<>.") in PLACEHOLDERS:
        raise MalformedReply("copied the format example")
    if _squash(text) == _squash(original):
        raise MalformedReply("unchanged rewrite")
    ratio = len(text) / max(1, len(original.strip()))
    if ratio < min_ratio:
        raise MalformedReply("rewrite too short", f"{ratio:.2f} x the original")
    if ratio > max_ratio:
        raise MalformedReply("rewrite too long", f"{ratio:.2f} x the original")
    if is_repetitive(text):
        raise MalformedReply("repetitive rewrite")
    if any(e and _squash(e) in _squash(text) for e in echoes):
        raise MalformedReply("echoed the instructions")
    if keep_numbers and numbers_in(text) != numbers_in(original):
        raise MalformedReply("neutral rewrite changed numbers")
    return text


def instruction_echoes(kind: str, attribute: str | None = None) -> list[str]:
    """Lines of a request's own instructions that must not come back in its answer."""
    return [REWRITE_TASKS[kind].format(attribute=attribute or "").split(":")[0], REWRITE_FORMAT]


__all__ = [
    "DIRECTIONS",
    "MalformedReply",
    "OracleRequest",
    "RUBRIC_PREFILL",
    "REWRITE_PREFILL",
    "SPURIOUS_ATTRIBUTE_WORDS",
    "instruction_echoes",
    "normalise_attribute",
    "parse_json_object",
    "parse_rewrite",
    "parse_rubric",
    "render_conversation",
    "rewrite_request",
    "rubric_request",
]
