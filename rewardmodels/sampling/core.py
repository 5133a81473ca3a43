"""The generator contract, the sampling settings, the on-disk sample cache and the `Sampler` over them.

A prompt is either fully rendered text (`str`) or a chat message list; a chat whose last message is the
assistant's is continued from that message's text rather than answered with a new turn. A sample is identified
by the cache key

  sha256(json({"generator": fingerprint, "prompt": {"text": str} or {"messages": list},
               "settings": SamplingParams.settings(), "i": sample index}))

so two templates for the same problem and step prefix render two prompts and never share a sample, and a
sample's seed, `(int(key[:8], 16) + params.seed) mod 2**31`, depends on that sample alone, not on which other
samples are generated in the same batch.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

from rewardmodels.answers import STEP_JOIN

Message = dict[str, str]
Prompt = str | list[Message]

DEFAULT_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."
CACHE_SCHEMA_VERSION = 2


@dataclass(frozen=True)
class SamplingParams:
    """How to sample: `temperature` 0 is greedy decoding; `stop` strings end a sample (and are cut off it);
    `instruction` goes into math prompts (`math_prompt`), so it reaches the cache key through the prompt."""

    max_new_tokens: int = 256
    temperature: float = 0.7
    top_p: float = 0.95
    instruction: str = DEFAULT_INSTRUCTION
    seed: int = 0
    stop: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be at least 1, got {self.max_new_tokens}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0 (0 = greedy), got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        object.__setattr__(self, "stop", tuple(self.stop))

    def settings(self) -> dict:
        """Everything that changes a sample of a given prompt: all fields but `instruction`."""
        out = asdict(self)
        del out["instruction"]
        out["stop"] = list(self.stop)
        return out


class Generator(Protocol):
    """A sampling backend (`HFGenerator`, `EndpointGenerator`, or a scripted fake in tests).

    `fingerprint` names the model in cache keys and rows. `build_prompt` renders a math problem and step
    prefix (`math_prompt`) the way this backend is prompted. `generate` returns one sample per row, row r
    being `prompts[r]` sampled with seed `seeds[r]`."""

    fingerprint: str

    def build_prompt(self, problem: str, prefix: Sequence[str], params: SamplingParams) -> Prompt: ...

    def generate(
        self, prompts: Sequence[Prompt], params: SamplingParams, seeds: Sequence[int]
    ) -> list[str]: ...


def math_prompt(problem: str, prefix: Sequence[str], instruction: str = DEFAULT_INSTRUCTION) -> list[Message]:
    """The user's question (problem, then the instruction on its own line) and, for a non-empty prefix, the
    assistant's partial solution to continue: each step followed by STEP_JOIN, so the next token starts a
    step."""
    question = f"{problem}\n{instruction}" if instruction else problem
    messages = [{"role": "user", "content": question}]
    if prefix:
        messages.append({"role": "assistant", "content": "".join(step + STEP_JOIN for step in prefix)})
    return messages


def continues_final_message(prompt: Prompt) -> bool:
    """Whether a chat prompt ends with an assistant message that the sample continues."""
    return not isinstance(prompt, str) and bool(prompt) and prompt[-1].get("role") == "assistant"


def prompt_identity(prompt: Prompt) -> dict:
    """The prompt as it enters the cache key: {"text": ...} or {"messages": [...]}; a malformed chat names
    the bad message."""
    if isinstance(prompt, str):
        return {"text": prompt}
    if not isinstance(prompt, list) or not prompt:
        raise ValueError(f"a prompt is text or a non-empty list of messages, got {type(prompt).__name__}")
    for i, message in enumerate(prompt):
        if not (isinstance(message, dict) and isinstance(message.get("role"), str)
                and isinstance(message.get("content"), str)):  # fmt: skip
            raise ValueError(f"prompt message {i}: expected {{'role': str, 'content': str}}, got {message!r}")
    return {"messages": [{"role": m["role"], "content": m["content"]} for m in prompt]}


def sample_key(fingerprint: str, prompt: Prompt, params: SamplingParams, index: int) -> str:
    """The cache key of sample `index` of `prompt` (formula in the module docstring)."""
    blob = json.dumps(
        {
            "generator": fingerprint,
            "prompt": prompt_identity(prompt),
            "settings": params.settings(),
            "i": index,
        },
        sort_keys=True,
        ensure_ascii=False,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def sample_seed(key: str, base_seed: int) -> int:
    """The seed of the sample with this cache key: (int(key[:8], 16) + base_seed) mod 2**31."""
    return (int(key[:8], 16) + base_seed) % (2**31)


class SampleCache:
    """Sampled texts on disk (SQLite) by cache key; each batch is committed in one transaction.

    The file records its schema version. A file from another version (version 1 keyed samples by problem
    and prefix without the rendered prompt) is refused rather than mixed with this one."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(self.path))
        tables = {row[0] for row in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "samples" in tables:
            version = None
            if "meta" in tables:
                row = self.db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
                version = row[0] if row else None
            if version != str(CACHE_SCHEMA_VERSION):
                self.db.close()
                raise ValueError(
                    f"{self.path}: a sample cache of schema version {version or 1}, this version reads "
                    f"version {CACHE_SCHEMA_VERSION} only (its keys hold the rendered prompt, older keys "
                    "do not, so their samples cannot be matched to prompts). Point --cache at a new file, "
                    "or move this one away."
                )
            return
        with self.db:
            self.db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            self.db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(CACHE_SCHEMA_VERSION),))
            self.db.execute("CREATE TABLE samples (key TEXT PRIMARY KEY, text TEXT NOT NULL)")

    def get(self, key: str) -> str | None:
        row = self.db.execute("SELECT text FROM samples WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def put_many(self, items: Sequence[tuple[str, str]]) -> None:
        with self.db:  # one transaction: committed on success, so a crash never leaves half a batch
            self.db.executemany("INSERT OR REPLACE INTO samples (key, text) VALUES (?, ?)", items)

    def __len__(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM samples").fetchone()[0]

    def close(self) -> None:
        self.db.close()


class Sampler:
    """Samples 0..n-1 of prompts, read from the cache or generated: every missing sample of one call goes to
    the generator in one `generate` call and is committed as one batch, so an interrupted run resumes
    there."""

    def __init__(self, generator: Generator, cache: SampleCache, params: SamplingParams):
        self.generator, self.cache, self.params = generator, cache, params
        self.hits = 0
        self.generated = 0

    def samples(self, problem: str, prefix: Sequence[str], n: int) -> list[str]:
        """n samples continuing a math problem's step prefix, prompted by the generator's `build_prompt`."""
        return self.complete(self.generator.build_prompt(problem, prefix, self.params), n)

    def complete(self, prompt: Prompt, n: int) -> list[str]:
        """Samples 0..n-1 of one prompt."""
        return self.complete_many([(prompt, n)])[0]

    def complete_many(self, requests: Sequence[tuple[Prompt, int]]) -> list[list[str]]:
        """Samples 0..n-1 of each (prompt, n), the missing ones of all prompts in one generator call."""
        fingerprint = self.generator.fingerprint
        keys = [[sample_key(fingerprint, prompt, self.params, i) for i in range(n)] for prompt, n in requests]
        found = [[self.cache.get(k) for k in row] for row in keys]
        missing = [(r, i) for r, row in enumerate(found) for i, text in enumerate(row) if text is None]
        self.hits += sum(len(row) for row in keys) - len(missing)
        if missing:
            prompts = [requests[r][0] for r, _ in missing]
            seeds = [sample_seed(keys[r][i], self.params.seed) for r, i in missing]
            texts = self.generator.generate(prompts, self.params, seeds)
            if len(texts) != len(missing):
                raise RuntimeError(
                    f"the generator returned {len(texts)} samples, {len(missing)} were asked for"
                )
            self.cache.put_many([(keys[r][i], t) for (r, i), t in zip(missing, texts, strict=True)])
            for (r, i), t in zip(missing, texts, strict=True):
                found[r][i] = t
            self.generated += len(missing)
        return [[t for t in row if t is not None] for row in found]
