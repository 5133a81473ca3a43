"""Packed collators: pairs (plain or as shared-prefix trees) and single sequences (BT scoring, PRM steps).
Each returns the batch contract of `rewardmodels.collators`, plus the layout ids the attention dispatch
(`packing.attention.packed_attention_kwargs`) reads. Which collator a run uses is `training.batching`'s
`collator_for`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from rewardmodels.collators import pair_fields
from rewardmodels.packing.attention import (
    ATTENTION_MODES,
    allowed_attention,
    varlen_kwargs,
)
from rewardmodels.packing.layout import PackUnit, layout_units


@dataclass
class _PackerBase:
    """`attention` says how the layout reaches the kernel (see `rewardmodels.packing`); `token_budget` caps
    the tokens of one row (None: no cap, one row for segments/varlen/flex)."""

    pad_token_id: int
    token_budget: int | None = None
    attention: str = "mask"
    pad_to_multiple_of: int | None = None

    def __post_init__(self):
        if self.attention not in ATTENTION_MODES:
            raise ValueError(f"attention must be one of {ATTENTION_MODES}, got {self.attention!r}")
        if self.token_budget is not None and self.token_budget < 1:
            raise ValueError(f"token_budget must be positive, got {self.token_budget}")

    def _batch(self, units: list[PackUnit]) -> dict:
        varlen = self.attention == "varlen"
        if varlen and any(len(u.branches) > 1 for u in units):
            raise ValueError("varlen (flash-attention) packing cannot run a tree; split the units first")
        layout = layout_units(
            units,
            self.pad_token_id,
            None if varlen else self.token_budget,
            None if varlen else self.pad_to_multiple_of,
            rows="fit" if self.attention == "mask" else "single",
        )
        batch = {
            "input_ids": layout.input_ids,
            "position_ids": layout.position_ids,
            "reward_positions": layout.reward_positions,
            "packed_doc_ids": layout.doc_ids,
            "packed_branch_ids": layout.branch_ids,
        }
        if self.attention == "mask":
            batch["attention_mask"] = allowed_attention(layout.doc_ids, layout.branch_ids)
        elif self.attention == "segments":
            batch["packed_segments"] = layout.segments
        elif varlen:
            batch.update(varlen_kwargs(layout.sequence_lengths))
        return batch


@dataclass
class PackedPairCollator(_PackerBase):
    """Pairs (`prefix_ids`, `chosen_ids`, `rejected_ids`, optional `margin` and `tie`) packed without padding.

    `tree=True` stores the prefix once and lets both continuations attend to it; `tree=False` packs
    prefix + chosen and prefix + rejected as two independent sequences. A tree that does not fit the token
    budget, or any tree under varlen attention, is packed as two plain sequences instead: same result, no
    saving. Rewards: chosen of every pair first, then rejected, in feature order.
    """

    tree: bool = True

    def units(self, features: list[dict]) -> list[PackUnit]:
        n = len(features)
        units: list[PackUnit] = []
        for i, f in enumerate(features):
            for key in ("prefix_ids", "chosen_ids", "rejected_ids"):
                if key not in f:
                    raise ValueError(f"feature {i}: missing field '{key}'")
            prefix, chosen, rejected = list(f["prefix_ids"]), list(f["chosen_ids"]), list(f["rejected_ids"])
            if not chosen or not rejected:
                raise ValueError(f"feature {i}: 'chosen_ids' and 'rejected_ids' must be non-empty")
            unit = PackUnit(
                prefix,
                [chosen, rejected],
                [[len(prefix) + len(chosen) - 1], [len(prefix) + len(rejected) - 1]],
                [i, n + i],
                source=i,
            )
            fits = self.token_budget is None or len(unit) <= self.token_budget
            if self.tree and self.attention != "varlen" and fits:
                units.append(unit)
            else:
                units.extend(unit.split())
        return units

    def __call__(self, features: list[dict]) -> dict:
        batch = self._batch(self.units(features))
        batch.update(pair_fields(features))
        return batch


@dataclass
class PackedSequenceCollator(_PackerBase):
    """Single sequences packed without padding, for BT scoring, PRMs and implicit PRMs.

    Each feature has `input_ids` and, optionally, `positions_key` (a list of positions relative to the
    sequence where rewards are read; default: the last token). Every key in `per_position_keys` is a list with
    one value per reward position (PRM step labels) and is concatenated in reward order into a float tensor.
    `sequence_index_key`, when set, names an output tensor giving the feature index of each reward position.
    Keys in `per_sequence_keys` are stacked into float tensors, one value per feature.
    """

    positions_key: str | None = None
    per_position_keys: tuple[str, ...] = ()
    sequence_index_key: str | None = None
    per_sequence_keys: tuple[str, ...] = ()

    def units(self, features: list[dict]) -> list[PackUnit]:
        units = []
        for i, f in enumerate(features):
            if "input_ids" not in f:
                raise ValueError(f"feature {i}: missing field 'input_ids'")
            ids = list(f["input_ids"])
            if not ids:
                raise ValueError(f"feature {i}: 'input_ids' is empty")
            if self.positions_key is not None:
                if self.positions_key not in f:
                    raise ValueError(f"feature {i}: missing field '{self.positions_key}'")
                rewards = [int(p) for p in f[self.positions_key]]
            else:
                rewards = [len(ids) - 1]
            units.append(PackUnit([], [ids], [rewards], [i], source=i))
        return units

    def __call__(self, features: list[dict]) -> dict:
        units = self.units(features)
        batch = self._batch(units)
        counts = [len(u.rewards[0]) for u in units]
        if self.sequence_index_key:
            batch[self.sequence_index_key] = torch.tensor(
                [i for i, c in enumerate(counts) for _ in range(c)], dtype=torch.long
            )
        for key in self.per_position_keys:
            present = [key in f and f[key] is not None and len(f[key]) > 0 for f in features]
            if not any(present):
                continue
            values = []
            for i, (f, c) in enumerate(zip(features, counts, strict=True)):
                got = list(f.get(key) or [])
                if len(got) != c:
                    raise ValueError(
                        f"feature {i}: field '{key}' has {len(got)} values for {c} reward positions"
                    )
                values += [float(v) for v in got]
            batch[key] = torch.tensor(values, dtype=torch.float32)
        for key in self.per_sequence_keys:
            if any(key in f for f in features):
                batch[key] = torch.tensor([float(f.get(key, 0.0)) for f in features], dtype=torch.float32)
        return batch


def packed_step_collator(pad_token_id: int, token_budget: int | None = None, attention: str = "mask"):
    """A packed drop-in for `collators.PaddedStepCollator` (same keys: step_positions in, step_labels and
    step_sequence out), so the PRM trainer can switch by swapping the collator."""
    return PackedSequenceCollator(
        pad_token_id=pad_token_id,
        token_budget=token_budget,
        attention=attention,
        positions_key="step_positions",
        per_position_keys=("step_labels",),
        sequence_index_key="step_sequence",
    )


def has_shared_prefixes(features: Sequence[dict]) -> bool:
    """True when any pair shares a token prefix worth storing once."""
    return any(len(f.get("prefix_ids") or ()) > 0 for f in features)


def check_token_budget(token_budget: int | None, max_length: int | None) -> None:
    """Refuse a row cap below max_length before any work: a single sequence could not be placed."""
    if token_budget is not None and max_length is not None and token_budget < max_length:
        raise ValueError(
            f"--packing_token_budget ({token_budget}) must be at least --max_length ({max_length}), "
            "or a single sequence could not be placed"
        )


def units_batch(
    units: list[PackUnit], pad_token_id: int, attention: str, token_budget: int | None = None
) -> dict:
    """The packed batch of units a caller built itself, exactly as the collators build theirs (the batch
    contract plus the layout ids the attention dispatch reads): for trees of any number of branches, such as a
    group of responses to one prompt (`rewardmodels.causal.logprobs`)."""
    return _PackerBase(pad_token_id, token_budget, attention)._batch(list(units))
