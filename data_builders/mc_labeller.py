"""Monte Carlo step labels in the Math-Shepherd style: a step is as good as the answers reached from it.

For a solution split into steps, every step prefix (problem + steps 1..i) is continued N times by a generator
model, and each continuation's final answer is checked against the gold answer with math-verify. The label of
step i is then
  hard: True when any continuation reaches the gold answer (Math-Shepherd's "hard estimation")
  soft: the share of continuations that do (its "soft estimation"), a float in [0, 1]
The last step needs no rollouts: its label is whether the solution's own final answer is right.

Every sampled continuation is stored in an on-disk SQLite cache, keyed by (problem, prefix, sample index,
generator, sampling parameters), and committed as soon as it is generated, so an interrupted run resumes
without sampling anything twice, and a rerun with the same settings samples nothing at all. The same cache and
sampler produce best-of-N candidates (`eval/best_of_n.py sample`).

    python -m rewardmodels.data_builders.mc_labeller --generator smollm2-135m \\
        --problems ../shared/data/math500.jsonl --limit 3 --rollouts 4 --output mc_rows.jsonl
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import sqlite3
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

from tqdm.auto import tqdm

from rewardmodels.cli_common import ArgumentParser, HelpFormatter, setup_logging

logger = logging.getLogger("rewardmodels")

DEFAULT_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."
STEP_JOIN = "\n\n"


# ---- answers ----------------------------------------------------------------------------------------------------


def parse_gold(answer: str):
    """Gold answers are bare LaTeX ('\\frac{14}{3}'); math-verify finds them reliably inside $...$."""
    from math_verify import parse

    parsed = parse(f"${answer}$")
    return parsed if parsed else parse(answer)


def is_correct(text: str, gold) -> bool:
    """Whether the final answer in `text` matches `gold` (a string or an already parsed gold), by math-verify.
    A text in which math-verify finds no answer is not correct."""
    from math_verify import parse, verify

    gold_parsed = parse_gold(gold) if isinstance(gold, str) else gold
    if not gold_parsed:
        return False
    pred = parse(text)
    return bool(pred) and bool(verify(gold_parsed, pred))


def split_solution(text: str, split: str = STEP_JOIN, max_steps: int | None = None) -> list[str]:
    """A solution's non-empty steps; with `max_steps`, the tail is merged into the last step so that no text
    (and no final answer) is lost."""
    steps = [s.strip() for s in text.split(split)]
    steps = [s for s in steps if s]
    if max_steps and len(steps) > max_steps:
        steps = steps[: max_steps - 1] + [split.join(steps[max_steps - 1 :])]
    return steps


# ---- sampling ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SamplingParams:
    max_new_tokens: int = 256
    temperature: float = 0.7
    top_p: float = 0.95
    instruction: str = DEFAULT_INSTRUCTION
    seed: int = 0

    def key(self) -> dict:
        return asdict(self)


class Generator(Protocol):
    """Anything that continues a prompt: the HF generator below, or a scripted fake in tests."""

    name: str

    def build_prompt(self, problem: str, prefix: Sequence[str], params: SamplingParams) -> str: ...

    def generate(self, prompt: str, n: int, params: SamplingParams, seed: int) -> list[str]: ...


class HFGenerator:
    """A causal LM sampled with `transformers` `generate` (CPU by default)."""

    def __init__(self, model, tokenizer, name: str):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.name = name

    @classmethod
    def load(cls, name_or_path: str, device: str | None = None, dtype: str = "float32") -> HFGenerator:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from rewardmodels.modeling import resolve_model_path

        path = resolve_model_path(name_or_path)
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, dtype), use_safetensors=True)
        model.to(device or "cpu")
        return cls(model, tokenizer, generator_fingerprint(name_or_path, path))

    def build_prompt(self, problem: str, prefix: Sequence[str], params: SamplingParams) -> str:
        question = f"{problem}\n{params.instruction}" if params.instruction else problem
        if self.tokenizer.chat_template:
            head = self.tokenizer.apply_chat_template(
                [{"role": "user", "content": question}], tokenize=False, add_generation_prompt=True
            )
        else:
            head = f"Problem: {question}\nSolution:\n"
        return head + "".join(step + STEP_JOIN for step in prefix)

    def generate(self, prompt: str, n: int, params: SamplingParams, seed: int) -> list[str]:
        import torch

        inputs = self.tokenizer(prompt, return_tensors="pt", add_special_tokens=False).to(self.model.device)
        sample = params.temperature > 0
        if not sample and n > 1:
            # Greedy decoding gives one answer however often it is asked; transformers refuses n > 1 for it.
            return self.generate(prompt, 1, params, seed) * n
        torch.manual_seed(seed)
        pad = (
            self.tokenizer.pad_token_id
            if self.tokenizer.pad_token_id is not None
            else self.tokenizer.eos_token_id
        )
        with torch.inference_mode():
            out = self.model.generate(
                **inputs,
                do_sample=sample,
                temperature=params.temperature if sample else None,
                top_p=params.top_p if sample else None,
                max_new_tokens=params.max_new_tokens,
                num_return_sequences=n,
                pad_token_id=pad,
            )
        start = inputs["input_ids"].shape[1]
        return [self.tokenizer.decode(row[start:], skip_special_tokens=True) for row in out]


def generator_fingerprint(name: str, path: str) -> str:
    """The generator's identity in cache keys: its name, plus the size and mtime of local weight files, so a
    model retrained in place never reuses samples from its earlier self."""
    p = Path(path)
    if not p.is_dir():
        return name
    stats = sorted((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in p.glob("*.safetensors"))
    return f"{name}@{hashlib.sha256(repr(stats).encode()).hexdigest()[:12]}"


class SampleCache:
    """Sampled continuations on disk (SQLite), one committed row per sample."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(self.path))
        self.db.execute("CREATE TABLE IF NOT EXISTS samples (key TEXT PRIMARY KEY, text TEXT NOT NULL)")
        self.db.commit()

    @staticmethod
    def key(generator: str, params: SamplingParams, problem: str, prefix: Sequence[str], index: int) -> str:
        blob = json.dumps(
            {
                "generator": generator,
                "params": params.key(),
                "problem": problem,
                "prefix": list(prefix),
                "i": index,
            },
            sort_keys=True,
            ensure_ascii=False,
        )
        return hashlib.sha256(blob.encode()).hexdigest()

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
    """Samples i = 0..n-1 of a (problem, prefix), taken from the cache or generated (missing ones in one call)."""

    def __init__(self, generator: Generator, cache: SampleCache, params: SamplingParams):
        self.generator, self.cache, self.params = generator, cache, params
        self.hits = 0
        self.generated = 0

    def samples(self, problem: str, prefix: Sequence[str], n: int) -> list[str]:
        keys = [SampleCache.key(self.generator.name, self.params, problem, prefix, i) for i in range(n)]
        found = [self.cache.get(k) for k in keys]
        missing = [i for i, text in enumerate(found) if text is None]
        self.hits += n - len(missing)
        if missing:
            # The seed depends on what is being sampled, so results do not depend on the order of the work.
            seed = (int(keys[missing[0]][:8], 16) + self.params.seed) % (2**31)
            prompt = self.generator.build_prompt(problem, prefix, self.params)
            texts = self.generator.generate(prompt, len(missing), self.params, seed)
            if len(texts) != len(missing):
                raise RuntimeError(
                    f"the generator returned {len(texts)} samples, {len(missing)} were asked for"
                )
            self.cache.put_many([(keys[i], t) for i, t in zip(missing, texts, strict=True)])
            for i, t in zip(missing, texts, strict=True):
                found[i] = t
            self.generated += len(missing)
        return [t for t in found if t is not None]


