"""The causal-LM setup that the implicit PRM and the generative verifier share, written once: the tokenizer
as saved, the model with its LM head (under LoRA if asked), and how its batches are laid out (the pad id, and
the attention kernel of packed rows).

The tokenizer keeps its vocabulary (`distinct_pad=False`): a causal LM is read through its log-probs, which
pool nowhere, so it needs no distinct pad token, and an added token would be a row in the softmax that the
LM head could predict and that a frozen reference lacks.
"""

from __future__ import annotations

from dataclasses import dataclass

from rewardmodels.causal.logprobs import pad_id_within_vocab
from rewardmodels.modeling import attn_implementation_of, load_tokenizer
from rewardmodels.packing import check_token_budget, packing_attention_for
from rewardmodels.training.arguments import ModelArguments
from rewardmodels.training.run import load_model

CAUSAL_LM_HEAD = "causal_lm"  # `load_backbone`'s head for both causal methods


def load_causal_tokenizer(model_args: ModelArguments):
    """The tokenizer as saved, with no pad token added (module docstring)."""
    return load_tokenizer(
        model_args.model_name_or_path, trust_remote_code=model_args.trust_remote_code, distinct_pad=False
    )


def load_causal_lm(model_args: ModelArguments, tokenizer, seed: int):
    """The backbone with its LM head, under LoRA if asked (`training.run.load_model`); on the CPU."""
    return load_model(model_args, tokenizer, num_labels=1, seed=seed, head=CAUSAL_LM_HEAD)


@dataclass(frozen=True)
class CausalBatching:
    """How a causal method's collator lays out its rows: `pad_token_id` inside the model's vocabulary, and
    `attention`, the kernel of packed rows (`packing.packing_attention_for`), or None for padded rows."""

    pad_token_id: int
    attention: str | None


def causal_batching(
    model, tokenizer, packed: bool, token_budget: int | None, max_length: int
) -> CausalBatching:
    """The pad id and, for packed rows, the attention kernel of `model` (the token budget checked against
    `max_length` first)."""
    attention = None
    if packed:
        check_token_budget(token_budget, max_length)
        attention = packing_attention_for(attn_implementation_of(model))
    return CausalBatching(pad_id_within_vocab(tokenizer, model), attention)


__all__ = ["CAUSAL_LM_HEAD", "CausalBatching", "causal_batching", "load_causal_lm", "load_causal_tokenizer"]
