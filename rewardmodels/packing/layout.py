"""Where packed tokens go: units (a shared prefix plus branches) placed into rows, with the position, doc and
branch ids, attention blocks and reward positions of the layout. The rules these ids encode are described in
`rewardmodels.packing`; nothing here depends on the attention kernel."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from rewardmodels.tokenization import shared_prefix_length


@dataclass
class PackUnit:
    """A shared prefix followed by branches. `rewards[b]` lists positions relative to the sequence
    prefix + branches[b] (so a position inside the prefix is allowed); `slots[b]` is the output slot of
    branch b: reward positions are emitted slot by slot, whatever the physical placement."""

    prefix: list[int]
    branches: list[list[int]]
    rewards: list[list[int]]
    slots: list[int]
    source: int = 0  # the feature index, for error messages

    def __len__(self) -> int:
        return len(self.prefix) + sum(len(b) for b in self.branches)

    def split(self) -> list[PackUnit]:
        """One plain unit per branch (the prefix repeated): used when a tree does not fit or cannot be run."""
        return [
            PackUnit([], [self.prefix + branch], [rewards], [slot], self.source)
            for branch, rewards, slot in zip(self.branches, self.rewards, self.slots, strict=True)
        ]


@dataclass
class PackedLayout:
    input_ids: torch.Tensor  # (rows, L)
    position_ids: torch.Tensor  # (rows, L)
    doc_ids: torch.Tensor  # (rows, L), -1 for padding
    branch_ids: torch.Tensor  # (rows, L), 0 for prefix and padding, k >= 1 for branch k
    reward_positions: torch.Tensor  # (n,) flat indices into rows * L, in slot order
    reward_slots: torch.Tensor  # (n,) the slot each reward position belongs to
    sequence_lengths: list[int]  # lengths of the contiguous attention segments in order (varlen only)
    segments: torch.Tensor  # (blocks, 7): row, q_lo, q_hi, a_lo, a_hi, b_lo, b_hi (keys = [a) + [b))
    real_tokens: int


def first_fit_decreasing(lengths: Sequence[int], budget: int) -> list[list[int]]:
    """Bins of item indices whose lengths sum to at most `budget`; longest items are placed first."""
    bins: list[list[int]] = []
    room: list[int] = []
    for i in sorted(range(len(lengths)), key=lambda j: (-lengths[j], j)):
        for b, free in enumerate(room):
            if lengths[i] <= free:
                bins[b].append(i)
                room[b] -= lengths[i]
                break
        else:
            bins.append([i])
            room.append(budget - lengths[i])
    return bins


def layout_units(
    units: list[PackUnit],
    pad_token_id: int,
    token_budget: int | None,
    pad_to_multiple_of: int | None = None,
    rows: str = "fit",
) -> PackedLayout:
    """Place units into rows and build token, position, doc and branch ids, the attention blocks and the
    reward positions.

    rows="fit": first-fit decreasing into rows as wide as the longest unit (for dense masks, whose cost grows
    with row width). rows="single": one row, or rows of `token_budget` when one is set (for kernels whose cost
    does not depend on row width).
    """
    if not units:
        raise ValueError("cannot pack an empty batch")
    lengths = [len(u) for u in units]
    for u, n in zip(units, lengths, strict=True):
        if n == 0 or any(len(b) == 0 for b in u.branches):
            raise ValueError(f"feature {u.source}: every packed sequence needs at least one token of its own")
        for branch, rewards in zip(u.branches, u.rewards, strict=True):
            total = len(u.prefix) + len(branch)
            bad = [r for r in rewards if not 0 <= r < total]
            if bad:
                raise ValueError(
                    f"feature {u.source}: reward position(s) {bad} outside a sequence of {total} tokens"
                )
    if token_budget is not None:
        too_long = [(u.source, n) for u, n in zip(units, lengths, strict=True) if n > token_budget]
        if too_long:
            source, n = too_long[0]
            raise ValueError(
                f"feature {source}: a packed unit of {n} tokens exceeds token_budget={token_budget}; "
                "raise --packing_token_budget to at least max_length"
            )
    if rows == "fit":
        row_plan = first_fit_decreasing(lengths, max(lengths))
    elif rows == "single":
        row_plan = (
            [list(range(len(units)))] if token_budget is None else first_fit_decreasing(lengths, token_budget)
        )
    else:
        raise ValueError(f"rows must be 'fit' or 'single', got {rows!r}")
    width = max(sum(lengths[i] for i in row) for row in row_plan)
    if pad_to_multiple_of:
        width = -(-width // pad_to_multiple_of) * pad_to_multiple_of
    n_rows = len(row_plan)
    input_ids = torch.full((n_rows, width), pad_token_id, dtype=torch.long)
    position_ids = torch.zeros((n_rows, width), dtype=torch.long)
    doc_ids = torch.full((n_rows, width), -1, dtype=torch.long)
    branch_ids = torch.zeros((n_rows, width), dtype=torch.long)
    by_slot: dict[int, list[int]] = {}
    seq_lengths: list[int] = []
    blocks: list[tuple[int, ...]] = []
    for r, row in enumerate(row_plan):
        col = 0
        for doc, i in enumerate(row):
            u = units[i]
            p = len(u.prefix)
            start = col
            if p:
                input_ids[r, col : col + p] = torch.tensor(u.prefix, dtype=torch.long)
                position_ids[r, col : col + p] = torch.arange(p)
                col += p
            doc_ids[r, start : start + lengths[i]] = doc
            for k, (branch, rewards, slot) in enumerate(zip(u.branches, u.rewards, u.slots, strict=True)):
                n = len(branch)
                input_ids[r, col : col + n] = torch.tensor(branch, dtype=torch.long)
                position_ids[r, col : col + n] = torch.arange(p, p + n)
                branch_ids[r, col : col + n] = k + 1
                flat = []
                for pos in rewards:
                    c = start + pos if pos < p else col + (pos - p)
                    flat.append(r * width + c)
                if slot in by_slot:
                    raise ValueError(f"feature {u.source}: output slot {slot} used twice")
                by_slot[slot] = flat
                if k == 0:  # the prefix and the first branch are contiguous: one causal block
                    blocks.append((r, start, col + n, start, col + n, 0, 0))
                else:  # a later branch sees the prefix, then itself
                    blocks.append((r, col, col + n, start, start + p, col, col + n))
                col += n
            seq_lengths.append(lengths[i])
    slots = sorted(by_slot)
    positions = [p for s in slots for p in by_slot[s]]
    owners = [s for s in slots for _ in by_slot[s]]
    return PackedLayout(
        input_ids=input_ids,
        position_ids=position_ids,
        doc_ids=doc_ids,
        branch_ids=branch_ids,
        reward_positions=torch.tensor(positions, dtype=torch.long),
        reward_slots=torch.tensor(owners, dtype=torch.long),
        sequence_lengths=seq_lengths,
        segments=torch.tensor(blocks, dtype=torch.long).reshape(-1, 7),
        real_tokens=sum(lengths),
    )


def group_trees(
    groups: Sequence[Sequence[Sequence[int]]], rewards: Sequence[Sequence[list[int]]]
) -> list[PackUnit]:
    """Each group of sequences as one packing tree: their common token prefix once, then each sequence's own
    tokens. `rewards[i][b]` lists positions in sequence b of group i; a sequence's output slot is its index in
    the groups flattened in order."""
    units, slot = [], 0
    for group, group_rewards in zip(groups, rewards, strict=True):
        n = min((shared_prefix_length(group[0], s) for s in group[1:]), default=0)
        slots = list(range(slot, slot + len(group)))
        units.append(PackUnit(list(group[0][:n]), [list(s[n:]) for s in group], list(group_rewards), slots))
        slot += len(group)
    return units
