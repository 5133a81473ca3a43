"""Verification chains with verifier compute scaling: how a generative verifier writes the text its verdict
is read after. Generation goes through `rewardmodels.sampling` (a `Sampler` over a local or HTTP generator).

Per solution, `parallel` = K chains are sampled (ThinkPRM's parallel scaling: their scores are averaged), and
each chain runs `rounds` = R thinking rounds (its sequential scaling, budget forcing):

  round 1      the verifier prompt (`verification.verifier_prompt`), continued for up to max_new_tokens
  round r > 1  the chain so far, then "\\n" + trigger_phrases[r - 2], continued again; a different phrase
               each round, because one repeated phrase made ThinkPRM's model loop

Each round's text is cut at its first decision question, or at the format's think_close tag ("</think>",
where ThinkPRM's inference stops too; `verification.chain_body`), so later rounds can re-check steps and text
after the decision never counts. After the last round the decision question is appended, think_close + "\\n"
+ question, and the verdict probability is read at its end. A chain whose last round reached neither (it hit
max_new_tokens, or stopped without a decision) is a *forced* verdict, and is counted.

Decoding defaults are ThinkPRM's inference settings (mukhal/ThinkPRM search-and-learn/src/sal/config.py:51-52,
64): one chain, greedy (temperature 0), up to 8,192 new tokens. The smoke recipes override them with a CPU
budget (sampling at 0.6, 160-1,024 tokens), written in each recipe.

ProcessBench's critic prompt (`generate_critiques`) is one round per sample of the official critic chat
(`verification.critic_prompt`): K samples per solution, their indices voted (`verification.vote_critic_index`).

Compute is counted as tokens generated: every round's returned text, re-tokenized with the verifier's
tokenizer (a generator's end-of-sequence token is not in its text, so it is not counted), whether the sample
was generated now or read from the sample cache, so equal settings always report equal compute.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

from rewardmodels.sampling import Sampler
from rewardmodels.verification import VerificationFormat, chain_body, critic_prompt, verifier_prompt


@dataclass(frozen=True)
class ScalingSettings:
    """K parallel chains, R rounds each, up to `max_new_tokens` tokens per round, sampled at `temperature`
    (0 = greedy, where K > 1 repeats one chain) with nucleus `top_p`; `seed` is mixed into every sample's.
    Defaults: ThinkPRM's inference (greedy, 8,192 tokens; module docstring)."""

    parallel: int = 1
    rounds: int = 1
    max_new_tokens: int = 8192
    temperature: float = 0.0
    top_p: float = 0.95
    seed: int = 0

    def __post_init__(self) -> None:
        if self.parallel < 1:
            raise ValueError(f"parallel (chains per solution) must be at least 1, got {self.parallel}")
        if self.rounds < 1:
            raise ValueError(f"rounds (thinking rounds per chain) must be at least 1, got {self.rounds}")

    def check(self, fmt: VerificationFormat) -> None:
        """Round r > 1 needs its own trigger phrase."""
        if self.rounds - 1 > len(fmt.trigger_phrases):
            raise ValueError(
                f"rounds={self.rounds} needs {self.rounds - 1} trigger phrases, the format "
                f"{fmt.name!r} has {len(fmt.trigger_phrases)}: {list(fmt.trigger_phrases)}"
            )

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Chain:
    """One verification chain: `body` is the text after the chain opener, before the appended decision
    question; `round_texts` the texts as generated; `forced` whether the question had to be appended."""

    body: str
    round_texts: list[str]
    forced: bool
    tokens: int

    def scored_continuation(self, fmt: VerificationFormat) -> str:
        """What follows the chain opener when the verdict is read: body + think_close + "\\n" + question."""
        return self.body.rstrip() + fmt.think_close + "\n" + fmt.decision_question


@dataclass
class ChainCounts:
    """Running totals: solutions verified, chains, rounds generated, forced verdicts, tokens generated."""

    solutions: int = 0
    chains: int = 0
    rounds: int = 0
    forced_verdicts: int = 0
    tokens_generated: int = 0

    def add(self, chains: Sequence[Chain]) -> None:
        self.solutions += 1
        for chain in chains:
            self.chains += 1
            self.rounds += len(chain.round_texts)
            self.forced_verdicts += chain.forced
            self.tokens_generated += chain.tokens


