"""Implicit-PRM features and their batches.

A feature holds the k sequences of one training row, each as the token ids of prompt + response and where
its response starts (`response_tokens.encode_response`, cut to the last max_length tokens):

  sequences           k lists of token ids: k = 1 for an outcome row, k = 2 (chosen, rejected) for a pair
  response_starts     k ints
  label               float in [0, 1] (outcome rows only)
  reference_logps     k floats, sum_t log pi_ref(y_t|y_<t) of each response (when the cache supplied them)

Batch contract (`ImplicitPRMCollator`; features in order i = 0..n-1, sequence j of feature i in slot
i * k + j):

  input_ids, attention_mask / position_ids / packing keys   the model inputs (`rewardmodels.causal.logprobs`)
  logprob_positions   (m,) flat indices whose logits predict a response token, slot by slot
  logprob_targets     (m,) the token predicted at each
  logprob_counts      (n * k,) response tokens per slot
  outcome_labels      (n,) float32, outcome rows only
  reference_logps     (n * k,) float64, only when every feature carries them

With k = 2 and packing, a pair is one tree (`scorers.base.group_trees`): the tokens chosen and rejected share
run once, each answer attends to them and to itself only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from rewardmodels.causal.logprobs import LogprobBatch, packed_batch, padded_batch, response_positions
from rewardmodels.causal.response_tokens import encode_response, keep_last_tokens
from rewardmodels.packing import PackUnit
from rewardmodels.scorers.base import group_trees

logger = logging.getLogger("rewardmodels")

PADDED = "padded"


def sequence_feature(encoded_list: list) -> dict:
    return {
        "sequences": [list(e) for e in encoded_list],
        "response_starts": [int(e.response_start) for e in encoded_list],
    }


def encode_rows(
    tokenizer, rows: list[dict], objective: str, use_chat_template: bool, max_length: int
) -> tuple[list[dict], int]:
    """Features for outcome rows (objective ce) or preference rows (dpo), and how many sequences were cut
    to their last `max_length` tokens."""
    responses = ("completion",) if objective == "ce" else ("chosen", "rejected")
    features, cut = [], 0
    for row in rows:
        encoded = []
        for name in responses:
            e, was_cut = keep_last_tokens(
                encode_response(tokenizer, row["prompt"], row[name], use_chat_template), max_length
            )
            encoded.append(e)
            cut += was_cut
        feature = sequence_feature(encoded)
        if objective == "ce":
            feature["label"] = float(row["label"])
        features.append(feature)
    return features, cut


def drop_identical_pairs(rows: list[dict], features: list[dict], drop: bool, source: str):
    """Pairs whose two sequences are the same tokens once cut carry no preference: refused (InputError naming
    each row's file and line) or dropped, through the check every pair trainer uses."""
    from rewardmodels.data_builders.schema import drop_identical_token_pairs

    views = [
        {"prefix_ids": [], "chosen_ids": f["sequences"][0], "rejected_ids": f["sequences"][1], "feature": f}
        for f in features
    ]
    kept, dropped = drop_identical_token_pairs(rows, views, drop, source)
    return [v["feature"] for v in kept], dropped


@dataclass
class ImplicitPRMCollator:
    """Features (module docstring) -> the batch contract. `attention` is `PADDED` for padded rows, else
    `packing.packing_attention_for(the model's kernel)`; pairs become trees where the kernel can run them
    (not varlen)."""

    pad_token_id: int
    attention: str = PADDED
    token_budget: int | None = None

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
        if k > 1 and self.attention != "varlen":
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
