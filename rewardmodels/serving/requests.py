"""Request bodies to checked values: every way a body can be wrong becomes a `RequestError` with the HTTP
status and a message that names the field and the item, before anything is queued or tokenized.

Bodies (JSON objects; unknown keys are ignored, so OpenRLHF's `prompts`, `labels` and `metas` pass):

  POST /get_reward   {"query": [text, ...]}                 OpenRLHF: each text the decoded prompt + response
                     or {"prompts": [...], "responses": [...]}
  POST /score        {"prompts": [...], "responses": [...]}  a prompt or response is a string or chat messages;
                     "calibrated": true/false? overrides the server's --calibrated for this request
                     + "references": [text, ...]             for scorers that score against a reference answer
  POST /score_steps  {"prompts": [...], "steps": [[step, ...], ...], "aggregation": "min"?}
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from rewardmodels.steps import PROBABILITY_AGGREGATIONS


class RequestError(ValueError):
    """A request the server refuses: `status` is the HTTP status, `headers` any it must carry (Retry-After)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


@dataclass(frozen=True)
class Limits:
    """What one request may hold."""

    max_items: int = 256  # sequences per request
    max_text_chars: int = 100_000  # characters per text (a prompt, a response, a query or a step)


def decode_body(raw: bytes) -> dict:
    """The body as a JSON object (400 for bad UTF-8, bad JSON or another JSON type)."""
    try:
        body = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise RequestError(400, f"the body is not UTF-8: byte {e.start} ({e.reason})") from None
    except json.JSONDecodeError as e:
        raise RequestError(
            400, f"the body is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}"
        ) from None
    if not isinstance(body, dict):
        raise RequestError(400, f"the body must be a JSON object, got {json_type(body)}")
    return body


def json_type(value) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}
    if isinstance(value, bool) or value is None:
        return names[type(value)]
    if isinstance(value, (int, float)):
        return "a number"
    return names.get(type(value), type(value).__name__)


def items_of(body: dict, field: str, limits: Limits) -> list:
    """body[field] as a non-empty list within the item limit."""
    if field not in body:
        raise RequestError(400, f"missing field {field!r}")
    value = body[field]
    if not isinstance(value, list):
        raise RequestError(400, f"field {field!r} must be a list, got {json_type(value)}")
    if not value:
        raise RequestError(400, f"field {field!r} is empty; send at least one item")
    if len(value) > limits.max_items:
        raise RequestError(
            413,
            f"field {field!r} has {len(value)} items; this server takes at most {limits.max_items} per request",
        )
    return value


def check_text(value, where: str, limits: Limits) -> str:
    if not isinstance(value, str):
        raise RequestError(400, f"{where} must be a string, got {json_type(value)}")
    if len(value) > limits.max_text_chars:
        raise RequestError(
            413, f"{where} has {len(value)} characters; this server takes at most {limits.max_text_chars}"
        )
    return value


def check_turns(value, where: str, limits: Limits):
    """A string, or chat messages: a non-empty list of {"role": str, "content": str}."""
    if isinstance(value, str):
        return check_text(value, where, limits)
    if not isinstance(value, list) or not value:
        raise RequestError(
            400, f"{where} must be a string or a non-empty list of messages, got {json_type(value)}"
        )
    for j, message in enumerate(value):
        if not isinstance(message, dict):
            raise RequestError(400, f"{where}[{j}] must be a message object, got {json_type(message)}")
        for key in ("role", "content"):
            if key not in message:
                raise RequestError(400, f"{where}[{j}] has no {key!r}")
            check_text(message[key], f"{where}[{j}].{key}", limits)
    return value


def same_length(first: str, a: list, second: str, b: list) -> None:
    if len(a) != len(b):
        raise RequestError(400, f"{len(a)} {first} but {len(b)} {second}; send one of each per sample")


def parse_texts(body: dict, limits: Limits) -> list[str]:
    """OpenRLHF's `query`: pre-formatted prompt + response texts."""
    queries = items_of(body, "query", limits)
    return [check_text(q, f"query[{i}]", limits) for i, q in enumerate(queries)]


def parse_pairs(body: dict, limits: Limits) -> tuple[list, list]:
    """`prompts` and `responses`, one of each per sample."""
    prompts = items_of(body, "prompts", limits)
    responses = items_of(body, "responses", limits)
    same_length("prompts", prompts, "responses", responses)
    prompts = [check_turns(p, f"prompts[{i}]", limits) for i, p in enumerate(prompts)]
    responses = [check_turns(r, f"responses[{i}]", limits) for i, r in enumerate(responses)]
    return prompts, responses


def parse_references(body: dict, limits: Limits, count: int) -> list[str]:
    """`references`: one non-empty reference answer per sample, `count` of them."""
    references = items_of(body, "references", limits)
    if len(references) != count:
        raise RequestError(
            400, f"{count} prompts but {len(references)} references; send one reference answer per sample"
        )
    checked = [check_text(r, f"references[{i}]", limits) for i, r in enumerate(references)]
    empty = [i for i, r in enumerate(checked) if not r.strip()]
    if empty:
        raise RequestError(400, f"references[{empty[0]}] is empty; send the reference answer")
    return checked


def parse_steps(body: dict, limits: Limits) -> tuple[list, list[list[str]], str | None]:
    """`prompts`, `steps` (a non-empty list of step strings per sample) and an optional `aggregation`."""
    prompts = items_of(body, "prompts", limits)
    steps = items_of(body, "steps", limits)
    same_length("prompts", prompts, "steps", steps)
    prompts = [check_turns(p, f"prompts[{i}]", limits) for i, p in enumerate(prompts)]
    checked = []
    for i, solution in enumerate(steps):
        if not isinstance(solution, list) or not solution:
            raise RequestError(
                400, f"steps[{i}] must be a non-empty list of strings, got {json_type(solution)}"
            )
        checked.append([check_text(s, f"steps[{i}][{j}]", limits) for j, s in enumerate(solution)])
    aggregation = body.get("aggregation")
    if aggregation is not None and aggregation not in PROBABILITY_AGGREGATIONS:
        allowed = ", ".join(PROBABILITY_AGGREGATIONS)
        raise RequestError(400, f"aggregation must be one of {allowed}, got {aggregation!r}")
    return prompts, checked, aggregation


def parse_calibrated(body: dict) -> bool | None:
    """The optional `calibrated` of a /score body: a boolean, or None when absent (or null)."""
    value = body.get("calibrated")
    if value is not None and not isinstance(value, bool):
        raise RequestError(400, f"field 'calibrated' must be true or false, got {json_type(value)}")
    return value


def get_reward_form(body: dict) -> str:
    """Which /get_reward body this is: "query" (OpenRLHF) or "pairs"."""
    if "query" in body:
        return "query"
    if "prompts" in body and "responses" in body:
        return "pairs"
    raise RequestError(
        400, "send {'query': [text, ...]} (OpenRLHF) or {'prompts': [...], 'responses': [...]}"
    )


__all__ = [
    "Limits",
    "RequestError",
    "decode_body",
    "get_reward_form",
    "parse_calibrated",
    "parse_pairs",
    "parse_references",
    "parse_steps",
    "parse_texts",
]
