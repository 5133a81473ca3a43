"""Final answers of math solutions: where a solution states its answer, and whether it matches the gold one.

A solution's final answer is, in this order of precedence (the first rule that finds one wins):
  1. the content of its last `\\boxed{...}` (or `\\fbox{...}`), braces balanced;
  2. the first non-empty line after a `# Answer` heading (PRM800K's format);
  3. what follows the last "The answer is" / "The final answer is", to the end of its sentence (a period
     followed by white space) or line, without a trailing period or surrounding `$` / `\\(...\\)`.
Answers are compared by math-verify, so `0.5`, `1/2` and `\\frac{1}{2}` are one answer. A text in which
none of the rules finds an answer is handed to math-verify whole, which searches it on its own terms.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

STEP_JOIN = "\n\n"

BOX_COMMANDS = ("\\boxed", "\\fbox")
_ANSWER_HEADING = re.compile(r"^#\s*Answer\s*$", re.MULTILINE)
_ANSWER_IS = re.compile(r"the (?:final )?answer is\s*:?", re.IGNORECASE)
_SENTENCE_END = re.compile(r"\.\s|\n")
_NON_SPACE = re.compile(r"\S")


def _box_span(text: str) -> tuple[int, int, int] | None:
    """(where the last `\\boxed`/`\\fbox` command starts, its opening brace, its matching closing brace) in
    `text`; None when there is none or its braces never close."""
    starts = [(text.rfind(cmd), cmd) for cmd in BOX_COMMANDS]
    start, cmd = max(starts)
    if start < 0:
        return None
    i = start + len(cmd)
    while i < len(text) and text[i] == " ":
        i += 1
    if i >= len(text) or text[i] != "{":
        return None
    depth = 0
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return start, i, j
    return None


def last_boxed(text: str) -> str | None:
    """The content of the last `\\boxed{...}` / `\\fbox{...}` in `text`, with nested braces kept whole;
    None when there is none or its braces never close."""
    span = _box_span(text)
    return None if span is None else text[span[1] + 1 : span[2]].strip()


def _clean(answer: str) -> str:
    """An answer without surrounding whitespace, a trailing period, or enclosing `$`/`\\(...\\)`."""
    answer = answer.strip().rstrip(".").strip()
    if answer.startswith("\\(") and answer.endswith("\\)"):
        answer = answer[2:-2]
    return answer.strip("$").strip()


@dataclass(frozen=True)
class FinalAnswer:
    """Where a solution states its final answer: `text[:start]` is everything before the statement (the
    reasoning), `text[start:content_start]` the statement's lead-in (`\\boxed{`, the `# Answer` heading and
    the blank lines after it, or "The answer is "), and `answer` the answer as `extract_final_answer` gives it.
    `rule` names the rule that found it: "boxed", "heading" or "answer_is"."""

    answer: str
    start: int
    content_start: int
    rule: str


def locate_final_answer(text: str) -> FinalAnswer | None:
    """The solution's final answer and where it is stated, by the rules in the module docstring; None when no
    rule finds one."""
    box = _box_span(text)
    if box is not None:
        start, brace, close = box
        return FinalAnswer(text[brace + 1 : close].strip(), start, brace + 1, "boxed")
    heading = list(_ANSWER_HEADING.finditer(text))
    if heading:
        after = text[heading[-1].end() :]
        line = next((ln for ln in after.splitlines() if ln.strip()), None)
        if line is not None and _clean(line):
            content = _NON_SPACE.search(text, heading[-1].end()).start()
            return FinalAnswer(_clean(line), heading[-1].start(), content, "heading")
    stated = list(_ANSWER_IS.finditer(text))
    if stated:
        tail = text[stated[-1].end() :]
        rest = tail.lstrip()
        end = _SENTENCE_END.search(rest)
        answer = _clean(rest[: end.start()] if end else rest)
        if answer:
            content = stated[-1].end() + len(tail) - len(rest)
            return FinalAnswer(answer, stated[-1].start(), content, "answer_is")
    return None


def extract_final_answer(text: str) -> str | None:
    """The solution's final answer as a string, by the rules in the module docstring; None when no rule
    finds one."""
    located = locate_final_answer(text)
    return None if located is None else located.answer


def parse_gold(answer: str):
    """Gold answers are bare LaTeX ('\\frac{14}{3}'); math-verify finds them reliably inside $...$."""
    from math_verify import parse

    parsed = parse(f"${answer}$")
    return parsed if parsed else parse(answer)


def parse_answer(text: str):
    """math-verify's parse of the solution's final answer (`extract_final_answer`), or of the whole text
    when no rule finds one; an empty list when math-verify finds nothing."""
    from math_verify import parse

    answer = extract_final_answer(text)
    return parse_gold(answer) if answer is not None else parse(text)


def answers_match(reference, answer) -> bool:
    """Whether two parsed answers (`parse_gold`, `parse_answer`) are one answer by math-verify, `reference`
    being the gold one; an empty parse (no answer found) matches nothing."""
    from math_verify import verify

    return bool(reference) and bool(answer) and bool(verify(reference, answer))


def is_correct(text: str, gold) -> bool:
    """Whether the final answer in `text` matches `gold` (a string or an already parsed gold), by math-verify.
    A text in which no answer is found is not correct."""
    gold_parsed = parse_gold(gold) if isinstance(gold, str) else gold
    if not gold_parsed:
        return False
    return answers_match(gold_parsed, parse_answer(text))


def split_solution(text: str, split: str = STEP_JOIN, max_steps: int | None = None) -> list[str]:
    """A solution's non-empty steps (`steps.split_response`; none for a blank text); with `max_steps`, the
    tail is merged into the last step so that no text (and no final answer) is lost."""
    from rewardmodels.steps import split_response  # steps imports torch, which answer checking never needs

    steps = [s for s in split_response(text, split) if s.strip()]
    if max_steps and len(steps) > max_steps:
        steps = steps[: max_steps - 1] + [split.join(steps[max_steps - 1 :])]
    return steps
