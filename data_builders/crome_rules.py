"""A rule-based Crome oracle for tasks whose causal attribute is known, and spurious-correlation pairs.

`RuleOracle` is a `rewardmodels.sampling.Generator`: `crome.augment(rows, Sampler(RuleOracle(rules), cache,
params), settings)` runs the Crome pipeline unchanged (cache and fingerprint included), with every oracle
reply worked out by rule instead of sampled. It reads each request the way an LLM would have to: from the
rendered text of `crome_oracle.rubric_request` / `rewrite_request` (`read_request`), and it replies in the JSON
that `crome_oracle.parse_rubric` / `parse_rewrite` accept, continuing the assistant prefill when there is one.

  rubric    {"attributes": rules.attributes}
  degrade   the answer made worse along the attribute (`rules.degrade`): a causal pair chosen > degraded
  upgrade   the answer made better along the attribute (`rules.upgrade`): a causal pair upgraded > rejected
  neutral   the answer restyled with its content (every number) kept (`rules.restyle`)

A rewrite asked along an attribute the task does not have, or one its rule cannot apply to (an answer that is
already right, a token that is not there), is answered with the answer unchanged, which the builder counts as
malformed ("unchanged rewrite") and skips: the oracle never invents a pair its rule does not justify.

Tasks (`TaskRules`, a small description: a name, the attributes and three rules):
  arithmetic_answer_rules   synthetic task (a), answer slips (`data_builders/synthetic.py`); attribute
                            "correct final answer"; degrade: the last `Answer: v` line misreports v as
                            v + d, d = offsets[seed mod len(offsets)] (never 0); upgrade: v recomputed from the
                            working lines `x op n = r` (v = x_1 op_1 n_1 op_2 n_2 ...; the lines themselves are
                            left alone); restyle: every working line `x op n = r` reworded `x op n gives r`
  planted_token_rules       a planted token marks a bad answer; attribute "absence of the planted token";
                            degrade: word k = seed mod (number of words) replaced by the token; upgrade: every
                            token replaced by a stand-in word ("the"), so causal pairs keep their length;
                            restyle: a "- " list, one word a line (whitespace alone
                            would not do: the builder compares answers with whitespace collapsed)

`spurious_pairs` builds the data for the robustness test: a neutral transform put on the chosen side with
probability `chosen_share`, else on the rejected side (its docstring has the construction).
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rewardmodels.data_builders import crome_oracle as oracle
from rewardmodels.data_builders.spurious import TRANSFORMS, transform_response
from rewardmodels.sampling import Prompt, SamplingParams, continues_final_message

# Enters the fingerprint, so cached replies of older rules are never reused after a rule changes.
RULES_VERSION = 1
ARITHMETIC_ATTRIBUTE = "correct final answer"
PLANTED_ATTRIBUTE = "absence of the planted token"
DEFAULT_OFFSETS = (-9, -7, -5, -3, 3, 5, 7, 9)

_ANSWER_LINE = re.compile(r"^Answer: (-?\d+)[ \t]*$", re.MULTILINE)
_WORKING_LINE = re.compile(r"^(-?\d+) ([+-]) (\d+) = (-?\d+)[ \t]*$", re.MULTILINE)
_ANSWER_MARK = "\n\nAnswer:\n"  # how `rewrite_request` introduces the answer after the conversation


@dataclass(frozen=True)
class TaskRules:
    """What a `RuleOracle` knows about a task. `name` must identify the rules and their parameters: it is the
    oracle's cache identity. `degrade(answer, seed)` / `upgrade(answer, seed)` return the rewritten answer
    (the answer itself where the rule does not apply); `restyle(answer)` keeps every number."""

    name: str
    attributes: tuple[str, ...]
    degrade: Callable[[str, int], str]
    upgrade: Callable[[str, int], str]
    restyle: Callable[[str], str]


# ---- synthetic task (a): answer slips ------------------------------------------------------------------


def misreport_answer(text: str, offset: int) -> str:
    """`text` with the number of its last `Answer: v` line replaced by v + offset (unchanged without one)."""
    found = list(_ANSWER_LINE.finditer(text))
    if not found or offset == 0:
        return text
    m = found[-1]
    return f"{text[: m.start(1)]}{int(m.group(1)) + offset}{text[m.end(1) :]}"


def recomputed_answer(text: str) -> int | None:
    """The chain's value from the working lines `x op n = r`: x of the first line, then each line's op and n
    applied in order (the written results r are ignored, so a slip in one of them does not carry)."""
    lines = _WORKING_LINE.findall(text)
    if not lines:
        return None
    value = int(lines[0][0])
    for _, op, n, _ in lines:
        value = value + int(n) if op == "+" else value - int(n)
    return value


def correct_answer(text: str) -> str:
    """`text` with its last `Answer:` line set to `recomputed_answer` (unchanged when either is missing)."""
    found = list(_ANSWER_LINE.finditer(text))
    value = recomputed_answer(text)
    if not found or value is None:
        return text
    m = found[-1]
    return f"{text[: m.start(1)]}{value}{text[m.end(1) :]}"


def reword_working(text: str) -> str:
    """Every working line `x op n = r` written `x op n gives r`: the same numbers, another wording."""
    return _WORKING_LINE.sub(lambda m: f"{m.group(1)} {m.group(2)} {m.group(3)} gives {m.group(4)}", text)


def arithmetic_answer_rules(offsets: Sequence[int] = DEFAULT_OFFSETS) -> TaskRules:
    """The rules of synthetic task (a), answer slips (module docstring); `offsets` are the misreports."""
    offsets = tuple(int(d) for d in offsets)
    if not offsets or 0 in offsets:
        raise ValueError(
            f"offsets must be non-empty and non-zero (a zero misreport is no slip), got {offsets}"
        )
    return TaskRules(
        name=f"arithmetic-answer(offsets={','.join(map(str, offsets))})",
        attributes=(ARITHMETIC_ATTRIBUTE,),
        degrade=lambda text, seed: misreport_answer(text, offsets[seed % len(offsets)]),
        upgrade=lambda text, seed: correct_answer(text),
        restyle=reword_working,
    )


# ---- planted token ---------------------------------------------------------------------------------------


def replace_word(text: str, position: int, word: str) -> str:
    """`text` with its word number `position` (0-based; words are runs of non-space) replaced by `word`,
    whitespace kept; unchanged when it has fewer words."""
    parts = re.split(r"(\s+)", text)  # words at even indices (the first is "" before leading space)
    slots = [i for i in range(0, len(parts), 2) if parts[i]]
    if position >= len(slots):
        return text
    parts[slots[position]] = word
    return "".join(parts)


def replace_every(text: str, old: str, new: str) -> str:
    """`text` with every word equal to `old` replaced by `new`, whitespace kept."""
    parts = re.split(r"(\s+)", text)
    return "".join(new if i % 2 == 0 and p == old else p for i, p in enumerate(parts))


def planted_token_rules(token: str, stand_in: str = "the") -> TaskRules:
    """The rules of a task whose only causal signal is `token` planted in the bad answer (module docstring):
    the token takes a word's place, so a causal pair keeps its length (the rewrite instructions ask for
    that, and a tiny model would otherwise learn "one word shorter" instead of "no token")."""
    for name, word in (("token", token), ("stand_in", stand_in)):
        if not word or any(c.isspace() for c in word):
            raise ValueError(f"{name} must be one non-empty word, got {word!r}")
    if token == stand_in:
        raise ValueError("the planted token and its stand-in must differ")

    def degrade(text: str, seed: int) -> str:
        words = text.split()
        if token in words or not words:
            return text  # already bad, or nothing to replace
        return replace_word(text, seed % len(words), token)

    return TaskRules(
        name=f"planted-token({token},stand_in={stand_in})",
        attributes=(PLANTED_ATTRIBUTE,),
        degrade=degrade,
        upgrade=lambda text, seed: replace_every(text, token, stand_in),
        restyle=lambda text: "\n".join(f"- {word}" for word in text.split()),
    )


# ---- reading requests and answering them ---------------------------------------------------------------


@dataclass(frozen=True)
class ParsedRequest:
    """A Crome oracle request read back from its text: `kind` rubric, degrade, upgrade or neutral; the
    rewrite's `attribute` (normalised as `parse_rubric` does) and `answer`; the prefill it continues."""

    kind: str
    conversation: str
    attribute: str | None = None
    answer: str | None = None
    prefill: str = ""


