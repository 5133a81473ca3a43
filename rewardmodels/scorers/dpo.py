"""DPO implicit rewards from two causal LMs: beta * (log pi(y|x) - log pi_ref(y|x)) over response tokens.

A DPO-trained policy defines a reward model without a head: the summed log-probability ratio of the policy
over its reference on the response tokens. Without a reference, reward-bench's DPO script offers three
reference-free reductions of the policy's own per-token log-probs, and so does this scorer
(`rewardmodels.causal.logprobs.REDUCTIONS`, which states each formula):

  sum   the summed log-prob of the response
  avg   the mean log-prob per response token (length-normalised)
  norm  minus the L2 norm of the per-token log-probs

Every variant is multiplied by `beta`. beta > 0 never changes a ranking; it only puts the scores on the scale
the policy was trained with. The default 1.0 gives reward-bench's unscaled numbers.

Tokenization (where the response starts) is `rewardmodels.causal.response_tokens`; log-probs and their float64
reductions are `rewardmodels.causal.logprobs`. The scorer follows the same API as SequenceScorer (encode once, then
score_ids in length-sorted batches, or score_groups_ids with each group's prompt run once).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import torch

from rewardmodels.causal.logprobs import (
    REDUCTIONS,
    LogprobBatch,
    pad_id_within_vocab,
    response_logprobs,
    sum_logprobs,
)
from rewardmodels.causal.response_tokens import EncodedResponse, encode_response, keep_last_tokens
from rewardmodels.modeling import load_tokenizer, resolve_model_path
from rewardmodels.scorers.base import (
    count_cuts,
    group_response_values,
    load_for_scoring,
    response_values,
)
from rewardmodels.scorers.options import DEFAULT_OPTIONS, ScorerOptions
from rewardmodels.scorers.reward_funcs import reward_function

logger = logging.getLogger(__name__)

REF_FREE_MODES = tuple(REDUCTIONS)

__all__ = ["DPOScorer", "EncodedResponse", "REF_FREE_MODES"]


class DPOScorer:
    kind = "dpo"
    score_scale = "logit"  # beta * log-ratio (scorers.calibration)
    extra_options: tuple[str, ...] = ()  # ScorerOptions.extra names it takes: none (beta is the manifest's)
    # Sequences per forward off CPU when the caller names none: each forward runs two models.
    preferred_batch_size = 8

    def __init__(
        self,
        policy,
        reference,
        tokenizer,
        device: torch.device,
        beta: float = 1.0,
        ref_free: str | None = None,
        max_length: int = 4096,
        use_chat_template: bool | None = None,
        name: str = "policy",
        reference_name: str | None = None,
    ):
        if reference is None and ref_free not in REF_FREE_MODES:
            raise ValueError(
                f"without a reference model choose a reference-free mode: {', '.join(REF_FREE_MODES)}"
            )
        if reference is not None and ref_free is not None:
            raise ValueError("ref_free applies only when there is no reference model")
        self.policy = policy.eval()
        self.reference = reference.eval() if reference is not None else None
        self.tokenizer = tokenizer
        self.device = device
        self.beta = float(beta)
        self.ref_free = ref_free
        self.max_length = int(max_length)
        self.use_chat_template = (
            tokenizer.chat_template is not None if use_chat_template is None else bool(use_chat_template)
        )
        self.pad_id = pad_id_within_vocab(tokenizer, policy)
        self.truncated = 0
        self.last_truncated: list[bool] = []
        self.manifest = {
            "kind": self.kind,
            "base_model": name,
            "reference": reference_name,
            "beta": self.beta,
            "ref_free": ref_free,
            "max_length": self.max_length,
            "use_chat_template": self.use_chat_template,
        }

    @classmethod
    def from_pretrained(
        cls,
        policy: str,
        reference: str | None = None,
        device=None,
        dtype=None,
        beta: float = 1.0,
        ref_free: str | None = None,
        max_length: int = 4096,
        use_chat_template: bool | None = None,
        trust_remote_code: bool = False,
        attn_implementation: str | None = None,
    ) -> DPOScorer:
        """Policy (and reference) causal LMs: Hub ids, local dirs (safetensors), .gguf files or the embedded
        alias, loaded through `modeling.load_backbone`."""
        policy_model, ref_model, tokenizer, dev = _load_models(
            policy, reference, device, dtype, trust_remote_code, attn_implementation
        )
        return cls(
            policy_model,
            ref_model,
            tokenizer,
            dev,
            beta=beta,
            ref_free=ref_free,
            max_length=max_length,
            use_chat_template=use_chat_template,
            name=policy,
            reference_name=reference,
        )

    @classmethod
    def from_directory(cls, path, manifest: dict, options: ScorerOptions = DEFAULT_OPTIONS) -> DPOScorer:
        """A DPO scorer directory: the policy's weights and tokenizer, and a manifest with kind "dpo" and
        optionally beta (1.0), ref_free, max_length (4096), use_chat_template, and `reference`: the reference
        model as a path inside the directory, an absolute path or a Hub id (absent or null: reference-free,
        which needs ref_free). `options.max_length` overrides the manifest's."""
        reference = manifest.get("reference")
        if reference is not None and (Path(path) / reference).exists():
            reference = str(Path(path) / reference)
        policy_model, ref_model, tokenizer, dev = _load_models(
            str(path), reference, options.device, options.dtype, False, options.attn_implementation
        )
        scorer = cls(
            policy_model,
            ref_model,
            tokenizer,
            dev,
            beta=manifest.get("beta", 1.0),
            ref_free=manifest.get("ref_free"),
            max_length=options.max_length or manifest.get("max_length") or 4096,
            use_chat_template=manifest.get("use_chat_template"),
            name=manifest.get("base_model") or str(path),
            reference_name=manifest.get("reference"),
        )
        if "calibration" in manifest:  # a stored fit (`rewardmodels calibrate`) travels with the scorer
            scorer.manifest["calibration"] = manifest["calibration"]
        return scorer

    # -- tokenization -------------------------------------------------------------------------------------
    def encode(self, prompts: Sequence, responses: Sequence) -> list[EncodedResponse]:
        """Ids of each prompt + response (chat template or plain), cut to their last max_length tokens."""
        if len(prompts) != len(responses):
            raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
        encoded = (
            encode_response(self.tokenizer, p, r, self.use_chat_template)
            for p, r in zip(prompts, responses, strict=True)
        )
        return count_cuts(self, (keep_last_tokens(e, self.max_length) for e in encoded))

    # -- scoring ------------------------------------------------------------------------------------------
    def _values(self, batch: LogprobBatch) -> list[float]:
        """beta x (the summed log-ratio, or the reference-free reduction) per sequence, in slot order."""
        if self.reference is self.policy:  # the same weights twice: every ratio is exactly 0
            return [0.0] * len(batch.slots)
        policy = response_logprobs(self.policy, batch)
        if self.reference is None:
            reduce = REDUCTIONS[self.ref_free]
            return [self.beta * float(reduce(lp)) for lp in policy]
        reference = response_logprobs(self.reference, batch)
        pairs = zip(policy, reference, strict=True)
        return [self.beta * float(sum_logprobs(p) - sum_logprobs(r)) for p, r in pairs]

    @torch.inference_mode()
    def score_ids(self, sequences: list[EncodedResponse], batch_size: int = 8) -> list[float]:
        return response_values(sequences, self._values, self.pad_id, self.device, batch_size)

    @torch.inference_mode()
    def score_groups_ids(self, groups: list[list[EncodedResponse]], batch_size: int = 8) -> list[list[float]]:
        """Scores for groups of encoded responses to one prompt (a RewardBench pair or best-of-4 set).

        With sdpa, groups run as one unpadded row through the segmented kernel (rewardmodels.packing): a
        group's common token prefix once, then each response, which sees only the prefix and itself, with
        the positions it would have alone. The LM head runs only where a response token is predicted.
        Scores equal score_ids' up to float rounding. Other attention kernels, and a reference that is the
        policy itself, get score_ids.
        """
        return group_response_values(self, groups, lambda batch, _: self._values(batch), batch_size)

    def score(self, prompts: Sequence, responses: Sequence, batch_size: int = 8) -> list[float]:
        return self.score_ids(self.encode(prompts, responses), batch_size)

    def as_reward_func(self, **options):
        """A TRL reward function (`scorers.reward_funcs.reward_function`: clip, batch_size, asynchronous)."""
        return reward_function(self, name="dpo_implicit_reward", **options)