def cut_at_question(fmt: VerificationFormat, text: str) -> tuple[str, bool]:
    """(text before its first decision question or think_close tag, whether it reached one)."""
    return chain_body(fmt, text)


def next_round_continuation(fmt: VerificationFormat, body: str, round_index: int) -> str:
    """The chain before round `round_index` (0-based, >= 1): body + "\\n" + that round's trigger phrase."""
    return body.rstrip() + "\n" + fmt.trigger_phrases[round_index - 1]


def generate_chains(
    sampler: Sampler,
    fmt: VerificationFormat,
    problems: Sequence[str],
    steps: Sequence[Sequence[str]],
    settings: ScalingSettings,
    count_tokens: Callable[[str], int],
) -> list[list[Chain]]:
    """K chains of R rounds for every (problem, steps), each round of all solutions in one sampler call.

    Round 1 asks for samples 0..K-1 of each solution's prompt; a later round continues each chain from its
    own text (a prompt of its own), sample 0 of it.
    """
    settings.check(fmt)
    if len(problems) != len(steps):
        raise ValueError(f"{len(problems)} problems but {len(steps)} step lists")
    k = settings.parallel
    first = sampler.complete_many(
        [(verifier_prompt(fmt, p, s), k) for p, s in zip(problems, steps, strict=True)]
    )
    bodies, reached, texts, tokens = [], [], [], []
    for samples in first:
        for text in samples:
            body, asked = cut_at_question(fmt, text)
            bodies.append(body)
            reached.append(asked)
            texts.append([text])
            tokens.append(count_tokens(text))
    owners = [i for i in range(len(problems)) for _ in range(k)]
    for r in range(1, settings.rounds):
        continuations = [next_round_continuation(fmt, b, r) for b in bodies]
        requests = [
            (verifier_prompt(fmt, problems[i], steps[i], c), 1)
            for i, c in zip(owners, continuations, strict=True)
        ]
        for j, (samples, c) in enumerate(zip(sampler.complete_many(requests), continuations, strict=True)):
            body, asked = cut_at_question(fmt, samples[0])
            bodies[j] = c + body
            reached[j] = asked
            texts[j].append(samples[0])
            tokens[j] += count_tokens(samples[0])
    chains = [Chain(b, t, not a, n) for b, t, a, n in zip(bodies, texts, reached, tokens, strict=True)]
    return [chains[i * k : (i + 1) * k] for i in range(len(problems))]


def generate_critiques(
    sampler: Sampler,
    problems: Sequence[str],
    steps: Sequence[Sequence[str]],
    k: int,
    count_tokens: Callable[[str], int],
) -> list[list[Chain]]:
    """K critiques per (problem, steps) with ProcessBench's critic prompt, all in one sampler call; each is a
    one-round Chain whose body is the whole critique (its index is read by `verification.vote_critic_index`)."""
    if len(problems) != len(steps):
        raise ValueError(f"{len(problems)} problems but {len(steps)} step lists")
    samples = sampler.complete_many([(critic_prompt(p, s), k) for p, s in zip(problems, steps, strict=True)])
    return [[Chain(t, [t], False, count_tokens(t)) for t in texts] for texts in samples]


def critic_step_scores(index: int | None, n: int) -> list[float]:
    """Step scores from a critic's index: 1 before it, 0 at it, NaN after; -1: all 1; None or an index outside
    the solution's n steps: all NaN (undetermined)."""
    if index == -1:
        return [1.0] * n
    if index is None or not 0 <= index < n:
        return [math.nan] * n
    return [1.0] * index + [0.0] + [math.nan] * (n - index - 1)


__all__ = [
    "Chain",
    "ChainCounts",
    "ScalingSettings",
    "critic_step_scores",
    "cut_at_question",
    "generate_chains",
    "generate_critiques",
    "next_round_continuation",
]
