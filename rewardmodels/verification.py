"""The verification format of a generative verifier: how a (problem, steps) pair becomes the verifier's
prompt, how a verification chain is written, and how one is read back. Pure functions over strings.

A format is a JSON template file; the default, `templates/verification_thinkprm.json`, is ThinkPRM's (the
user message of mukhal/ThinkPRM `utils/helper.py`, "Step i:" steps, "\\boxed{correct}" verdicts and the
question "Is the solution correct?"); `verification_thinkprm_think.json` is the same with the chain wrapped in
`<think>` ... `</think>`, as ThinkPRM wraps it for a tokenizer that has a `<think>` token. A user swaps it with
another file of the same fields (`load_format` takes a path, or a template's name: "thinkprm_think"):

  user_message        the user turn, with {problem} and {solution}
  solution_step       one step of the solution, with {i} (1-based) and {step}; solution_join between them
  chain_opener        what the assistant turn starts with, before the chain ("Let's verify step by step:")
  think_open          text before the chain opener that opens the thinking ("<think>\\n"; default "")
  think_close         text between the chain and its decision line that closes it ("\\n</think>"; default "")
  chain_step          the heading of step i's critique inside a chain, with {i}
  verdict_sentence    how a step's critique ends, with {verdict} = verdict_open + label + verdict_close
  verdict_labels      {"correct": ..., "incorrect": ...}, the labels inside the verdict
  decision_question   the question the score is read after; the decision line is question + " " + answer
  decision_answers    {"yes": ..., "no": ...}: the answers chains are trained on
  trigger_phrases     sequential scaling: round r + 2 of a chain opens with trigger_phrases[r]
  templated_*         the filler sentences of templated chains (written from gold labels, not by a model)

Placeholders are replaced literally (`str.replace`), so LaTeX braces need no escaping. A chain is the text
the verifier writes after the opener. Reading it back (`parse_chain`): the chain is cut at its first decision
question (or at its think_close tag, whichever comes first: `chain_body`); each "Step i:" heading opens step
i's section, which runs to the next heading; a section's last verdict is step i's verdict, and a later section
for the same step (a second round re-checking it) replaces an earlier one (a later section without a verdict
leaves it). Headings of steps the solution does not have are reported, never counted.

ProcessBench's critic prompt (`critic_prompt`, `vote_critic_index`) asks for the earliest wrong paragraph's index
in \\boxed{} (QwenLM/ProcessBench code/templates/critique_template.txt, verbatim in templates/), read back as
the official code does: int(the last \\boxed{...}), None when there is none or it is not an integer.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

TEMPLATES = Path(__file__).parent / "templates"
DEFAULT_FORMAT_PATH = TEMPLATES / "verification_thinkprm.json"
CRITIC_TEMPLATE_PATH = TEMPLATES / "processbench_critic.txt"
_PLACEHOLDERS = {
    "user_message": ("{problem}", "{solution}"),
    "solution_step": ("{i}", "{step}"),
    "chain_step": ("{i}",),
    "verdict_sentence": ("{verdict}",),
}


@dataclass(frozen=True)
class VerificationFormat:
    name: str
    user_message: str
    solution_step: str
    solution_join: str
    chain_opener: str
    chain_step: str
    verdict_sentence: str
    verdict_open: str
    verdict_close: str
    verdict_labels: dict[str, str]
    decision_question: str
    decision_answers: dict[str, str]
    trigger_phrases: tuple[str, ...] = ()
    think_open: str = ""
    think_close: str = ""
    templated_critique: str = "This step follows from the problem and the steps before it."
    templated_error: str = "This step contains a mistake."
    templated_after_error: str = "This step follows an incorrect step."
    description: str = field(default="", compare=False)

    @classmethod
    def from_dict(cls, data: dict, source: str = "verification format") -> VerificationFormat:
        """A format from a template's fields; a missing field, placeholder or label names itself."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{source}: unknown field(s) {', '.join(unknown)}")
        required = [n for n in known if n not in data and _has_no_default(cls, n)]
        if required:
            raise ValueError(f"{source}: missing field(s) {', '.join(sorted(required))}")
        for name, placeholders in _PLACEHOLDERS.items():
            for p in placeholders:
                if p not in data[name]:
                    raise ValueError(f"{source}: field '{name}' must contain the placeholder {p}")
        for name, keys in (("verdict_labels", ("correct", "incorrect")), ("decision_answers", ("yes", "no"))):
            value = data[name]
            if not isinstance(value, dict) or set(value) != set(keys) or not all(value.values()):
                raise ValueError(f"{source}: field '{name}' must map {' and '.join(keys)} to non-empty text")
            if len(set(value.values())) != 2:
                raise ValueError(f"{source}: field '{name}' needs two different texts, got {value}")
        return cls(**{**data, "trigger_phrases": tuple(data.get("trigger_phrases", ()))})

    def to_dict(self) -> dict:
        out = asdict(self)
        out["trigger_phrases"] = list(self.trigger_phrases)
        return out


