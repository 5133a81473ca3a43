"""Decontamination of training pairs against evaluation sets: exact prompt match and word n-gram overlap.

Two tests, both on normalised text:

  exact    the training prompt equals an evaluation prompt once lower-cased and with every run of
           whitespace made one space (`normalise`). A prompt given as chat messages is the text of all its
           messages joined by newlines (`schema.text_of`).
  n-gram   the training prompt shares at least one word n-gram (n = 13 by default) with an evaluation text.
           Words are the lower-cased runs of letters, digits and underscores (`words`), so punctuation and
           spacing never hide an overlap. An evaluation text shorter than n words has no n-gram: only the
           exact test can find it (a short phrase such as "compute 8 choose 4" inside a longer prompt is
           not counted as contamination).

With `check_responses`, each pair's chosen and rejected are also tested: exactly against the evaluation
sets' responses, and by n-grams against their prompts and responses (a response that quotes a benchmark
problem or solution). The index then holds the responses' n-grams too, so a training prompt that quotes an
evaluation response is found as well.

Evaluation sets are files (.jsonl, .json, .parquet, optionally .gz) whose rows hold the prompt in one of
PROMPT_FIELDS (the first that the first row has), or the built-in names of BUILTIN_EVALS, resolved to files
in an evaluation-data folder (the shared data's `rewardbench_sample.jsonl`, `processbench_gsm8k.json`,
`math500.jsonl`; a RewardBench v2 file in its published format, `prompt` a string and `chosen`/`rejected`
lists of strings, is picked up by the same name when it is there).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path

from rewardmodels.data_builders.schema import is_messages, text_of
from rewardmodels.errors import ROW, InputError, Location
from rewardmodels.io import location_of, read_rows

NGRAM = 13
PROMPT_FIELDS = ("prompt", "problem", "question")
# Fields that hold an evaluation row's responses: RewardBench v1 strings and v2 lists of strings, MATH-500's
# solution, ProcessBench's steps (joined into one text, so an n-gram may cross a step boundary).
RESPONSE_FIELDS = ("chosen", "rejected", "solution", "steps", "response", "completion")
DATA_SUFFIXES = (".jsonl", ".json", ".parquet", ".jsonl.gz", ".json.gz")
# Built-in evaluation sets: file-name patterns looked up in the evaluation-data folder. `rewardbench` is v1
# (the shared sample) and v2 (allenai/reward-bench-2, test split) alike: every matching file is used.
BUILTIN_EVALS: dict[str, tuple[str, ...]] = {
    "rewardbench": ("rewardbench*", "reward-bench*", "reward_bench*"),
    "processbench": ("processbench*", "process-bench*", "process_bench*"),
    "math500": ("math500*", "math-500*", "math_500*"),
}
WORD = re.compile(r"\w+")


def normalise(text: str) -> str:
    """Lower case, every run of whitespace one space, no leading or trailing space: the exact-match form."""
    return " ".join(text.lower().split())


def words(text: str) -> list[str]:
    """The lower-cased words of `text` (runs of letters, digits and underscores): the n-gram units."""
    return WORD.findall(text.lower())


def ngram_texts(tokens: list[str], n: int) -> list[str]:
    """Every run of n consecutive words, joined by spaces; none when there are fewer than n words."""
    return [" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


@dataclass(frozen=True)
class EvalSource:
    """One evaluation file and the name its overlaps are reported under."""

    name: str
    path: Path


@dataclass(frozen=True)
class Overlap:
    """One training field found in one evaluation set: how (exact or n-gram), and the evaluation row."""

    eval: str
    field: str  # the training pair's field: prompt, chosen or rejected
    kind: str  # "exact" or "13-gram" (the n of the index)
    eval_file: str
    eval_row: int | None
    matched: str  # the normalised text (exact) or the shared n-gram

    def to_dict(self) -> dict:
        return asdict(self)


def resolve_evals(names: list[str], eval_data_dir: str | Path) -> list[EvalSource]:
    """Each name as evaluation files: an existing file as itself (named by its stem), a built-in name as
    every file in `eval_data_dir` that matches its patterns. Anything else is an InputError."""
    folder = Path(eval_data_dir)
    sources: list[EvalSource] = []
    for name in names:
        path = Path(name)
        if path.is_file():
            sources.append(EvalSource(path.name.split(".")[0], path))
            continue
        if name not in BUILTIN_EVALS:
            raise InputError(
                name, None, None,
                f"no such file, and not a built-in evaluation set ({', '.join(BUILTIN_EVALS)})",
            )  # fmt: skip
        found = sorted(
            {
                p
                for pattern in BUILTIN_EVALS[name]
                for p in folder.glob(pattern)
                if p.name.endswith(DATA_SUFFIXES)
            }
        )
        if not found:
            raise InputError(
                folder, None, None,
                f"no file for the built-in evaluation set '{name}' (looked for {', '.join(BUILTIN_EVALS[name])} "
                f"with a suffix {', '.join(DATA_SUFFIXES)})",
                hint="Point --eval-data-dir at the folder that holds it, or name the file itself.",
            )  # fmt: skip
        sources += [EvalSource(name, p) for p in found]
    return sources


def detect_prompt_field(rows: list, path: str | Path) -> str:
    """The first of PROMPT_FIELDS that the first row holds; an InputError naming the file when it has none."""
    first = next((r for r in rows if isinstance(r, dict)), None)
    if first is None:
        raise InputError(path, None, None, "no rows to read evaluation prompts from")
    for name in PROMPT_FIELDS:
        if name in first:
            return name
    raise InputError(
        path, None, None,
        f"no prompt field: expected one of {', '.join(PROMPT_FIELDS)}; the first row has {', '.join(sorted(first)) or 'none'}",
    )  # fmt: skip


def _texts(value) -> list[str]:
    """The texts a field holds: a string, chat messages, or a list of strings (RewardBench v2 responses)."""
    if isinstance(value, str):
        return [value]
    if is_messages(value):
        return [text_of(value)]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    return []


def _field_texts(name: str, value) -> list[str]:
    """`_texts`, except that ProcessBench's `steps` are one solution: joined, so an n-gram may span two."""
    if name == "steps" and isinstance(value, list) and all(isinstance(v, str) for v in value):
        return ["\n".join(value)]
    return _texts(value)