def read_request(prompt: Prompt) -> ParsedRequest:
    """The request a chat prompt of `crome_oracle.rubric_request` / `rewrite_request` holds. The answer is
    what follows the last "\\n\\nAnswer:\\n" (a conversation that contains that line is therefore read up to
    the answer's own). A prompt of another shape is a ValueError."""
    if isinstance(prompt, str) or not prompt or prompt[0].get("role") != "user":
        raise ValueError("a Crome oracle request is a chat that opens with the user's task")
    prefill = prompt[-1]["content"] if continues_final_message(prompt) else ""
    text = prompt[0]["content"]
    if text.startswith(oracle.RUBRIC_TASK + "\n\nConversation:\n"):
        return ParsedRequest(
            "rubric", text[len(oracle.RUBRIC_TASK) + len("\n\nConversation:\n") :], prefill=prefill
        )
    for kind, task in oracle.REWRITE_TASKS.items():
        head, _, tail = task.partition("{attribute}")
        if not text.startswith(head):
            continue
        attribute = None
        rest = text[len(head) :]
        if kind != "neutral":
            attribute, found, rest = rest.partition(tail)
            if not found:
                continue
            attribute = oracle.normalise_attribute(attribute)
        opening = f"\n{oracle.REWRITE_FORMAT}\n\nConversation:\n"
        if not rest.startswith(opening) or _ANSWER_MARK not in rest:
            break
        conversation, _, answer = rest[len(opening) :].rpartition(_ANSWER_MARK)
        return ParsedRequest(kind, conversation, attribute, answer, prefill)
    raise ValueError(f"not a Crome oracle request: {text[:80]!r}")