def _has_no_default(cls, name: str) -> bool:
    from dataclasses import MISSING

    f = cls.__dataclass_fields__[name]
    return f.default is MISSING and f.default_factory is MISSING


def load_format(path: str | Path | None = None) -> VerificationFormat:
    """The format in a template file (JSON); ThinkPRM's when `path` is None. A bare name that is no file
    ("thinkprm_think") names the template `templates/verification_<name>.json`."""
    path = Path(path) if path else DEFAULT_FORMAT_PATH
    named = TEMPLATES / f"verification_{path.name}.json"
    if not path.exists() and path.name == str(path) and path.suffix == "" and named.is_file():
        path = named
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"verification format template not found: {path}") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a verification format is a JSON object of fields")
    return VerificationFormat.from_dict(data, str(path))


# ---- rendering -------------------------------------------------------------------------------------------


def render_solution(fmt: VerificationFormat, steps: Sequence[str]) -> str:
    """solution_join.join(solution_step with {i} = 1, 2, ... and {step} = the step, stripped)."""
    return fmt.solution_join.join(
        fmt.solution_step.replace("{i}", str(i)).replace("{step}", step.strip())
        for i, step in enumerate(steps, 1)
    )


def render_user_message(fmt: VerificationFormat, problem: str, steps: Sequence[str]) -> str:
    # {solution} first: a problem that happens to contain the text "{solution}" must stay as it is.
    solution = render_solution(fmt, steps)
    head, sep, tail = fmt.user_message.partition("{solution}")
    return head.replace("{problem}", problem.strip()) + solution + tail.replace("{problem}", problem.strip())


def verifier_prompt(
    fmt: VerificationFormat, problem: str, steps: Sequence[str], continuation: str = ""
) -> list[dict[str, str]]:
    """The chat the verifier continues: the user message, then the assistant turn opened with think_open +
    chain_opener (and `continuation`, the chain so far), which generation continues rather than answering
    anew."""
    return [
        {"role": "user", "content": render_user_message(fmt, problem, steps)},
        {"role": "assistant", "content": fmt.think_open + fmt.chain_opener + continuation},
    ]


def verdict_text(fmt: VerificationFormat, correct: bool) -> str:
    """verdict_sentence with {verdict} = verdict_open + the label + verdict_close."""
    label = fmt.verdict_labels["correct" if correct else "incorrect"]
    return fmt.verdict_sentence.replace("{verdict}", fmt.verdict_open + label + fmt.verdict_close)


def decision_line(fmt: VerificationFormat, correct: bool) -> str:
    """decision_question + " " + the trained answer (decision_answers yes/no)."""
    return f"{fmt.decision_question} {fmt.decision_answers['yes' if correct else 'no']}"


def close_chain(fmt: VerificationFormat, body: str, correct: bool) -> str:
    """A chain's end: body.rstrip() + think_close + "\\n" + the decision line (ThinkPRM, prm_dataset.py:568-571:
    "<think>\\n" + chain + "\\n</think>" + "\\nIs the solution correct? Yes")."""
    return body.rstrip() + fmt.think_close + "\n" + decision_line(fmt, correct)


def label_is_correct(label) -> bool:
    """A known gold step label read as correct: True, or a number of at least 0.5 (a soft MC label)."""
    return label is True or (label is not False and float(label) >= 0.5)


def first_wrong_step(labels: Sequence) -> int:
    """The index of the first step labelled wrong (False, or a number below 0.5), or -1; None is unknown."""
    return next(
        (i for i, label in enumerate(labels) if label is not None and not label_is_correct(label)), -1
    )


def fix_step_labels(labels: Sequence) -> list:
    """ThinkPRM's label fix (mukhal/ThinkPRM dataset/prm_dataset.py:198-212): every label before the last step
    labelled correct becomes True, so a step that later steps recover from counts as correct, and the first
    error is the first wrong step after the last correct one. [T, F, T, F] -> [T, T, T, F]; labels from the
    last correct one on are kept (None stays unknown)."""
    known = [i for i, label in enumerate(labels) if label is not None and label_is_correct(label)]
    last = known[-1] if known else -1
    return [True if i < last else label for i, label in enumerate(labels)]


