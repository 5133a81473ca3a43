"""Deterministic, meaning-preserving rewrites of a response: the spurious changes a robust reward model
should ignore. The Crome builder pairs a response with its rewrite as a tie (`data_builders/crome.py`); the
robustness evaluator re-scores RewardBench pairs after rewriting them (`eval/robustness.py`).

Every transform is a pure function text -> text with no randomness. Each keeps the content, `content_of`:
  - the set of numbers (digit runs, with decimal points and thousands commas: `3`, `2.5`, `1,000`),
  - every code block (`split_code`: fenced, [asy], or a paragraph that looks like code), in order, up to
    trailing whitespace,
  - the final answer (`rewardmodels.answers.extract_final_answer`: the last \\boxed{}, `# Answer`, or
    "The answer is").
`transform_text` checks that contract on every output and hands the text back unchanged when a transform
would break it, so the guarantee holds by construction; an unchanged text means "does not apply here".

Transforms (`TRANSFORMS`), all leaving code blocks alone:
  whitespace     every blank line between paragraphs becomes two, and a sentence end (. ! ?) before a
                 capital letter is followed by two spaces instead of one
  bullets        every prose paragraph that is not already a list item, heading, table, quote or display
                 math becomes a "- " bullet (its continuation lines indented), except the line that a
                 `# Answer` heading announces
  headers        a "## Response" heading on top, and every short (at most 60 characters) one-line paragraph
                 ending in ":" made a "### " heading
  plain          markdown removed: heading marks (not `# Answer`), "-", "*" and "+" bullet marks, and
                 **bold**, __bold__ and *italic* markers (numbered lists stay: their numbers are content)
  filler         a neutral opening and closing sentence around the text (no numbers, no claims): length only
  typos          every 4th prose word of 5+ letters (letters only; never in inline code, math, URLs or
                 LaTeX commands) has its first pair of differing inner letters swapped
  answer_format  \\boxed{X} -> "X" in place plus a final "# Answer\\n\\nX" (PRM800K's format), and a text that
                 has only "# Answer\\n\\nX" -> "The answer is $\\boxed{X}$."
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from rewardmodels.answers import BOX_COMMANDS, extract_final_answer

_FENCE = re.compile(r"^\s*(```|~~~|\[asy\])")
_CODE_LINE = re.compile(
    r"^(?: {4}|\t)|[{;]\s*$|^\s*[\]\)\}]+[;,\)]*\s*$"
    r"|^\s*(?:def|class|import|from \S+ import|return|func|fn|let|const|var|pub|#include|public|private)\b"
)
_LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
# Spans inside prose that no word-level transform may touch.
_PROTECTED = re.compile(
    r"`[^`\n]+`|\$\$.+?\$\$|\$[^$\n]+\$|\\\[.+?\\\]|\\\(.+?\\\)|https?://\S+|www\.\S+|\\[A-Za-z]+",
    re.S,
)
_PARAGRAPH_BREAK = re.compile(r"(\n[ \t]*\n)")
_NOT_BULLETABLE = re.compile(r"^\s*(?:[-*+]\s|\d+[.)]\s|#|>|\||\$\$|\\\[)")
_ANSWER_HEADING = re.compile(r"^#\s*Answer\s*$", re.MULTILINE)
_TYPO_WORD = re.compile(r"(?<![\w'./\\-])[A-Za-z]{5,}(?![\w'(/-])")

FILLER_OPENING = "Sure! Here is a careful and complete response to your request."
FILLER_CLOSING = "I hope this helps. Let me know if there is anything else you would like to know."
HEADER_TITLE = "## Response"
TYPO_EVERY = 4


@dataclass(frozen=True)
class Content:
    """What a meaning-preserving transform must keep (module docstring)."""

    numbers: frozenset[str]
    code_blocks: tuple[str, ...]
    final_answer: str | None


def numbers_in(text: str) -> frozenset[str]:
    """The set of numbers in `text`: digit runs with inner `.` or `,` groups (`1,000.5` is one number)."""
    return frozenset(_NUMBER.findall(text))


def _fenced_parts(text: str) -> list[tuple[bool, str]]:
    parts: list[tuple[bool, str]] = []
    current: list[str] = []
    closer = None  # the marker that ends the open fence

    def flush(is_code: bool) -> None:
        if current:
            parts.append((is_code, "".join(current)))
            current.clear()

    for line in text.splitlines(keepends=True):
        if closer is None and (opening := _FENCE.match(line)):
            flush(False)
            closer = {"```": "```", "~~~": "~~~", "[asy]": "[/asy]"}[opening.group(1)]
            current.append(line)
            if closer == "[/asy]" and closer in line:
                flush(True)
                closer = None
        elif closer is not None:
            current.append(line)
            if (closer in line) if closer == "[/asy]" else line.lstrip().startswith(closer):
                flush(True)
                closer = None
        else:
            current.append(line)
    flush(closer is not None)
    return parts


def looks_like_code(paragraph: str) -> bool:
    """At least 60% of the paragraph's lines are code-like: indented (not a list item), ending in `{`, `}`
    or `;`, made of brackets only, or opening with a keyword (`def `, `return `, `#include`, ...)."""
    lines = [ln for ln in paragraph.splitlines() if ln.strip()]
    if not lines:
        return False
    code = sum(1 for ln in lines if _CODE_LINE.search(ln) and not _LIST_ITEM.match(ln))
    return code >= 0.6 * len(lines)


def split_code(text: str) -> list[tuple[bool, str]]:
    """`text` as consecutive (is_code, piece) parts; joining the pieces gives `text` back. Code is a fenced
    block (``` or ~~~, fence lines included; an unclosed fence runs to the end), an Asymptote block
    ([asy] ... [/asy], as MATH solutions hold them), or a paragraph that `looks_like_code` (the unfenced
    function bodies of HumanEvalPack answers), with the blank lines between two such paragraphs."""
    parts: list[tuple[bool, str]] = []
    for is_code, piece in _fenced_parts(text):
        if is_code:
            parts.append((True, piece))
            continue
        pieces = _PARAGRAPH_BREAK.split(piece)  # paragraph, separator, paragraph, ...
        kinds = [looks_like_code(p) if i % 2 == 0 else None for i, p in enumerate(pieces)]
        for i in range(1, len(pieces), 2):  # a separator between two code paragraphs is code
            kinds[i] = bool(kinds[i - 1] and i + 1 < len(pieces) and kinds[i + 1])
        for p, kind in zip(pieces, kinds, strict=True):
            if p:
                parts.append((bool(kind), p))
    merged: list[tuple[bool, str]] = []
    for is_code, piece in parts:
        if merged and merged[-1][0] == is_code:
            merged[-1] = (is_code, merged[-1][1] + piece)
        else:
            merged.append((is_code, piece))
    return merged


def content_of(text: str) -> Content:
    return Content(
        numbers_in(text),
        tuple(piece.rstrip() for is_code, piece in split_code(text) if is_code),
        extract_final_answer(text),
    )


def _on_prose(text: str, fn: Callable[[str], str]) -> str:
    """`fn` applied to every part of `text` outside fenced code blocks."""
    return "".join(piece if is_code else fn(piece) for is_code, piece in split_code(text))


def _outside_protected(prose: str, fn: Callable[[str], str]) -> str:
    """`fn` applied to the stretches of `prose` between protected spans (inline code, math, URLs, LaTeX)."""
    out, at = [], 0
    for m in _PROTECTED.finditer(prose):
        out += [fn(prose[at : m.start()]), m.group(0)]
        at = m.end()
    out.append(fn(prose[at:]))
    return "".join(out)


def _paragraphs(prose: str, fn: Callable[[str, str | None], str]) -> str:
    """`fn(paragraph, previous paragraph)` applied to every paragraph of `prose` (blank-line separated);
    separators and surrounding whitespace are kept."""
    pieces = _PARAGRAPH_BREAK.split(prose)
    previous = None
    for i in range(0, len(pieces), 2):
        if pieces[i].strip():
            original = pieces[i]
            pieces[i] = fn(original, previous)
            previous = original
    return "".join(pieces)


def _split_edges(paragraph: str) -> tuple[str, str, str]:
    body = paragraph.strip()
    start = paragraph.index(body[0]) if body else 0
    return paragraph[:start], body, paragraph[start + len(body) :]


# ---- the transforms -----------------------------------------------------------------------------------


def whitespace(text: str) -> str:
    def prose(piece: str) -> str:
        piece = re.sub(r"\n[ \t]*\n", "\n\n\n", piece)
        return re.sub(r"([.!?]) (?=[A-Z])", r"\1  ", piece)

    return _on_prose(text, prose)


def bullets(text: str) -> str:
    def bullet(paragraph: str, previous: str | None) -> str:
        lead, body, tail = _split_edges(paragraph)
        if _NOT_BULLETABLE.match(body) or (previous is not None and _ANSWER_HEADING.search(previous)):
            return paragraph
        return lead + "- " + body.replace("\n", "\n  ") + tail

    return _on_prose(text, lambda prose: _paragraphs(prose, bullet))


def headers(text: str) -> str:
    def heading(paragraph: str, previous: str | None) -> str:
        lead, body, tail = _split_edges(paragraph)
        if "\n" in body or not body.endswith(":") or len(body) > 60 or _NOT_BULLETABLE.match(body):
            return paragraph
        return f"{lead}### {body}{tail}"

    body = _on_prose(text, lambda prose: _paragraphs(prose, heading))
    return body if text.lstrip().startswith("#") else f"{HEADER_TITLE}\n\n{body}"


def plain(text: str) -> str:
    def emphasis(stretch: str) -> str:
        stretch = re.sub(r"\*\*(\S(?:[^*\n]*?\S)?)\*\*", r"\1", stretch)
        stretch = re.sub(r"(?<!\w)__(\S(?:[^_\n]*?\S)?)__(?!\w)", r"\1", stretch)
        return re.sub(r"(?<![\w*])\*(\S(?:[^*\n]*?\S)?)\*(?![\w*])", r"\1", stretch)

    def line(text_line: str) -> str:
        if _ANSWER_HEADING.match(text_line.rstrip("\n")):
            return text_line
        text_line = re.sub(r"^#{1,6}[ \t]+", "", text_line)
        return re.sub(r"^([ \t]*)[-*+][ \t]+", r"\1", text_line)

    def prose(piece: str) -> str:
        piece = "".join(line(ln) for ln in piece.splitlines(keepends=True))
        return _outside_protected(piece, emphasis)

    return _on_prose(text, prose)


def filler(text: str) -> str:
    return f"{FILLER_OPENING}\n\n{text.rstrip()}\n\n{FILLER_CLOSING}"


def _swap_inner(word: str) -> str:
    for i in range(1, len(word) - 2):
        if word[i].lower() != word[i + 1].lower():
            return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    return word


def typos(text: str) -> str:
    seen = 0

    def words(stretch: str) -> str:
        def maybe(m: re.Match) -> str:
            nonlocal seen
            seen += 1
            return _swap_inner(m.group(0)) if seen % TYPO_EVERY == 0 else m.group(0)

        return _TYPO_WORD.sub(maybe, stretch)

    return _on_prose(text, lambda prose: _outside_protected(prose, words))


def _unbox(text: str) -> str:
    """Every \\boxed{X} / \\fbox{X} replaced by X (nested braces kept whole); an unclosed one is left."""
    out, at = [], 0
    pattern = re.compile("(?:" + "|".join(re.escape(c) for c in BOX_COMMANDS) + r")\s*\{")
    for m in pattern.finditer(text):
        if m.start() < at:
            continue
        depth, j = 0, m.end() - 1
        for j in range(m.end() - 1, len(text)):
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            if depth == 0:
                break
        if depth != 0:
            continue
        out += [text[at : m.start()], text[m.end() : j]]
        at = j + 1
    out.append(text[at:])
    return "".join(out)


def answer_format(text: str) -> str:
    answer = extract_final_answer(text)
    if answer is None:
        return text
    if any(cmd in text for cmd in BOX_COMMANDS):
        return f"{_unbox(text).rstrip()}\n\n# Answer\n\n{answer}"
    heading = list(_ANSWER_HEADING.finditer(text))
    if not heading:
        return text  # the answer is stated in prose ("The answer is ..."): no format to change
    head, tail = text[: heading[-1].start()], text[heading[-1].end() :]
    lines = tail.splitlines()
    first = next(i for i, ln in enumerate(lines) if ln.strip())
    rest = "\n".join(lines[first + 1 :])
    stated = f"{head.rstrip()}\n\nThe answer is $\\boxed{{{answer}}}$."
    return f"{stated}\n\n{rest}" if rest.strip() else stated


@dataclass(frozen=True)
class Transform:
    name: str
    apply: Callable[[str], str]
    summary: str


TRANSFORMS: dict[str, Transform] = {
    t.name: t
    for t in (
        Transform("whitespace", whitespace, "doubled paragraph breaks, two spaces after sentence ends"),
        Transform("bullets", bullets, "prose paragraphs as markdown bullets"),
        Transform("headers", headers, "a markdown title, short ':' lines as headings"),
        Transform("plain", plain, "markdown marks removed"),
        Transform("filler", filler, "neutral opening and closing sentences (length only)"),
        Transform("typos", typos, "two letters swapped in every 4th long word"),
        Transform("answer_format", answer_format, "\\boxed{} <-> '# Answer'"),
    )
}


def transform_text(name: str, text: str) -> str:
    """`text` rewritten by transform `name`, or `text` itself when the transform changes nothing or would
    change its content (`content_of`)."""
    if name not in TRANSFORMS:
        raise ValueError(f"unknown transform {name!r}; known: {', '.join(TRANSFORMS)}")
    out = TRANSFORMS[name].apply(text)
    if out == text or content_of(out) != content_of(text):
        return text
    return out


def transform_response(name: str, response):
    """A response (text, or chat messages whose last message is the answer) with its answer text rewritten
    by `transform_text`; the same object when nothing changed."""
    if isinstance(response, str):
        return transform_text(name, response)
    last = response[-1]
    new = transform_text(name, last["content"])
    return response if new == last["content"] else [*response[:-1], {**last, "content": new}]


def parse_transform_names(text: str | None) -> list[str]:
    """'a,b' -> ['a', 'b'] (None or 'all': every transform); an unknown name is an error naming the known."""
    if text is None or text.strip() in ("", "all"):
        return list(TRANSFORMS)
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in TRANSFORMS]
    if unknown:
        raise ValueError(f"unknown transform(s) {', '.join(unknown)}; known: {', '.join(TRANSFORMS)}")
    return names


__all__ = [
    "TRANSFORMS",
    "Content",
    "Transform",
    "content_of",
    "numbers_in",
    "parse_transform_names",
    "split_code",
    "transform_response",
    "transform_text",
]
