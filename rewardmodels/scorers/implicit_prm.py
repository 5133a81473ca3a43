"""Implicit PRM scorer: process rewards from a policy's log-ratio to its reference, with no step labels.

Per response token t, w_t = beta * (log pi_theta(y_t|y_<t) - log pi_ref(y_t|y_<t))
(`losses.implicit_token_rewards`); token values and step rewards are in `rewardmodels.causal.implicit_rewards`,
the per-response aggregations (`REWARD_AGGREGATIONS`) and the step splitter in `rewardmodels.steps`. This
scorer gives:

  score / score_ids / score_groups_ids   one value per response, by the aggregation: min (default) = the
                                          smallest step reward min_k r_k; min_q = the smallest step value
                                          min_k q_k; last = q_T = r_theta(y); sum
  score_steps(prompts, steps)             per step, by `step_scores`: sigmoid_q (default) = sigmoid(q at the
                                          end of step k), our reading of the authors' ProcessBench script
                                          (PRIME-RL/ImplicitPRM eval/process_eval.sh thresholds a value at
                                          0.5005, just above 1/2 as a probability; its processbench.py is not
                                          in our stored copy); or reward = r_k
  token_rewards_ids(sequences)            w_t for every response token (what PRIME's online update uses)

beta is the manifest's training beta unless `beta=` is given at load: the inference coefficient (that
script reads EurusPRM with --coef 0.005). Rankings by any aggregation, and a ProcessBench F1 at a threshold
tuned on the same reading, do not depend on it; a fixed threshold on sigmoid_q does.

Step boundaries: `score_steps` joins the caller's steps with the manifest's `step_separator` and maps each
step's end to tokens through the offsets of the one rendering that is scored
(`response_tokens.encode_response`); `encode` (for score) splits a response at that separator
(`steps.split_points`). A step without tokens has no reward (NaN, left out of min and sum).

Truncation: score paths keep a response's last max_length tokens (as the DPO scorer does); score_steps keeps
the first max_length tokens (a step is judged by what precedes it), and steps cut off come back as NaN.

The manifest names the reference (a path inside the directory, an absolute path, the embedded alias or a
Hub id in the local cache) and its fingerprint; a missing reference, or one whose weights differ from the
fingerprint, is refused before scoring. A reference-free scorer (`ref_free: true`) needs none.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import torch

from rewardmodels.causal.fingerprints import model_directory, model_fingerprint
from rewardmodels.causal.implicit_rewards import (
    DEFAULT_AGGREGATION,
    DEFAULT_STEP_SCORES,
    STEP_SCORES,
    step_rewards,
)
from rewardmodels.causal.logprobs import LogprobBatch, pad_id_within_vocab, response_logprobs
from rewardmodels.causal.response_tokens import EncodedResponse, encode_response, join_steps, keep_last_tokens
from rewardmodels.errors import InputError
from rewardmodels.losses import implicit_token_rewards
from rewardmodels.scorers.base import (
    MANIFEST_NAME,
    count_cuts,
    group_response_values,
    load_for_scoring,
    response_values,
)
from rewardmodels.scorers.options import DEFAULT_OPTIONS, ScorerOptions
from rewardmodels.steps import REWARD_AGGREGATIONS, aggregate_steps, check_aggregation, split_points


class ImplicitPRMScorer:
    kind = "implicit_prm"
    score_scale = "logit"  # every REWARD_AGGREGATIONS value is a reward or a q (scorers.calibration)
    # ScorerOptions.extra names it takes (from_directory says what each does)
    extra_options: tuple[str, ...] = ("aggregation", "step_scores", "reference", "ref_free", "beta")
    preferred_batch_size = 8  # sequences per forward off CPU when the caller names none: two models run

    def __init__(
        self,
        policy,
        reference,
        tokenizer,
        device: torch.device,
        beta: float = 0.05,
        aggregation: str = DEFAULT_AGGREGATION,
        step_scores: str = DEFAULT_STEP_SCORES,
        step_separator: str = "\n\n",
        max_length: int = 4096,
        use_chat_template: bool | None = None,
        manifest: dict | None = None,
    ):
        check_aggregation(aggregation, REWARD_AGGREGATIONS)
        if step_scores not in STEP_SCORES:
            raise ValueError(f"step_scores must be one of {STEP_SCORES}, got {step_scores!r}")
        if not float(beta) > 0:  # a non-positive coefficient would reverse or erase every ranking
            raise ValueError(f"beta must be positive, got {beta!r}")
        self.policy = policy.eval()
        self.reference = reference.eval() if reference is not None else None
        self.tokenizer, self.device, self.beta = tokenizer, device, float(beta)
        self.aggregation, self.step_scores, self.step_separator = aggregation, step_scores, step_separator
        self.max_length = int(max_length)
        self.use_chat_template = (
            tokenizer.chat_template is not None if use_chat_template is None else bool(use_chat_template)
        )
        self.pad_id = pad_id_within_vocab(tokenizer, policy)
        self.manifest = manifest or {"kind": self.kind, "beta": self.beta}
        self.truncated = 0
        self.last_truncated: list[bool] = []
        self.unscored_steps = 0  # steps beyond max_length in score_steps, returned as NaN
        self.step_score_scale = "probability" if step_scores == "sigmoid_q" else "logit"

    @classmethod
    def from_directory(
        cls, path, manifest: dict, options: ScorerOptions = DEFAULT_OPTIONS
    ) -> ImplicitPRMScorer:
        """An exported implicit PRM: the policy's AutoModelForCausalLM files, and the reference the manifest
        names (or the extra `reference`, overriding it), checked against the manifest's fingerprint.
        `options.max_length` and the extras `aggregation`, `step_scores` and `beta` (the inference
        coefficient) override the manifest's; the extra `ref_free=True` scores without the reference
        (beta * sum_t log pi_theta(y_t|y_<t), paper section 5.5.2) whatever the manifest says."""
        extra = options.extra
        free = manifest.get("ref_free") if extra.get("ref_free") is None else extra["ref_free"]
        ref_dir = None if free else check_reference(Path(path), manifest, extra.get("reference"))
        model_keywords = options.model_keywords()
        policy, tokenizer, dev = load_for_scoring(path, "causal_lm", **model_keywords)
        ref_model = None
        if ref_dir is not None:
            if Path(ref_dir).resolve() == Path(path).resolve():
                ref_model = policy
            else:
                ref_model, _, _ = load_for_scoring(
                    ref_dir, "causal_lm", **model_keywords, tokenizer=tokenizer
                )
            if ref_model.get_input_embeddings().weight.shape != policy.get_input_embeddings().weight.shape:
                raise InputError(
                    Path(path) / MANIFEST_NAME,
                    None,
                    "reference",
                    "the reference's vocabulary differs from the policy's",
                )
        return cls(
            policy,
            ref_model,
            tokenizer,
            dev,
            beta=manifest.get("beta", 0.05) if extra.get("beta") is None else float(extra["beta"]),
            aggregation=extra.get("aggregation") or manifest.get("aggregation", DEFAULT_AGGREGATION),
            step_scores=extra.get("step_scores") or manifest.get("step_scores", DEFAULT_STEP_SCORES),
            step_separator=manifest.get("step_separator", "\n\n"),
            max_length=options.max_length or manifest.get("max_length") or 4096,
            use_chat_template=manifest.get("use_chat_template"),
            manifest=manifest,
        )

    # -- tokenization -------------------------------------------------------------------------------------
    def encode(self, prompts: Sequence, responses: Sequence) -> list[EncodedResponse]:
        """Ids of each prompt + response with its step boundaries (split at `step_separator`; chat-message
        responses are one step), cut to their last max_length tokens."""
        if len(prompts) != len(responses):
            raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
        encoded = (self._encode_with_steps(p, r) for p, r in zip(prompts, responses, strict=True))
        return count_cuts(self, (keep_last_tokens(e, self.max_length) for e in encoded))

    def _encode_with_steps(self, prompt, response) -> EncodedResponse:
        """A text response with its steps; chat messages, or a text the chat template altered (so its step
        offsets cannot be found), as one step."""
        if isinstance(response, str):
            ends = split_points(response, self.step_separator)
            try:
                return encode_response(self.tokenizer, prompt, response, self.use_chat_template, ends)
            except ValueError:
                pass
        return encode_response(self.tokenizer, prompt, response, self.use_chat_template)

    # -- per-token rewards ----------------------------------------------------------------------------------
    def _token_rewards(self, batch: LogprobBatch) -> list[torch.Tensor]:
        """w_t per response token of every sequence of the batch, slot order, float64 on the CPU."""
        policy = response_logprobs(self.policy, batch)
        if self.reference is self.policy:  # the same weights twice: every ratio is exactly 0
            return [torch.zeros(p.numel(), dtype=torch.float64) for p in policy]
        reference = response_logprobs(self.reference, batch) if self.reference is not None else None
        refs = reference if reference is not None else [torch.zeros_like(p) for p in policy]
        return [implicit_token_rewards(p, r, self.beta).cpu() for p, r in zip(policy, refs, strict=True)]

    @torch.inference_mode()
    def token_rewards_ids(self, sequences: Sequence, batch_size: int = 8) -> list[torch.Tensor]:
        """w_t for every response token of every encoded sequence (a sequence without `response_start` is
        all response after its first token), float64 on the CPU."""
        return response_values(sequences, self._token_rewards, self.pad_id, self.device, batch_size)

    def _score_of(self, sequence, rewards: torch.Tensor) -> float:
        bounds = getattr(sequence, "step_boundaries", ()) or (rewards.numel(),)
        steps = step_rewards(rewards, bounds).tolist()
        starts = (0, *bounds[:-1])
        steps = [r if end > start else math.nan for r, start, end in zip(steps, starts, bounds, strict=True)]
        return aggregate_steps(steps, float(rewards.sum()), self.aggregation)

    # -- scoring ------------------------------------------------------------------------------------------
    def score_ids(self, sequences: list[EncodedResponse], batch_size: int = 8) -> list[float]:
        rewards = self.token_rewards_ids(sequences, batch_size)
        return [self._score_of(s, w) for s, w in zip(sequences, rewards, strict=True)]

    @torch.inference_mode()
    def score_groups_ids(self, groups: list[list[EncodedResponse]], batch_size: int = 8) -> list[list[float]]:
        """Scores for groups of responses to one prompt, each group one shared-prompt tree through the
        segmented sdpa kernel (`rewardmodels.packing`); other kernels get score_ids. Equal to score_ids' up
        to float rounding."""

        def values_of(batch, flat):
            rewards = self._token_rewards(batch)
            return [self._score_of(flat[slot], w) for slot, w in zip(batch.slots, rewards, strict=True)]

        return group_response_values(self, groups, values_of, batch_size)

    def score(self, prompts: Sequence, responses: Sequence, batch_size: int = 8) -> list[float]:
        return self.score_ids(self.encode(prompts, responses), batch_size)

    def score_steps(
        self, prompts: Sequence, steps: Sequence[Sequence[str]], batch_size: int = 8
    ) -> list[list[float]]:
        """Per step: sigmoid(q at the end of step k) (`step_scores` sigmoid_q) or r_k (reward); steps that
        do not fit in the first max_length tokens are NaN."""
        if len(prompts) != len(steps):
            raise ValueError(f"{len(prompts)} prompts but {len(steps)} step lists")
        encoded, kept = [], []
        for prompt, solution in zip(prompts, steps, strict=True):
            text, ends = join_steps(list(solution), self.step_separator)
            full = encode_response(self.tokenizer, prompt, text, self.use_chat_template, ends)
            cut, n_steps = keep_first_tokens(full, self.max_length)
            encoded.append(cut)
            kept.append(n_steps)
            self.unscored_steps += len(solution) - n_steps
        out = [[math.nan] * len(s) for s in steps]
        todo = [i for i, n in enumerate(kept) if n > 0]
        rewards = self.token_rewards_ids([encoded[i] for i in todo], batch_size)
        for i, w in zip(todo, rewards, strict=True):
            values = step_rewards(w, encoded[i].step_boundaries[: kept[i]])
            if self.step_scores == "sigmoid_q":
                values = torch.sigmoid(values.cumsum(0))
            out[i][: kept[i]] = [float(v) for v in values]
        return out

    def as_reward_func(self, **options):
        """A TRL reward function of `score` (`scorers.reward_funcs.reward_function`: clip, normalize where
        honoured, batch_size, asynchronous); the aggregation is the scorer's own."""
        from rewardmodels.scorers.reward_funcs import reward_function

        return reward_function(self, name="implicit_prm_reward", **options)


