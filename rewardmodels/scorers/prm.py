"""Scorer for step-level process reward models: a probability at the separator after every step.

The scorer formats (prompt, steps) exactly as training did (`tokenization.tokenize_steps` with the separator
from the manifest), reads the head at each separator, and turns the logits into the probability that the step
is correct: softmax over a two-way head (index 1 = correct, as in Qwen2.5-Math-PRM) or sigmoid of one logit.
`score()` splits a whole response into steps and aggregates their probabilities (min, prod, last or mean), so
a PRM also works wherever an outcome scorer is expected: RewardBench, best-of-N, a TRL reward function.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from rewardmodels.collators import PaddedStepCollator
from rewardmodels.modeling import rewards_at
from rewardmodels.scorers.base import length_sorted_batches, load_for_scoring
from rewardmodels.scorers.options import DEFAULT_OPTIONS, ScorerOptions
from rewardmodels.scorers.reward_funcs import reward_function
from rewardmodels.steps import (
    PROBABILITY_AGGREGATIONS,
    aggregate,
    check_aggregation,
    split_response,
    step_probabilities,
)
from rewardmodels.tokenization import separator_ids, step_prompt_ids, tokenize_steps


class PRMScorer:
    kind = "prm"
    score_scale = step_score_scale = "probability"  # P(step correct), and its aggregate (scorers.calibration)
    extra_options: tuple[str, ...] = ("aggregation",)  # ScorerOptions.extra names it takes

    def __init__(
        self,
        model,
        tokenizer,
        manifest: dict,
        device: torch.device,
        aggregation: str | None = None,
        max_length: int | None = None,
    ):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.manifest = manifest
        self.device = device
        self.max_length = int(max_length or manifest.get("max_length", 4096))
        self.use_chat_template = bool(manifest.get("use_chat_template", False))
        self.step_separator = manifest.get("step_separator", "\n\n")
        self.sep_ids = separator_ids(tokenizer, self.step_separator)
        expected = manifest.get("separator_ids")
        if expected is not None and list(expected) != self.sep_ids:
            raise ValueError(
                f"the tokenizer encodes the separator {self.step_separator!r} as {self.sep_ids}, but training "
                f"used {expected}; the scorer directory's tokenizer does not match its model"
            )
        self.aggregation = aggregation or manifest.get("aggregation", "min")
        check_aggregation(self.aggregation, PROBABILITY_AGGREGATIONS)
        self.response_step_split = manifest.get("response_step_split") or "\n\n"
        self.collate = PaddedStepCollator(pad_token_id=tokenizer.pad_token_id)
        self.unscored_steps = 0  # steps beyond max_length, returned as NaN

    @classmethod
    def from_directory(cls, path, manifest: dict, options: ScorerOptions = DEFAULT_OPTIONS) -> PRMScorer:
        """An exported PRM directory; `options.max_length` and the extra `aggregation` override the
        manifest's."""
        model, tokenizer, dev = load_for_scoring(path, "token_cls", **options.model_keywords())
        aggregation = options.extra.get("aggregation")
        return cls(model, tokenizer, manifest, dev, aggregation=aggregation, max_length=options.max_length)

    @torch.inference_mode()
    def score_steps(
        self, prompts: Sequence, steps: Sequence[Sequence[str]], batch_size: int = 16
    ) -> list[list[float]]:
        """The probability that each step is correct, per solution. Steps cut by max_length come back as NaN."""
        if len(prompts) != len(steps):
            raise ValueError(f"{len(prompts)} prompts but {len(steps)} step lists")
        encoded, prompt_cache = [], {}
        for prompt, solution in zip(prompts, steps, strict=True):
            key = prompt if isinstance(prompt, str) else repr(prompt)
            if key not in prompt_cache:  # best-of-N scores many solutions of one prompt
                prompt_cache[key] = step_prompt_ids(self.tokenizer, prompt, self.use_chat_template)
            encoded.append(
                tokenize_steps(
                    self.tokenizer,
                    prompt,
                    list(solution),
                    None,
                    self.sep_ids,
                    self.use_chat_template,
                    self.max_length,
                    prompt_ids=prompt_cache[key],
                )
            )
        out = [[float("nan")] * len(s) for s in steps]
        for tok, solution in zip(encoded, steps, strict=True):
            self.unscored_steps += len(solution) - tok.kept_steps
        for batch_idx in length_sorted_batches([len(t.input_ids) for t in encoded], batch_size):
            batch_idx = [i for i in batch_idx if encoded[i].step_positions]
            if not batch_idx:
                continue
            batch = self.collate([encoded[i].as_features() for i in batch_idx])
            batch = {k: v.to(self.device) for k, v in batch.items()}
            probs = step_probabilities(rewards_at(self.model, batch)).cpu().tolist()
            at = 0
            for i in batch_idx:
                for step in encoded[i].step_index:
                    out[i][step] = probs[at]
                    at += 1
        return out

    def score(self, prompts: Sequence, responses: Sequence, batch_size: int = 16) -> list[float]:
        """One score per response: its steps (split on the manifest's `response_step_split`) aggregated."""
        if len(prompts) != len(responses):
            raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
        steps = [split_response(r, self.response_step_split) for r in responses]
        return [aggregate(p, self.aggregation) for p in self.score_steps(prompts, steps, batch_size)]

    def as_reward_func(self, **options):
        """A TRL reward function (`scorers.reward_funcs.reward_function`: aggregation, calibrated, clip,
        batch_size, asynchronous); without `aggregation`, the scorer's own."""
        name = f"prm_{Path(str(self.manifest.get('base_model', 'scorer'))).name}"
        return reward_function(self, name=name, **options)