def templated_chain(fmt: VerificationFormat, labels: Sequence) -> str:
    """A chain written from gold labels, not by a model (the clearly-labelled templated mode): every step up
    to the first wrong one gets the templated critique and its gold verdict, every later step is incorrect
    because it follows an incorrect step, and the decision is Yes exactly when no step is wrong. Labels up to
    the first wrong step (all of them when none is wrong) must be known."""
    wrong = first_wrong_step(labels)
    checked = len(labels) if wrong < 0 else wrong + 1
    if any(label is None for label in labels[:checked]):
        raise ValueError("a templated chain needs every label up to the first wrong step")
    lines = []
    for i in range(len(labels)):
        if wrong < 0 or i < wrong:
            critique, correct = fmt.templated_critique, True
        elif i == wrong:
            critique, correct = fmt.templated_error, False
        else:
            critique, correct = fmt.templated_after_error, False
        lines.append(f"{fmt.chain_step.replace('{i}', str(i + 1))}{critique} {verdict_text(fmt, correct)}")
    return close_chain(fmt, "\n" + "\n".join(lines), wrong < 0)


# ---- reading a chain back ----------------------------------------------------------------------------------


@dataclass
class ParsedChain:
    """What a chain says. `verdicts[k]`: True (correct), False (incorrect) or None (no verdict) for step k+1;
    `verdict_at[k]`: the character just after the verdict_open of that verdict (where the label's first token
    is predicted), or None; `extra_steps`: headings of steps the solution does not have; `decision`: the
    answer after the decision question (None when there is none or it is neither answer); `decision_at`: where
    the question starts (None when the chain never asks it)."""

    verdicts: list[bool | None]
    verdict_at: list[int | None]
    extra_steps: list[int]
    decision: bool | None
    decision_at: int | None

    @property
    def complete(self) -> bool:
        """Every step has a verdict."""
        return all(v is not None for v in self.verdicts)


def _heading_pattern(fmt: VerificationFormat) -> re.Pattern:
    before, _, after = fmt.chain_step.strip().partition("{i}")
    return re.compile(re.escape(before) + r"\s*(\d+)\s*" + re.escape(after))


def _verdict_pattern(fmt: VerificationFormat) -> re.Pattern:
    labels = sorted(fmt.verdict_labels.values(), key=len, reverse=True)  # longest first: no prefix matches
    alternatives = "|".join(re.escape(label) for label in labels)
    return re.compile(
        re.escape(fmt.verdict_open) + r"\s*(" + alternatives + r")\s*" + re.escape(fmt.verdict_close)
    )


def normalise_chain(fmt: VerificationFormat, text: str) -> str:
    """`\\boxed{\\text{correct}}` (and `\\boxed{\\textbf{ correct }}`, `\\boxed{ correct }`) become the plain
    verdict_open + label + verdict_close, so parsing and training see one spelling."""
    labels = "|".join(re.escape(x) for x in sorted(fmt.verdict_labels.values(), key=len, reverse=True))
    wrapped = re.compile(
        re.escape(fmt.verdict_open) + r"\s*(?:\\text(?:bf|rm|tt)?\s*\{\s*(" + labels + r")\s*\}|("
        + labels + r"))\s*" + re.escape(fmt.verdict_close)
    )  # fmt: skip
    return wrapped.sub(lambda m: fmt.verdict_open + (m.group(1) or m.group(2)) + fmt.verdict_close, text)


def _decision(fmt: VerificationFormat, text: str) -> tuple[bool | None, int | None]:
    at = text.find(fmt.decision_question)
    if at < 0:
        return None, None
    after = text[at + len(fmt.decision_question) :].lstrip()
    word = re.match(r"[^\s.,!]+", after)
    answer = word.group(0).lower() if word else ""
    if answer == fmt.decision_answers["yes"].lower():
        return True, at
    if answer == fmt.decision_answers["no"].lower():
        return False, at
    return None, at


def chain_body(fmt: VerificationFormat, text: str) -> tuple[str, bool]:
    """(the text before the chain's end, whether it ended): the end is its first decision question or, in a
    format with a think_close, the first closing tag (think_close stripped), whichever comes first."""
    tag = fmt.think_close.strip()
    ends = [i for i in (text.find(fmt.decision_question), text.find(tag) if tag else -1) if i >= 0]
    return (text[: min(ends)], True) if ends else (text, False)