def _load_models(
    policy: str, reference: str | None, device, dtype, trust_remote_code: bool, attn_implementation
):
    """(policy, reference or None, tokenizer, device); a reference that resolves to the policy shares its
    weights, and one with another vocabulary is refused before it loads."""
    options = {
        "device": device,
        "dtype": dtype,
        "attn_implementation": attn_implementation,
        "trust_remote_code": trust_remote_code,
    }
    policy_model, tokenizer, dev = load_for_scoring(policy, "causal_lm", **options)
    if reference is None:
        return policy_model, None, tokenizer, dev
    ref_path = resolve_model_path(reference)
    if ref_path == resolve_model_path(policy):
        logger.warning("policy and reference are the same model; every DPO reward will be 0")
        return policy_model, policy_model, tokenizer, dev
    ref_tokenizer = load_tokenizer(ref_path, trust_remote_code, distinct_pad=False)
    if ref_tokenizer.get_vocab() != tokenizer.get_vocab():
        raise ValueError(
            f"policy {policy!r} and reference {reference!r} use different vocabularies; "
            "their log-probs cannot be compared token by token"
        )
    ref_model, _, _ = load_for_scoring(ref_path, "causal_lm", **options, tokenizer=ref_tokenizer)
    return policy_model, ref_model, tokenizer, dev
