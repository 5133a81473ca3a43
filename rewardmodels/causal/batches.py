"""The collators of the two causal methods: completion tokens (the generative verifier's SFT) and response
groups (the implicit PRM). Both build `logprobs.padded_batch` or `logprobs.packed_batch` inputs, so the
policy's log-probs come from `logprobs.token_logprobs` whatever the layout; `training.batching.collator_for`
picks the layout (`packing.choice`).

Completion batches (`CompletionCollator`; features {"input_ids", "completion_start"}): the model inputs plus

  lm_positions  (n,) flat indices into rows * length of the positions whose logits predict a completion token
  lm_targets    (n,) the completion token predicted at each: for a sequence of T tokens whose completion
                starts at s, positions s-1 .. T-2 predict tokens s .. T-1; no prompt token is ever a target

Response-group batches (`ImplicitPRMCollator`; features as `implicit_prm.data` builds them: k sequences each,
k = 1 for an outcome row and k = 2 (chosen, rejected) for a pair; features i = 0..n-1, sequence j of feature i
in slot i * k + j):

  input_ids, attention_mask / position_ids / packing keys   the model inputs (`rewardmodels.causal.logprobs`)
  logprob_positions   (m,) flat indices whose logits predict a response token, slot by slot
  logprob_targets     (m,) the token predicted at each
  logprob_counts      (n * k,) response tokens per slot
  outcome_labels      (n,) float32, outcome rows only
  reference_logps     (n * k,) float64, only when every feature carries them

With k = 2 and tree packing, a pair is one tree (`packing.group_trees`): the tokens chosen and rejected share
run once, each answer attends to them and to itself only.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from rewardmodels.causal.logprobs import LogprobBatch, packed_batch, padded_batch, response_positions
from rewardmodels.packing import PADDED, PackUnit, group_trees


@dataclass
class CompletionCollator:
    """Features -> the completion batch contract (module docstring); `packing` "packed" or "none", `attention`
    as `packing.packing_attention_for(the model's kernel)` says."""

    pad_token_id: int
    packing: str = "packed"
    attention: str = "segments"
    token_budget: int | None = None

    def __call__(self, features: list[dict]) -> dict:
        sequences = [list(f["input_ids"]) for f in features]
        positions = [
            response_positions(s, f["completion_start"]) for s, f in zip(sequences, features, strict=True)
        ]
        if self.packing == "none":
            batch = padded_batch(sequences, positions, self.pad_token_id)
        else:
            units = [
                PackUnit([], [s], [p], [i]) for i, (s, p) in enumerate(zip(sequences, positions, strict=True))
            ]
            batch = packed_batch(units, self.pad_token_id, self.attention, self.token_budget)
        return {**batch.inputs, "lm_positions": batch.positions, "lm_targets": batch.targets}


@dataclass
class ImplicitPRMCollator:
    """Features (module docstring) -> the batch contract. `attention` is `PADDED` for padded rows, else
    `packing.packing_attention_for(the model's kernel)`; with `tree`, pairs become trees where the kernel can
    run them (not varlen), else every sequence is packed on its own."""

    pad_token_id: int
    attention: str = PADDED
    token_budget: int | None = None
    tree: bool = True

    def logprob_batch(self, features: list[dict]) -> LogprobBatch:
        k = len(features[0]["sequences"])
        for i, f in enumerate(features):
            if len(f["sequences"]) != k or len(f["response_starts"]) != k:
                raise ValueError(
                    f"feature {i}: {len(f['sequences'])} sequences in a batch of {k}-sequence rows"
                )
        groups = [f["sequences"] for f in features]
        positions = [
            [
                response_positions(s, start)
                for s, start in zip(f["sequences"], f["response_starts"], strict=True)
            ]
            for f in features
        ]
        if self.attention == PADDED:
            flat = [s for g in groups for s in g]
            return padded_batch(flat, [p for g in positions for p in g], self.pad_token_id)
        if k > 1 and self.tree and self.attention != "varlen":
            units = group_trees(groups, positions)  # slot = i * k + j, the flattened order
            budget = self.token_budget
            units = [
                part for u in units for part in ([u] if budget is None or len(u) <= budget else u.split())
            ]
        else:
            units = [
                PackUnit([], [groups[i][j]], [positions[i][j]], [i * k + j])
                for i in range(len(groups))
                for j in range(k)
            ]
        return packed_batch(units, self.pad_token_id, self.attention, self.token_budget)

    def __call__(self, features: list[dict]) -> dict:
        lb = self.logprob_batch(features)
        if lb.slots != list(range(len(lb.slots))):
            raise RuntimeError(f"log-prob slots came back as {lb.slots}, not in feature order")
        batch = dict(lb.inputs)
        batch["logprob_positions"] = lb.positions
        batch["logprob_targets"] = lb.targets
        batch["logprob_counts"] = torch.tensor(lb.counts, dtype=torch.long)
        if all("label" in f for f in features):
            batch["outcome_labels"] = torch.tensor([f["label"] for f in features], dtype=torch.float32)
        if all(f.get("reference_logps") is not None for f in features):
            batch["reference_logps"] = torch.tensor(
                [v for f in features for v in f["reference_logps"]], dtype=torch.float64
            )
        return batch


def batch_logprob_parts(batch: dict) -> LogprobBatch:
    """The `LogprobBatch` inside a collated (and device-placed) batch, for `logprobs.response_logprobs`."""
    skip = {"logprob_positions", "logprob_targets", "logprob_counts", "outcome_labels", "reference_logps"}
    counts = [int(c) for c in batch["logprob_counts"].tolist()]
    return LogprobBatch(
        {k: v for k, v in batch.items() if k not in skip},
        batch["logprob_positions"],
        batch["logprob_targets"],
        counts,
        list(range(len(counts))),
    )