def keep_first_tokens(encoded: EncodedResponse, max_length: int) -> tuple[EncodedResponse, int]:
    """The first `max_length` tokens and how many steps lie wholly inside them (0 when not even one response
    token fits)."""
    if len(encoded) <= max_length:
        return encoded, len(encoded.step_boundaries)
    room = max_length - encoded.response_start
    if room < 1:
        return EncodedResponse(encoded[:max_length], encoded.response_start, ()), 0
    bounds = [b for b in encoded.step_boundaries if b <= room]
    return EncodedResponse(encoded[:max_length], encoded.response_start, bounds), len(bounds)


def check_reference(path: Path, manifest: dict, override: str | None = None) -> Path:
    """The reference model's directory: `override`, else the manifest's `reference` (inside the scorer
    directory first, then as a path, alias or locally cached Hub id), else its `resolved_reference`;
    refused when it is missing or its fingerprint differs from the manifest's `reference_fingerprint`."""
    where = path / MANIFEST_NAME
    names = [override] if override else [manifest.get("reference"), manifest.get("resolved_reference")]
    names = [n for n in names if n]
    if not names:
        raise InputError(where, None, "reference", "names no reference model, and the scorer is not ref_free")
    found = None
    for name in names:
        inside = path / name
        try:
            found = inside if inside.is_dir() else model_directory(name)
            break
        except FileNotFoundError:
            continue
    if found is None:
        raise InputError(
            where,
            None,
            "reference",
            f"the reference model {names[0]!r} is missing (tried {', '.join(map(repr, names))})",
            hint="Make it available, or load the scorer with reference=PATH.",
        )
    expected = manifest.get("reference_fingerprint")
    if expected and model_fingerprint(str(found)) != expected:
        raise InputError(
            where,
            None,
            "reference_fingerprint",
            f"the reference at {found} has other weights than the one this scorer was trained against "
            f"(fingerprint {model_fingerprint(str(found))[:12]}..., expected {expected[:12]}...)",
        )
    return found


__all__ = ["DEFAULT_STEP_SCORES", "ImplicitPRMScorer", "STEP_SCORES", "check_reference", "keep_first_tokens"]
