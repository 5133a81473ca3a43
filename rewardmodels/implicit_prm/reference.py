"""The frozen reference pi_ref of a policy in training, and its log-probs.

Three kinds, by what `ImplicitPRMConfig.reference` names and whether the policy is under LoRA:

  adapters   the reference is the policy's own base: the peft model run with its adapters disabled
             (`with model.disable_adapter():`), so no second copy of the base weights exists
  model      a separate frozen model (full fine-tuning, whose base weights change, or another reference)
  none       reference-free: log pi_ref is taken as 0, so r = beta * sum_t log pi_theta(y_t|y_<t)

Reference passes run under `torch.no_grad()`, never inside the policy's gradient graph.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

from rewardmodels.causal.logprobs import LogprobBatch, response_logprobs, sum_logprobs

ADAPTERS, MODEL, NONE = "adapters", "model", "none"


def peft_model_of(model: nn.Module) -> nn.Module | None:
    """The peft model inside DDP/accelerate wrappers, or None when the model has no adapters."""
    while hasattr(model, "module") and isinstance(model.module, nn.Module):
        model = model.module
    return model if hasattr(model, "disable_adapter") else None


class Reference:
    """How pi_ref is run for `policy` (kinds in the module docstring)."""

    def __init__(self, kind: str, policy: nn.Module, model: nn.Module | None = None):
        if kind not in (ADAPTERS, MODEL, NONE):
            raise ValueError(f"reference kind must be {ADAPTERS}, {MODEL} or {NONE}, got {kind!r}")
        if kind == ADAPTERS and peft_model_of(policy) is None:
            raise ValueError("an adapters-disabled reference needs a policy under LoRA (a peft model)")
        if kind == MODEL and model is None:
            raise ValueError("a 'model' reference needs the reference model")
        self.kind, self.policy, self.released = kind, policy, False
        self.model = model.eval().requires_grad_(False) if model is not None else None

    def release(self) -> None:
        """Drop a separate reference model once every example's reference log-probs are cached: training
        no longer runs it, and its memory is freed. Running it afterwards is an error."""
        if self.kind == MODEL:
            self.model, self.released = None, True

    @contextlib.contextmanager
    def module(self, device: torch.device | str | None = None) -> Iterator[nn.Module]:
        """The module whose forward is pi_ref, for the duration of the block (kind `none` has none)."""
        if self.kind == NONE:
            raise ValueError("a reference-free reward has no reference model to run")
        if self.kind == MODEL:
            if self.model is None:
                raise RuntimeError(
                    "the reference model was released after the cache pass, but a batch lacks cached values"
                )
            if device is not None:
                with torch.inference_mode(
                    False
                ):  # parameters moved in inference mode would be inference tensors
                    self.model.to(device)
            yield self.model
            return
        peft = peft_model_of(self.policy)
        was_training = peft.training
        peft.eval()  # no dropout on the reference's pass
        try:
            with peft.disable_adapter():
                yield peft
        finally:
            peft.train(was_training)

    @torch.no_grad()
    def logp_sums(self, batch: LogprobBatch) -> torch.Tensor:
        """(sequences,) float64: sum_t log pi_ref(y_t|y_<t) over each sequence's response tokens, slot order
        (zeros when reference-free)."""
        if self.kind == NONE:
            return torch.zeros(len(batch.counts), dtype=torch.float64, device=batch.positions.device)
        with self.module(batch.positions.device) as reference:
            return torch.stack([sum_logprobs(lp) for lp in response_logprobs(reference, batch)])


__all__ = ["ADAPTERS", "MODEL", "NONE", "Reference", "peft_model_of"]
