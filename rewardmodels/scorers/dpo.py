"""DPO-style implicit rewards from two causal LMs: beta * (log pi(y|x) - log pi_ref(y|x)) over response tokens.

A DPO-trained policy defines a reward model without a head: the summed log-probability ratio of the policy
over its reference on the response tokens. Without a reference, reward-bench's DPO script offers three
reference-free variants of the policy's own per-token log-probs, and so does this scorer:

  sum   the summed log-prob of the response
  avg   the mean log-prob per response token
  norm  minus the L2 norm of the per-token log-probs

Every variant is multiplied by `beta`. beta > 0 never changes a ranking; it only puts the scores on the scale
the policy was trained with. The default 1.0 gives reward-bench's unscaled numbers.

The scorer follows the same API as SequenceScorer (encode once, then score_ids in length-sorted batches), so
the evaluators batch it the same way.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Sequence

import torch

from rewardmodels.scorers.base import (
    group_batches,
    group_trees,
    length_sorted_batches,
    make_reward_func,
    pick_device,
    split_into_groups,
)
from rewardmodels.tokenization import as_messages, is_conversational, join_plain, render_ids

logger = logging.getLogger(__name__)

REF_FREE_MODES = ("sum", "avg", "norm")


class EncodedResponse(list):
    """Token ids of prompt + response; `response_start` is the index of the first response token."""

    response_start: int

    def __init__(self, ids: Sequence[int], response_start: int):
        super().__init__(ids)
        self.response_start = response_start


def _chat_ids(tokenizer, messages: list[dict], add_generation_prompt: bool) -> list[int]:
    ids = tokenizer.apply_chat_template(
        messages, tokenize=True, add_generation_prompt=add_generation_prompt, return_dict=False
    )
    if isinstance(ids, dict) or hasattr(ids, "keys"):
        ids = ids["input_ids"]
    return list(ids)


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


class DPOScorer:
    kind = "dpo"
    preferred_batch_size = 8  # off CPU: two models' full-vocabulary logits per sequence (PrefersBatchSize)

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
        # Padded positions are masked and sit after every real token, so any id inside the vocabulary works;
        # a pad token that load_tokenizer may have *added* could lie outside the embedding table.
        vocab = policy.get_input_embeddings().weight.shape[0]
        pad = tokenizer.pad_token_id
        self.pad_id = pad if pad is not None and pad < vocab else (tokenizer.eos_token_id or 0)
        self.truncated = 0
        self.last_truncated: list[bool] = []
        self.manifest = {
            "kind": self.kind,
            "base_model": name,
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
        """Load policy (and reference) causal LMs: Hub ids, local dirs, .gguf files or the embedded alias."""
        from transformers import AutoTokenizer

        from rewardmodels.modeling import resolve_model_path

        dev = pick_device(device)
        policy_path = resolve_model_path(policy)
        tokenizer = AutoTokenizer.from_pretrained(policy_path, trust_remote_code=trust_remote_code)
        policy_model = _load_causal_lm(policy_path, dev, dtype, trust_remote_code, attn_implementation)
        ref_model = None
        if reference is not None:
            ref_path = resolve_model_path(reference)
            if ref_path == policy_path:
                # The same weights twice: share them. Every ratio is then exactly 0 (all ties).
                logger.warning("policy and reference are the same model; every DPO reward will be 0")
                ref_model = policy_model
            else:
                ref_tok = AutoTokenizer.from_pretrained(ref_path, trust_remote_code=trust_remote_code)
                if ref_tok.get_vocab() != tokenizer.get_vocab():
                    raise ValueError(
                        f"policy {policy!r} and reference {reference!r} use different vocabularies; "
                        "their log-probs cannot be compared token by token"
                    )
                ref_model = _load_causal_lm(ref_path, dev, dtype, trust_remote_code, attn_implementation)
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
        )

    # -- tokenization -------------------------------------------------------------------------------------
    def _encode_one(self, prompt, response) -> tuple[EncodedResponse, bool]:
        tok = self.tokenizer
        if self.use_chat_template or is_conversational(prompt) or is_conversational(response):
            full = render_ids(tok, prompt, response, True)
            prompt_msgs = as_messages(prompt, [])  # prompt turns only
            head = _chat_ids(tok, prompt_msgs, add_generation_prompt=True) if prompt_msgs else []
        else:
            full = render_ids(tok, prompt, response, False)
            joined = join_plain(prompt, response)
            # The prompt's share of the joined text, tokenized alone; the common prefix tolerates merges.
            head = tok(joined[: len(joined) - len(response)], add_special_tokens=True)["input_ids"]
        # Response tokens start where the rendered prompt stops matching; at least one token is needed as
        # context for the first predicted token.
        start = max(1, min(common_prefix(head, full), len(full) - 1))
        cut = len(full) > self.max_length
        if cut:
            drop = len(full) - self.max_length
            full = full[drop:]
            start = max(1, start - drop)
        return EncodedResponse(full, start), cut

    def encode(self, prompts: Sequence, responses: Sequence) -> list[EncodedResponse]:
        if len(prompts) != len(responses):
            raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
        out, flags = [], []
        for p, r in zip(prompts, responses, strict=True):
            enc, cut = self._encode_one(p, r)
            out.append(enc)
            flags.append(cut)
        self.truncated += sum(flags)
        self.last_truncated = flags
        return out

    # -- scoring ------------------------------------------------------------------------------------------
    def _response_logps(self, model, ids: torch.Tensor, mask: torch.Tensor, items) -> list[torch.Tensor]:
        logits = model(input_ids=ids, attention_mask=mask, use_cache=False).logits
        per_row = []
        for i, item in enumerate(items):
            n, s = len(item), item.response_start
            # Token t is predicted by the logits at t-1; log_softmax per row keeps peak memory to one copy.
            row = logits[i, s - 1 : n - 1].float().log_softmax(-1)
            per_row.append(row.gather(-1, ids[i, s:n].unsqueeze(-1)).squeeze(-1))
        return per_row

    def _reduce(self, logps: torch.Tensor, mode: str) -> float:
        if mode == "sum":
            return float(logps.sum())
        if mode == "avg":
            return float(logps.mean())
        if mode == "norm":
            return float(-torch.linalg.vector_norm(logps, ord=2))
        raise ValueError(mode)

    def _values(self, policy: list[torch.Tensor], reference: list[torch.Tensor] | None) -> list[float]:
        """beta x (the log-ratio, or the reference-free reduction) for each response's per-token log-probs."""
        if self.reference is None:
            return [self.beta * self._reduce(lp, self.ref_free) for lp in policy]
        if reference is None:  # the reference is the policy itself
            return [0.0] * len(policy)
        return [self.beta * float(p.sum() - r.sum()) for p, r in zip(policy, reference, strict=True)]

    @torch.inference_mode()
    def score_ids(self, sequences: list[EncodedResponse], batch_size: int = 8) -> list[float]:
        scores = [0.0] * len(sequences)
        for batch_idx in length_sorted_batches([len(s) for s in sequences], batch_size):
            items = [sequences[i] for i in batch_idx]
            width = max(len(s) for s in items)
            ids = torch.full((len(items), width), self.pad_id, dtype=torch.long)
            mask = torch.zeros((len(items), width), dtype=torch.long)
            for row, seq in enumerate(items):
                ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
                mask[row, : len(seq)] = 1
            ids, mask = ids.to(self.device), mask.to(self.device)
            policy = self._response_logps(self.policy, ids, mask, items)
            ref = None
            if self.reference is not None and self.reference is not self.policy:
                ref = self._response_logps(self.reference, ids, mask, items)
            for i, v in zip(batch_idx, self._values(policy, ref), strict=True):
                scores[i] = v
        return scores

    @torch.inference_mode()
    def score_groups_ids(self, groups: list[list[EncodedResponse]], batch_size: int = 8) -> list[list[float]]:
        """Scores for groups of encoded responses to one prompt (a RewardBench pair or best-of-4 set).

        With sdpa, groups run as one unpadded row through the segmented kernel (rewardmodels.packing): a
        group's common token prefix once, then each response, which sees only the prefix and itself, with
        the positions it would have alone. The LM head runs only where a response token is predicted.
        Scores equal score_ids' up to float rounding. Other attention kernels, and a reference that is the
        policy itself, get score_ids.
        """
        from rewardmodels.modeling import attn_implementation_of
        from rewardmodels.packing import layout_units, packing_attention_for

        flat = [s for g in groups for s in g]
        models = [m for m in (self.policy, self.reference) if m is not None]
        kernels = {packing_attention_for(attn_implementation_of(m)) for m in models}
        if kernels != {"segments"} or self.reference is self.policy:
            return split_into_groups(self.score_ids(flat, batch_size), groups)
        values = [0.0] * len(flat)
        # token t is predicted by the logits at t - 1
        predicting = [[list(range(s.response_start - 1, len(s) - 1)) for s in g] for g in groups]
        units = group_trees(groups, predicting)
        for take in group_batches([len(u) for u in units], [len(g) for g in groups], batch_size):
            batch_units = [units[i] for i in take]
            lay = layout_units(batch_units, self.pad_id, token_budget=None, rows="single")
            slots = sorted(slot for u in batch_units for slot in u.slots)  # the layout emits slots in order
            counts = [len(flat[k]) - flat[k].response_start for k in slots]
            targets = [t for k in slots for t in flat[k][flat[k].response_start :]]
            target_ids = torch.tensor(targets, dtype=torch.long, device=self.device)
            policy = self._packed_logps(self.policy, lay, target_ids, counts)
            ref = None
            if self.reference is not None:
                ref = self._packed_logps(self.reference, lay, target_ids, counts)
            for slot, v in zip(slots, self._values(policy, ref), strict=True):
                values[slot] = v
        return split_into_groups(values, groups)

    def _packed_logps(self, model, lay, targets: torch.Tensor, counts: list[int]) -> list[torch.Tensor]:
        """Per-response log-probs of `targets` at the layout's predicting positions, split by `counts`."""
        from rewardmodels.modeling import packed_attention_kwargs

        kwargs = {
            "input_ids": lay.input_ids.to(self.device),
            "position_ids": lay.position_ids.to(self.device),
            "use_cache": False,
            **packed_attention_kwargs(model, {"packed_segments": lay.segments}),
        }
        positions = lay.reward_positions.to(self.device)  # one row, so flat indices are sequence positions
        if "logits_to_keep" in inspect.signature(model.forward).parameters:
            logits = model(**kwargs, logits_to_keep=positions).logits[0]
        else:  # older model classes compute the head everywhere
            logits = model(**kwargs).logits[0, positions]
        out, start = [], 0
        for n in counts:  # log_softmax one response at a time keeps one extra (n, vocab) copy at most
            rows = logits[start : start + n].float().log_softmax(-1)
            out.append(rows.gather(-1, targets[start : start + n].unsqueeze(-1)).squeeze(-1))
            start += n
        return out

    def score(self, prompts: Sequence, responses: Sequence, batch_size: int = 8) -> list[float]:
        return self.score_ids(self.encode(prompts, responses), batch_size)

    def as_reward_func(self, batch_size: int = 8):
        return make_reward_func(lambda p, c: self.score(p, c, batch_size), "dpo_implicit_reward")


def _load_causal_lm(path: str, dev: torch.device, dtype, trust_remote_code: bool, attn_implementation):
    from rewardmodels.modeling import load_backbone

    model = load_backbone(
        path,
        "causal_lm",
        dtype=dtype,
        device=dev,
        attn_implementation=attn_implementation,
        trust_remote_code=trust_remote_code,
    )
    return model.eval().requires_grad_(False)