def parse_chain(fmt: VerificationFormat, text: str, n_steps: int) -> ParsedChain:
    """The verdicts of a chain for a solution of `n_steps` steps (rules in the module docstring)."""
    decision, decision_at = _decision(fmt, text)
    body, _ = chain_body(fmt, text)
    verdicts: list[bool | None] = [None] * n_steps
    verdict_at: list[int | None] = [None] * n_steps
    extra: list[int] = []
    headings = list(_heading_pattern(fmt).finditer(body))
    verdict_re = _verdict_pattern(fmt)
    correct = fmt.verdict_labels["correct"]
    for h, heading in enumerate(headings):
        end = headings[h + 1].start() if h + 1 < len(headings) else len(body)
        found = list(verdict_re.finditer(body, heading.end(), end))
        number = int(heading.group(1))
        if not 1 <= number <= n_steps:
            if number not in extra:
                extra.append(number)
            continue
        if found:  # a later section's verdict for the same step replaces an earlier one
            verdicts[number - 1] = found[-1].group(1) == correct
            verdict_at[number - 1] = found[-1].start() + len(fmt.verdict_open)
    return ParsedChain(verdicts, verdict_at, extra, decision, decision_at)


def cut_after_last_verdict(fmt: VerificationFormat, text: str) -> str:
    """The chain up to the end of its decision line when it has one (the first), else up to the end of its
    last step verdict; text after that is dropped. A chain with neither is returned as it is."""
    decision, at = _decision(fmt, text)
    if at is not None and decision is not None:
        rest = text[at + len(fmt.decision_question) :]
        answer = re.match(r"\s*[^\s.,!]+", rest)
        return text[: at + len(fmt.decision_question) + answer.end()]
    body = text if at is None else text[:at]
    ends = [m.end() for m in _verdict_pattern(fmt).finditer(body)]
    return body[: ends[-1]] if ends else text


def verdicts_agree(verdicts: Sequence[bool | None], labels: Sequence) -> bool:
    """Every verdict matches its gold label up to and including the first wrong step (every step when none
    is wrong); steps whose label is unknown (None) are not checked."""
    wrong = first_wrong_step(labels)
    checked = len(labels) if wrong < 0 else wrong + 1
    for verdict, label in zip(verdicts[:checked], labels[:checked], strict=True):
        if label is None:
            continue
        if verdict is None or verdict != label_is_correct(label):
            return False
    return True


# ---- ProcessBench's critic prompt ---------------------------------------------------------------------------


def critic_prompt(problem: str, steps: Sequence[str]) -> list[dict[str, str]]:
    """ProcessBench's official critic chat (QwenLM/ProcessBench code/run_eval.py `prepare_input_boxed`): each
    step as "<paragraph_k>\\n{step}\\n</paragraph_k>\\n\\n" (k from 0), joined and stripped, put into the template
    with str.format as the official code does; one user message, answered after the generation prompt."""
    tagged = "".join(f"<paragraph_{k}>\n{step}\n</paragraph_{k}>\n\n" for k, step in enumerate(steps)).strip()
    template = CRITIC_TEMPLATE_PATH.read_text(encoding="utf-8").strip()
    return [{"role": "user", "content": template.format(problem=problem, tagged_response=tagged)}]


def critic_answer(text: str) -> str | None:
    """The official `extract_answer`: the last \\boxed{...} (no nested braces), stripped; None without one."""
    matches = re.findall(r"\\boxed\{([^}]*)\}", text)
    return matches[-1].strip() if matches else None


def vote_critic_index(texts: Sequence[str]) -> int | None:
    """The earliest-error index that critiques give (one: the official reading; several: its --use_voting): the
    most common extracted answer among those with one (ties: the first seen), as int(); None when no critique
    has an answer or the chosen one is not an integer. -1 means no error found."""
    answers = [a for a in (critic_answer(t) for t in texts) if a is not None]
    if not answers:
        return None
    try:
        return int(Counter(answers).most_common(1)[0][0])
    except ValueError:
        return None


__all__ = [
    "CRITIC_TEMPLATE_PATH",
    "DEFAULT_FORMAT_PATH",
    "ParsedChain",
    "VerificationFormat",
    "chain_body",
    "close_chain",
    "critic_answer",
    "critic_prompt",
    "cut_after_last_verdict",
    "decision_line",
    "first_wrong_step",
    "fix_step_labels",
    "label_is_correct",
    "load_format",
    "normalise_chain",
    "parse_chain",
    "render_solution",
    "render_user_message",
    "templated_chain",
    "verdict_text",
    "verdicts_agree",
    "verifier_prompt",
    "vote_critic_index",
]