class EvalIndex:
    """Normalised evaluation prompts (and, with `with_responses`, responses) and their word n-grams, each
    mapped to the first evaluation row that has it."""

    def __init__(self, n: int = NGRAM, with_responses: bool = False):
        if n < 1:
            raise ValueError(f"the n-gram size must be at least 1, got {n}")
        self.n = n
        self.with_responses = with_responses
        self.exact_prompts: dict[str, tuple[str, Location]] = {}
        self.exact_responses: dict[str, tuple[str, Location]] = {}
        self.grams: dict[
            int, tuple[str, Location]
        ] = {}  # hash of the n-gram text; hashes live in memory only
        self.rows: dict[str, int] = {}  # rows read per evaluation set
        self.files: dict[str, list[str]] = {}

    def add_file(self, source: EvalSource) -> None:
        """Read one evaluation file; a row without a text prompt is an InputError naming its row and field."""
        rows = read_rows(source.path)
        field = detect_prompt_field(rows, source.path)
        for i, row in enumerate(rows, 1):
            where = location_of(row, Location(str(source.path), i, ROW))
            prompts = _field_texts(field, row.get(field)) if isinstance(row, dict) else []
            if not prompts:
                raise InputError.at(where, field, "expected a text prompt (a string or chat messages)")
            self._add(source.name, where, prompts, self.exact_prompts)
            if self.with_responses:
                for name in RESPONSE_FIELDS:
                    if row.get(name) is not None:
                        self._add(source.name, where, _field_texts(name, row[name]), self.exact_responses)
        self.rows[source.name] = self.rows.get(source.name, 0) + len(rows)
        self.files.setdefault(source.name, []).append(str(source.path))

    def _add(self, name: str, where: Location, texts: list[str], exact: dict) -> None:
        for text in texts:
            exact.setdefault(normalise(text), (name, where))
            for gram in ngram_texts(words(text), self.n):
                self.grams.setdefault(hash(gram), (name, where))

    def find(self, row: dict, check_responses: bool = False) -> list[Overlap]:
        """The overlaps of one canonical pair: at most one per (evaluation set, field), exact before n-gram."""
        fields = ["prompt"] + (["chosen", "rejected"] if check_responses else [])
        found: dict[tuple[str, str], Overlap] = {}
        for name in fields:
            value = row.get(name)
            if value is None:
                continue
            text = text_of(value)
            exact = self.exact_prompts if name == "prompt" else self.exact_responses
            hit = exact.get(normalise(text))
            if hit is not None:
                found[(hit[0], name)] = self._overlap(hit, name, "exact", normalise(text)[:200])
            for gram in ngram_texts(words(text), self.n):
                hit = self.grams.get(hash(gram))
                if hit is not None and (hit[0], name) not in found:
                    found[(hit[0], name)] = self._overlap(hit, name, f"{self.n}-gram", gram)
        return list(found.values())

    @staticmethod
    def _overlap(hit: tuple[str, Location], field: str, kind: str, matched: str) -> Overlap:
        name, where = hit
        return Overlap(name, field, kind, where.file or "", where.line, matched)


def build_index(sources: list[EvalSource], n: int = NGRAM, with_responses: bool = False) -> EvalIndex:
    """An EvalIndex over every file of `sources`."""
    index = EvalIndex(n, with_responses)
    for source in sources:
        index.add_file(source)
    return index


__all__ = [
    "BUILTIN_EVALS",
    "NGRAM",
    "PROMPT_FIELDS",
    "EvalIndex",
    "EvalSource",
    "Overlap",
    "build_index",
    "detect_prompt_field",
    "normalise",
    "ngram_texts",
    "resolve_evals",
    "words",
]