class RuleOracle:
    """A deterministic Crome oracle for a task with known rules (module docstring); a `Generator`."""

    def __init__(self, rules: TaskRules):
        self.rules = rules
        self.fingerprint = f"rule-oracle-v{RULES_VERSION}:{rules.name}"

    def __repr__(self) -> str:
        return f"RuleOracle({self.rules.name!r})"

    def build_prompt(self, problem: str, prefix: Sequence[str], params: SamplingParams) -> Prompt:
        raise TypeError("RuleOracle answers Crome oracle requests only, not math-continuation prompts")

    def reply(self, request: ParsedRequest, seed: int) -> str:
        """The whole JSON reply (prefill included) to `request`; `seed` picks among a rule's choices."""
        if request.kind == "rubric":
            return json.dumps({"attributes": list(self.rules.attributes)}, ensure_ascii=False)
        answer = request.answer or ""
        known = {oracle.normalise_attribute(a) for a in self.rules.attributes}
        if request.kind == "neutral":
            text = self.rules.restyle(answer)
        elif request.attribute not in known:
            text = answer  # not an attribute of this task: no rule, so no rewrite
        elif request.kind == "degrade":
            text = self.rules.degrade(answer, seed)
        else:
            text = self.rules.upgrade(answer, seed)
        return json.dumps({"rewritten": text}, ensure_ascii=False)

    def generate(self, prompts: Sequence[Prompt], params: SamplingParams, seeds: Sequence[int]) -> list[str]:
        """Row r's reply to `prompts[r]` with seed `seeds[r]`, less the prefill the prompt ends with (the
        builder prepends it again). Sampling settings are ignored: the rules are deterministic."""
        if len(prompts) != len(seeds):
            raise ValueError(f"{len(prompts)} prompts but {len(seeds)} seeds")
        out = []
        for prompt, seed in zip(prompts, seeds, strict=True):
            request = read_request(prompt)
            full = self.reply(request, seed)
            if not full.startswith(request.prefill):
                raise ValueError(f"{self!r} cannot continue the prefill {request.prefill!r}")
            out.append(full[len(request.prefill) :])
        return out


# ---- spurious-correlation pairs -------------------------------------------------------------------------


def spurious_pairs(
    rows: Sequence[dict], transform: str = "filler", chosen_share: float = 0.9, seed: int = 0
) -> list[dict]:
    """Preference rows with a spurious feature correlated with the label by construction.

    For row i, u_i ~ U(0, 1) from `random.Random(f"spurious-{seed}")` (one draw per row, in order); the
    neutral transform `transform` (`spurious.TRANSFORMS`, through `transform_response`, so it never changes
    content) rewrites the chosen answer when u_i < chosen_share, else the rejected one. So P(transform on
    chosen) = chosen_share: 1.0 puts it on every chosen side (the unflipped test set), 0.0 on every rejected
    side (the flipped test set), and e.g. 0.9 makes it predict the label 90% of the time in training.
    Each row keeps its other fields and gains `spurious_transform` and `spurious_side` ("chosen" or
    "rejected"; None when the transform leaves that answer unchanged, so the row carries no spurious cue)."""
    if transform not in TRANSFORMS:
        raise ValueError(f"unknown transform {transform!r}; known: {', '.join(TRANSFORMS)}")
    if not 0.0 <= chosen_share <= 1.0:
        raise ValueError(f"chosen_share must be in [0, 1], got {chosen_share}")
    rng = random.Random(f"spurious-{seed}")
    out = []
    for row in rows:
        side = "chosen" if rng.random() < chosen_share else "rejected"
        changed = transform_response(transform, row[side])
        applied = changed is not row[side]
        out.append(
            {
                **row,
                side: changed,
                "spurious_transform": transform,
                "spurious_side": side if applied else None,
            }
        )
    return out


__all__ = [
    "ARITHMETIC_ATTRIBUTE",
    "PLANTED_ATTRIBUTE",
    "ParsedRequest",
    "RuleOracle",
    "TaskRules",
    "arithmetic_answer_rules",
    "correct_answer",
    "misreport_answer",
    "planted_token_rules",
    "read_request",
    "recomputed_answer",
    "replace_every",
    "replace_word",
    "reword_working",
    "spurious_pairs",
]
