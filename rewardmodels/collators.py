"""Padded batches. Every collator returns the same contract, which `modeling.rewards_at` consumes:

  input_ids         (rows, length)
  attention_mask    (rows, length) for padded rows, or (rows, 1, length, length) for packed rows
  position_ids      (rows, length), only when sequences do not start at column 0
  reward_positions  (n,) flat indices into rows * length where a reward is read

For pairs, the first half of `reward_positions` belongs to chosen sequences and the second half to the
rejected ones, in the order of the features. Pair batches (padded here, packed and tree-packed in
`rewardmodels.packing`) also carry, one value per pair in feature order, when any feature has the field:

  margin            (pairs,) float32: subtracted inside the BT sigmoid; 0.0 for a pair without one
  tie               (pairs,) bool: True for a pair rated equally good (its two sides are "chosen" and
                    "rejected" only by position); False for a pair without the field

Both are read by `pair_fields`, the one reader every pair collator uses. Padded batches are right-padded.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


def pad_sequences(sequences: list[list[int]], pad_token_id: int, pad_to_multiple_of: int | None = None):
    """Right-pad to one length; returns input_ids, attention_mask and the flat index of each last token."""
    length = max(len(s) for s in sequences)
    if pad_to_multiple_of:
        length = -(-length // pad_to_multiple_of) * pad_to_multiple_of
    input_ids = torch.full((len(sequences), length), pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((len(sequences), length), dtype=torch.long)
    for i, seq in enumerate(sequences):
        input_ids[i, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        attention_mask[i, : len(seq)] = 1
    last = torch.tensor([i * length + len(s) - 1 for i, s in enumerate(sequences)], dtype=torch.long)
    return input_ids, attention_mask, last


def pair_fields(features: list[dict]) -> dict[str, torch.Tensor]:
    """The per-pair fields of a pair batch: `margin` (float, 0.0 where a feature has none) and `tie` (bool,
    False where a feature has none or None), each present only when some feature has the key."""
    fields: dict[str, torch.Tensor] = {}
    if any("margin" in f for f in features):
        fields["margin"] = torch.tensor([float(f.get("margin", 0.0)) for f in features], dtype=torch.float32)
    if any("tie" in f for f in features):
        ties = []
        for i, f in enumerate(features):
            value = f.get("tie")
            if value is not None and not isinstance(value, bool):
                raise ValueError(f"feature {i}: field 'tie' must be a bool, got {value!r}")
            ties.append(bool(value))
        fields["tie"] = torch.tensor(ties, dtype=torch.bool)
    return fields


@dataclass
class PaddedPairCollator:
    """Chosen rows first, then rejected rows, each as prefix + continuation, right-padded."""

    pad_token_id: int
    pad_to_multiple_of: int | None = None

    def __call__(self, features: list[dict]) -> dict:
        sequences = [f["prefix_ids"] + f["chosen_ids"] for f in features]
        sequences += [f["prefix_ids"] + f["rejected_ids"] for f in features]
        input_ids, attention_mask, last = pad_sequences(sequences, self.pad_token_id, self.pad_to_multiple_of)
        batch = {"input_ids": input_ids, "attention_mask": attention_mask, "reward_positions": last}
        batch.update(pair_fields(features))
        return batch


@dataclass
class PaddedSequenceCollator:
    """Single sequences (`input_ids` features), right-padded, reward read at each last token."""

    pad_token_id: int
    pad_to_multiple_of: int | None = None

    def __call__(self, features: list[dict]) -> dict:
        input_ids, attention_mask, last = pad_sequences(
            [f["input_ids"] for f in features], self.pad_token_id, self.pad_to_multiple_of
        )
        return {"input_ids": input_ids, "attention_mask": attention_mask, "reward_positions": last}


@dataclass
class PaddedStepCollator:
    """Stepwise rows (`input_ids`, `step_positions`, optional `step_labels`), right-padded.

    Adds to the common contract:
      step_labels    (n,) float targets, one per reward position (only when the features carry labels)
      step_sequence  (n,) the row each reward position belongs to, for per-solution metrics
    Positions stay in step order within a row, so per-row slices read as the solution's steps.
    """

    pad_token_id: int
    pad_to_multiple_of: int | None = None

    def __call__(self, features: list[dict]) -> dict:
        input_ids, attention_mask, _ = pad_sequences(
            [f["input_ids"] for f in features], self.pad_token_id, self.pad_to_multiple_of
        )
        length = input_ids.shape[1]
        positions, rows = [], []
        for i, f in enumerate(features):
            positions += [i * length + p for p in f["step_positions"]]
            rows += [i] * len(f["step_positions"])
        batch = {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "reward_positions": torch.tensor(positions, dtype=torch.long),
            "step_sequence": torch.tensor(rows, dtype=torch.long),
        }
        if all("step_labels" in f for f in features) and any(f["step_labels"] for f in features):
            labels = [float(x) for f in features for x in f["step_labels"]]
            if len(labels) != len(positions):
                raise ValueError(f"{len(labels)} step labels for {len(positions)} step positions")
            batch["step_labels"] = torch.tensor(labels, dtype=torch.float32)
        return batch