def add_sampling_arguments(parser: argparse.ArgumentParser, max_new_tokens_help: str) -> None:
    """The generator, sampling, cache, device and thread flags shared by every CLI that samples."""
    parser.add_argument(
        "--generator", default="smollm2-135m", help="Causal LM: Hub id, local dir, .gguf or alias."
    )
    parser.add_argument("--max-new-tokens", type=int, default=256, help=max_new_tokens_help)
    parser.add_argument("--temperature", type=float, default=0.7, help="Sampling temperature (0 = greedy).")
    parser.add_argument("--top-p", type=float, default=0.95, help="Nucleus sampling p.")
    parser.add_argument("--seed", type=int, default=0, help="Mixed into every sample's seed (and cache key).")
    parser.add_argument(
        "--cache", default=None, help="SQLite sample cache (default: <cache root>/samples.sqlite)."
    )
    parser.add_argument("--device", default=None, help="Generator device (default cpu).")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads for generation. Token-by-token sampling gains little from several threads, "
        "and on a CPU shared with other jobs 1 thread can be many times faster (see docs/prm.md).",
    )


def open_sampler(args: argparse.Namespace) -> Sampler:
    """The generator and its on-disk cache from `add_sampling_arguments` flags; close `sampler.cache` after."""
    from rewardmodels.modeling import cache_root

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    params = SamplingParams(args.max_new_tokens, args.temperature, args.top_p, seed=args.seed)
    cache = SampleCache(args.cache or cache_root() / "samples.sqlite")
    return Sampler(HFGenerator.load(args.generator, args.device), cache, params)


# ---- labelling --------------------------------------------------------------------------------------------------


