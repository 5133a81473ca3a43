"""Scorer for generative verifiers (ThinkPRM-style): the verifier writes a verification chain for a solution
(`verifier_chains`: K parallel chains of R rounds), and its score is read from its own verdict.

  score                P(yes) / (P(yes) + P(no)) for the next token after the chain and the appended decision
                       question, averaged over the K chains
  score_steps          per step, the chain's verdict (1 correct, 0 incorrect, NaN: none) averaged over the
                       chains that gave one; with `step_probabilities`, P(correct) / (P(correct) +
                       P(incorrect)) for the label's first token right after each verdict_open ("\\boxed{")
  predict_first_error  the first step whose score is below 0.5, or -1 (None: an unscored step first)

Prompts (`prompt`): `verification` (default), the trained format above; `processbench_critic`, ProcessBench's
official critic prompt for any instruction-tuned LLM (`model`: weights and tokenizer, default the directory),
scored as in the paper: `predict_first_error` is the index in the critique's last \\boxed{}, K > 1 critiques
voted (`verification.vote_critic_index`), None (a miss) when there is none; `score_steps` and `score` follow
from it (`verifier_chains.critic_step_scores`; the share of critiques saying -1). docs/generative.md has the
manifest for any model and the official decoding (the defaults: greedy, 8,192 tokens).

Capitalisation: chains are trained on the format's answers ("Yes"/"No"), while ThinkPRM's inference reads
the lowercase choices "yes,no". `decision_choices` says which token probabilities are summed:

  both (default)  P(yes) = p(Yes) + p(yes), P(no) = p(No) + p(no): either casing is the same answer
  trained         the format's own answers only
  lowercase       the lowercased answers only, as ThinkPRM's API verifier

A local answer token is the first token the tokenizer gives the answer right after the question
(question + " " + answer, so " Yes" with its space); an endpoint token matches when its text, stripped, is
the answer. Backends:

  local     generation through `sampling.HFGenerator` (batched, left-padded); probabilities from one
            forward over the rendered chain (`logprobs.token_logprobs`, several targets at one position),
            the last `max_length` tokens when it is longer
  endpoint  an OpenAI-compatible server (vLLM, SGLang) generates through `sampling.EndpointGenerator`; the
            decision is one more generated token with `top_logprobs`, an answer outside the top k counting 0
            (both outside: NaN, counted). Step probabilities need the local model.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from rewardmodels.sampling import SampleCache, Sampler, SamplingParams, render_prompt, top_logprobs
from rewardmodels.scorers.next_token import distinguishing_tokens, next_token_logprobs
from rewardmodels.scorers.options import DEFAULT_OPTIONS, ScorerOptions
from rewardmodels.scorers.verifier_chains import (
    Chain,
    ChainCounts,
    ScalingSettings,
    critic_step_scores,
    generate_chains,
    generate_critiques,
)
from rewardmodels.steps import aggregate, split_response
from rewardmodels.verification import VerificationFormat, load_format, parse_chain, verifier_prompt
from rewardmodels.verification import vote_critic_index as vote

DECISION_CHOICES = ("both", "trained", "lowercase")
PROMPTS = ("verification", "processbench_critic")
SCALING_OPTIONS = ("parallel", "rounds", "max_new_tokens", "temperature", "top_p", "seed")
# The scorer's own settings, which the manifest's `verifier` block may also give.
VERIFIER_OPTIONS = (*SCALING_OPTIONS, "decision_choices", "step_probabilities", "response_step_split",
                    "top_k_logprobs", "sample_cache", "prompt", "model")  # fmt: skip


def answer_variants(fmt: VerificationFormat, choices: str) -> tuple[list[str], list[str]]:
    """The yes and no answer texts whose probabilities are summed, per `decision_choices`."""
    if choices not in DECISION_CHOICES:
        raise ValueError(f"decision_choices must be one of {', '.join(DECISION_CHOICES)}, got {choices!r}")
    yes, no = fmt.decision_answers["yes"], fmt.decision_answers["no"]
    if choices == "trained":
        return [yes], [no]
    if choices == "lowercase":
        return [yes.lower()], [no.lower()]
    return list(dict.fromkeys([yes, yes.lower()])), list(dict.fromkeys([no, no.lower()]))


def ratio(yes: float, no: float) -> float:
    """yes / (yes + no); NaN when both are 0."""
    return yes / (yes + no) if yes + no > 0 else math.nan


def problem_text(prompt) -> str:
    """A prompt as the problem text: a string as it is, a chat as its last user message."""
    if isinstance(prompt, str):
        return prompt
    users = [m["content"] for m in prompt if m.get("role") == "user"]
    return users[-1] if users else "\n".join(m["content"] for m in prompt)


class GenerativeScorer:
    kind = "generative"
    score_scale = step_score_scale = "probability"  # P(yes), verdict shares (scorers.calibration)
    # ScorerOptions.extra names it takes: the backend's, then the verifier's (from_directory)
    extra_options = ("endpoint", "endpoint_model", "api_key_env", "generation_batch_size", *VERIFIER_OPTIONS)

    def __init__(
        self,
        generator,
        tokenizer,
        fmt: VerificationFormat,
        settings: ScalingSettings,
        manifest: dict,
        *,
        device="cpu",
        max_length: int = 4096,
        decision_choices: str = "both",
        step_probabilities: bool = False,
        response_step_split: str = "\n\n",
        top_k_logprobs: int = 20,
        sample_cache: str | None = None,
        prompt: str = "verification",
    ):
        settings.check(fmt)
        self.generator, self.tokenizer, self.fmt, self.settings = generator, tokenizer, fmt, settings
        self.manifest, self.device, self.max_length = manifest, device, int(max_length)
        # A remote generator answers `complete` with log-probs; a local one hands its model to the forward.
        self.local = not hasattr(generator, "complete")
        if prompt not in PROMPTS:
            raise ValueError(f"prompt must be one of {', '.join(PROMPTS)}, got {prompt!r}")
        self.critic = prompt == "processbench_critic"
        if self.critic and (step_probabilities or settings.rounds > 1):
            raise ValueError("prompt=processbench_critic has one round and no verdict tokens to read")
        if step_probabilities and not self.local:
            raise ValueError("step_probabilities reads the label's token probability with the local model")
        self.decision_choices, self.step_probabilities = decision_choices, bool(step_probabilities)
        self.response_step_split = response_step_split
        self.top_k_logprobs = top_k_logprobs
        self.yes, self.no = answer_variants(fmt, decision_choices)
        self.answer_start = ""  # the text every answer's first distinct token follows (local only)
        if self.local and not self.critic:  # a critic's verdict is text, not a token probability
            # The decision is read after the question and whatever whole tokens all answers start with.
            answers = [" " + a for a in self.yes + self.no]
            self.answer_start, ids = distinguishing_tokens(tokenizer, fmt.decision_question, answers)
            self.yes_ids, self.no_ids = sorted(set(ids[: len(self.yes)])), sorted(set(ids[len(self.yes) :]))
            if set(self.yes_ids) & set(self.no_ids):
                raise ValueError(f"the yes and no answers share a first token: {self.yes} / {self.no}")
            labels = [fmt.verdict_labels["correct"], fmt.verdict_labels["incorrect"]]
            self.label_start, self.label_ids = distinguishing_tokens(tokenizer, fmt.verdict_open, labels)
        params = SamplingParams(
            settings.max_new_tokens, settings.temperature, settings.top_p, seed=settings.seed
        )
        self.sampler = Sampler(generator, SampleCache(sample_cache or ":memory:"), params)
        self.counts = ChainCounts()
        self.truncated_forwards = 0  # verdict reads that kept only the last max_length tokens
        self.missing_decisions = 0  # endpoint reads where neither answer was among the top log-probs
        self.unextractable = 0  # critiques without an integer in their last \\boxed{}

    @classmethod
    def from_directory(
        cls, path, manifest: dict, options: ScorerOptions = DEFAULT_OPTIONS
    ) -> GenerativeScorer:
        """An exported verifier directory. Extras: the scaling settings (parallel, rounds, max_new_tokens,
        temperature, top_p, seed), decision_choices, step_probabilities, response_step_split,
        top_k_logprobs, sample_cache (a SQLite file; in memory by default), prompt and model (module
        docstring), whose defaults come from the manifest's `verifier` block (`model` from the manifest's
        top level); `endpoint` (+ `endpoint_model`, `api_key_env`) generates on an OpenAI-compatible server
        instead of loading the model, and `generation_batch_size` (16) batches local generation."""
        from rewardmodels.sampling import generator_fingerprint

        extra = {k: v for k, v in options.extra.items() if v is not None}
        defaults = {
            **manifest.get("verifier", {}),
            **{k: v for k, v in extra.items() if k in VERIFIER_OPTIONS},
        }
        settings = ScalingSettings(**{k: defaults[k] for k in SCALING_OPTIONS if k in defaults})
        source = str(defaults.pop("model", None) or manifest.get("model") or path)
        if "verification_format" not in manifest and defaults.get("prompt") != "processbench_critic":
            raise ValueError(f"{path}: no verification_format (only prompt=processbench_critic needs none)")
        stored = manifest.get("verification_format")  # the critic prompt never reads the format
        fmt = (
            VerificationFormat.from_dict(stored, f"{path}: verification_format") if stored else load_format()
        )
        if extra.get("endpoint"):
            from rewardmodels.modeling import load_tokenizer
            from rewardmodels.sampling import EndpointGenerator, api_key_from_env

            if not extra.get("endpoint_model"):
                raise ValueError(
                    "endpoint needs endpoint_model: the name the server serves the verifier under"
                )
            tokenizer = load_tokenizer(source, distinct_pad=False)
            api_key = api_key_from_env(extra.get("api_key_env"))
            generator = EndpointGenerator(extra["endpoint"], extra["endpoint_model"], api_key=api_key)
            dev = "remote"
        else:
            from rewardmodels.sampling import HFGenerator
            from rewardmodels.scorers.base import load_for_scoring

            model, tokenizer, dev = load_for_scoring(source, "causal_lm", **options.model_keywords())
            fingerprint = generator_fingerprint(source, source)
            batch_size = extra.get("generation_batch_size", 16)
            generator = HFGenerator(model, tokenizer, fingerprint, batch_size=batch_size)
        rest = {k: defaults[k] for k in VERIFIER_OPTIONS if k in defaults and k not in SCALING_OPTIONS}
        return cls(
            generator,
            tokenizer,
            fmt,
            settings,
            manifest,
            device=dev,
            max_length=options.max_length or manifest.get("max_length", 4096),
            **rest,
        )

    # ---- chains and verdicts ------------------------------------------------------------------------

    def chains(self, prompts: Sequence, steps: Sequence[Sequence[str]]) -> list[list[Chain]]:
        """K verification chains per solution (counted in `compute_report`)."""
        if len(prompts) != len(steps):
            raise ValueError(f"{len(prompts)} prompts but {len(steps)} step lists")
        problems = [problem_text(p) for p in prompts]
        k, count = self.settings.parallel, self._count_tokens
        out = (generate_critiques(self.sampler, problems, steps, k, count) if self.critic
               else generate_chains(self.sampler, self.fmt, problems, steps, self.settings, count))  # fmt: skip
        for chains in out:
            self.counts.add(chains)
        return out

    def _count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"]) if text else 0

    def _continuation(self, chain: Chain) -> str:
        """What follows the chain opener when the verdict is read (`Chain.scored_continuation`, plus the
        text all answers start with in this tokenizer)."""
        return chain.scored_continuation(self.fmt) + self.answer_start

    def _scored_prompts(self, prompts, steps, chains) -> list[list[dict]]:
        return [
            verifier_prompt(self.fmt, problem_text(p), s, self._continuation(c))
            for p, s, group in zip(prompts, steps, chains, strict=True)
            for c in group
        ]

    def decision_scores(self, scored: list[list[dict]], batch_size: int = 16) -> list[float]:
        """P(yes) / (P(yes) + P(no)) after each scored prompt (the chain plus the decision question)."""
        if not self.local:
            return [self._endpoint_decision(p) for p in scored]
        texts = [render_prompt(self.tokenizer, p) for p in scored]
        logps = self._token_logprobs(texts, [[None] for _ in texts], self.yes_ids + self.no_ids, batch_size)
        n_yes = len(self.yes_ids)
        return [ratio(sum(math.exp(x) for x in lp[0][:n_yes]), sum(math.exp(x) for x in lp[0][n_yes:]))
                for lp in logps]  # fmt: skip

    def _endpoint_decision(self, prompt: list[dict]) -> float:
        params = SamplingParams(max_new_tokens=1, temperature=0.0)
        completion = self.generator.complete(prompt, params, top_logprobs=self.top_k_logprobs)[0]
        alternatives = (top_logprobs(completion) or [{}])[0]
        yes = sum(math.exp(lp) for tok, lp in alternatives.items() if tok.strip() in self.yes)
        no = sum(math.exp(lp) for tok, lp in alternatives.items() if tok.strip() in self.no)
        if yes + no == 0:
            self.missing_decisions += 1
        return ratio(yes, no)

    def _token_logprobs(self, texts, chars, targets, batch_size: int) -> list[list[list[float] | None]]:
        values, cut = next_token_logprobs(
            self.generator.model, self.tokenizer, texts, chars, targets, self.max_length, batch_size
        )
        self.truncated_forwards += cut
        return values

    def _step_values(self, steps, chains, scored, batch_size: int) -> list[list[list[float]]]:
        """Per solution, per chain, one value per step: the verdict (1/0/NaN) or its probability."""
        parsed = [
            [parse_chain(self.fmt, c.body, len(s)) for c in group]
            for s, group in zip(steps, chains, strict=True)
        ]
        if not self.step_probabilities:
            return [
                [[math.nan if v is None else float(v) for v in p.verdicts] for p in group] for group in parsed
            ]
        texts = [render_prompt(self.tokenizer, p) for p in scored]
        flat_chains = [
            (c, p)
            for group, pgroup in zip(chains, parsed, strict=True)
            for c, p in zip(group, pgroup, strict=True)
        ]
        chars = []
        for text, (chain, p) in zip(texts, flat_chains, strict=True):
            base = len(text) - len(self._continuation(chain)) + len(self.label_start)  # the body's start
            chars.append([None if a is None else base + a for a in p.verdict_at])
        logps = self._token_logprobs(
            texts, [[c for c in row if c is not None] for row in chars], self.label_ids, batch_size
        )
        values, at = [], 0
        for group in parsed:
            rows = []
            for p in group:
                got = iter(logps[at])
                rows.append([math.nan if a is None else _label_probability(next(got)) for a in p.verdict_at])
                at += 1
            values.append(rows)
        return values

    # ---- capabilities -----------------------------------------------------------------------------------

    def score_steps(
        self, prompts: Sequence, steps: Sequence[Sequence[str]], batch_size: int = 16
    ) -> list[list[float]]:
        """Per step, the K chains' verdicts (or their probabilities) averaged; NaN where none gave one."""
        if self.critic:
            indices = self.critic_indices(prompts, steps)
            return [critic_step_scores(i, len(s)) for i, s in zip(indices, steps, strict=True)]
        chains = self.chains(prompts, steps)
        scored = self._scored_prompts(prompts, steps, chains) if self.step_probabilities else []
        per_chain = self._step_values(steps, chains, scored, batch_size)
        return [[aggregate([row[k] for row in group], "mean") for k in range(len(s))]
                for s, group in zip(steps, per_chain, strict=True)]  # fmt: skip

    def predict_first_error(
        self, prompts: Sequence, steps: Sequence[Sequence[str]], batch_size: int = 16
    ) -> list[int | None]:
        """The first step scored below 0.5 by `score_steps`, or -1; None when a step that no chain gave a
        verdict (NaN) comes first: the prediction is undetermined, a miss by ProcessBench's official rule.
        The critic prompt: the voted index itself, as the official evaluation reads it."""
        if self.critic:
            return self.critic_indices(prompts, steps)
        return [_first_below_half(s) for s in self.score_steps(prompts, steps, batch_size)]

    def critic_indices(self, prompts: Sequence, steps: Sequence[Sequence[str]]) -> list[int | None]:
        """Per solution, the index its K critiques vote for (`verification.vote_critic_index`)."""
        groups = self.chains(prompts, steps)
        self.unextractable += sum(vote([c.body]) is None for g in groups for c in g)
        return [vote([c.body for c in g]) for g in groups]

    def score_solutions(
        self, prompts: Sequence, steps: Sequence[Sequence[str]], batch_size: int = 16
    ) -> list[float]:
        """P(yes) / (P(yes) + P(no)) per solution, averaged over its K chains (NaN chains left out); with the
        critic prompt, the share of its critiques with an index that say -1 (NaN when none has one)."""
        if self.critic:
            found = [[vote([c.body]) for c in g] for g in self.chains(prompts, steps)]
            return [aggregate([float(i == -1) for i in g if i is not None], "mean") for g in found]
        chains = self.chains(prompts, steps)
        values = self.decision_scores(self._scored_prompts(prompts, steps, chains), batch_size)
        k = self.settings.parallel
        return [aggregate(values[i * k : (i + 1) * k], "mean") for i in range(len(chains))]

    def score(self, prompts: Sequence, responses: Sequence, batch_size: int = 16) -> list[float]:
        """Pointwise P(yes) for whole responses, cut into steps at `response_step_split`."""
        if len(prompts) != len(responses):
            raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
        steps = [split_response(r, self.response_step_split) for r in responses]
        return self.score_solutions(prompts, steps, batch_size)

    def compute_report(self) -> dict:
        """What verification has cost so far (tokens as `verifier_chains` counts them), and the settings."""
        c = self.counts
        return {
            "tokens_generated": c.tokens_generated,
            "solutions": c.solutions,
            "tokens_per_solution": c.tokens_generated / c.solutions if c.solutions else None,
            "chains": c.chains,
            "rounds_generated": c.rounds,
            "forced_verdicts": c.forced_verdicts,
            "truncated_verdict_reads": self.truncated_forwards,
            "missing_decisions": self.missing_decisions,
            "prompt": "processbench_critic" if self.critic else "verification",
            "unextractable_critiques": self.unextractable,
            "backend": "local" if self.local else "endpoint",
            "decision_choices": self.decision_choices,
            "step_probabilities": self.step_probabilities,
            **self.settings.as_dict(),
        }

    def as_reward_func(self, **options):
        """A TRL reward function (`scorers.reward_funcs.reward_function`)."""
        from rewardmodels.scorers.reward_funcs import reward_function

        name = f"generative_{Path(str(self.manifest.get('base_model', 'scorer'))).name}"
        return reward_function(self, name=name, **options)


def _label_probability(logps: list[float] | None) -> float:
    """P(correct) / (P(correct) + P(incorrect)) from the two labels' log-probs (correct first)."""
    if logps is None:
        return math.nan
    return ratio(math.exp(logps[0]), math.exp(logps[1]))


def _first_below_half(scores: Sequence[float]) -> int | None:
    for i, v in enumerate(scores):
        if math.isnan(v):
            return None
        if v < 0.5:
            return i
    return -1
