"""The causal-LM setup that the implicit PRM and the generative verifier share, written once: the tokenizer
as saved and the model with its LM head (under LoRA if asked). Their batches are `training.batching`'s, like
every method's (with a pad id inside the model's vocabulary).

The tokenizer keeps its vocabulary (`distinct_pad=False`): a causal LM is read through its log-probs, which
pool nowhere, so it needs no distinct pad token, and an added token would be a row in the softmax that the
LM head could predict and that a frozen reference lacks.
"""

from __future__ import annotations

from rewardmodels.modeling import load_tokenizer
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


__all__ = ["CAUSAL_LM_HEAD", "load_causal_lm", "load_causal_tokenizer"]