def label_solution(
    sampler: Sampler, problem: str, gold: str, steps: Sequence[str], rollouts: int, mode: str = "hard"
) -> dict:
    """MC labels for one solution: `rollouts` continuations from every prefix but the full solution."""
    if mode not in ("hard", "soft"):
        raise ValueError(f"label mode must be hard or soft, got {mode!r}")
    gold_parsed = parse_gold(gold)
    correct_counts = []
    for i in range(len(steps) - 1):
        texts = sampler.samples(problem, list(steps[: i + 1]), rollouts)
        correct_counts.append(sum(is_correct(t, gold_parsed) for t in texts))
    final_ok = is_correct(STEP_JOIN.join(steps), gold_parsed)
    if mode == "hard":
        labels = [c > 0 for c in correct_counts] + [final_ok]
    else:
        labels = [c / rollouts for c in correct_counts] + [1.0 if final_ok else 0.0]
    return {
        "prompt": problem,
        "completions": list(steps),
        "labels": labels,
        "answer": gold,
        "mc_correct": correct_counts,
        "mc_rollouts": rollouts,
        "solution_correct": final_ok,
    }


def _field(row: dict, names: Sequence[str], index: int, what: str):
    for name in names:
        if isinstance(row.get(name), str) and row[name].strip():
            return row[name]
    raise ValueError(
        f"row {index}, field '{names[0]}': a non-empty {what} is required (tried {', '.join(names)})"
    )


def label_problems(
    problems: Sequence[dict],
    sampler: Sampler,
    rollouts: int = 8,
    mode: str = "hard",
    solutions_per_problem: int = 1,
    step_split: str = STEP_JOIN,
    max_steps: int | None = None,
) -> list[dict]:
    """Stepwise rows for problems with gold answers (`problem`/`prompt`/`question` and `answer`).

    A row that already has steps (`completions` or `steps`) is labelled as it is; otherwise the generator
    writes `solutions_per_problem` solutions (the cached samples of the empty prefix), split on `step_split`.
    """
    rows = []
    for index, raw in enumerate(tqdm(problems, desc="MC labelling", unit="problem")):
        problem = _field(raw, ("problem", "prompt", "question"), index, "problem text")
        gold = str(raw.get("answer", "")).strip()
        if not gold:
            raise ValueError(f"row {index}, field 'answer': a gold answer is required")
        given = raw.get("completions") or raw.get("steps")
        if given:
            solutions = [list(given)]
        else:
            texts = sampler.samples(problem, [], solutions_per_problem)
            solutions = [split_solution(t, step_split, max_steps) for t in texts]
        for j, steps in enumerate(solutions):
            if not steps:
                logger.info("row %d: sampled solution %d is empty; skipped", index, j)
                continue
            row = label_solution(sampler, problem, gold, steps, rollouts, mode)
            row["id"] = f"{raw.get('unique_id', raw.get('id', index))}#{j}"
            row["generator"] = sampler.generator.name
            rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(
        prog="python -m rewardmodels.data_builders.mc_labeller",
        description=__doc__,
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "--problems",
        required=True,
        help="Rows with problem and answer (e.g. MATH-500), optionally with steps.",
    )
    parser.add_argument("--output", "-o", required=True, help="Stepwise JSONL to write (atomically).")
    parser.add_argument("--limit", type=int, default=None, help="Label only the first N problems.")
    parser.add_argument("--rollouts", type=int, default=8, help="Continuations per step prefix (N).")
    parser.add_argument(
        "--label-mode", choices=["hard", "soft"], default="hard", help="Any correct, or the share."
    )
    parser.add_argument(
        "--solutions", type=int, default=1, help="Solutions sampled per problem without steps."
    )
    parser.add_argument("--step-split", default="\\n\\n", help="How sampled solutions are split into steps.")
    parser.add_argument(
        "--max-steps", type=int, default=None, help="Merge steps beyond this many into the last."
    )
    add_sampling_arguments(parser, "Tokens per sampled continuation.")
    args = parser.parse_args(argv)
    setup_logging()

    from rewardmodels.data_builders.schema import stepwise_row_errors, validate_rows

    from rewardmodels.io import read_rows, write_jsonl
    problems = read_rows(args.problems)[: args.limit]
    sampler = open_sampler(args)
    split = args.step_split.replace("\\n", "\n")
    try:
        rows = label_problems(
            problems, sampler, args.rollouts, args.label_mode, args.solutions, split, args.max_steps
        )
    finally:
        sampler.cache.close()
    rows, report = validate_rows(rows, stepwise_row_errors, source="mc labeller")
    n = write_jsonl(args.output, rows)
    print(
        f"wrote {n} labelled rows to {args.output} ({report}); samples: {sampler.generated} generated, "
        f"{sampler.hits} from the cache at {sampler.cache.path}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
