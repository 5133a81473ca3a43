"""Padding-free packing of sequences, and shared-prompt tree packing of pairs.

Every collator here returns the batch contract of `rewardmodels.collators` (input_ids, attention_mask,
position_ids, reward_positions), so `modeling.rewards_at` and every trainer consume packed batches unchanged.

A packed batch is built from *units*. A unit is a shared token prefix followed by one or more branches; each
branch continues the prefix. A plain sequence is a unit with an empty prefix and one branch. A preference pair
under tree packing is one unit: the prefix once, then the chosen continuation, then the rejected one. Units
are placed into rows of at most `token_budget` tokens (first-fit decreasing), and every token carries:

  position id   its position inside its own sequence; in both branches it continues from the prefix length,
                so each branch sees exactly the positions it would have in a padded row
  doc id        which unit of the row it belongs to (-1 for padding)
  branch id     0 for the shared prefix, k >= 1 for branch k

Token q may attend to token k when they are in the same unit, k is not after q, and k is in the prefix or in
q's own branch. Chosen therefore never sees rejected, and each sees the prefix and itself only: the result is
the same as running each sequence alone. Padding tokens attend to themselves only, so their (unused) outputs
stay finite and cannot leak NaN into the backward pass.

How that rule reaches the attention kernel depends on the model's attention implementation (see
`packing_attention_for`):

  "segments" sdpa, CPU or GPU (the default there): every unit becomes one or two attention blocks, and the
            registered kernel `rm_segmented_sdpa` runs sdpa once per block: prefix + chosen under a plain
            causal mask, rejected against prefix + rejected under a bottom-right causal mask. No query ever
            meets a key of another sequence, so attention costs sum(block length^2) as in a padded batch, and
            rows need no padding at all: the batch is one row of exactly the tokens that exist. The kernel
            falls back to ordinary sdpa for any batch without a plan (padded eval, scoring).
  "mask"    eager, or sdpa on request: an explicit 4D boolean mask (rows, 1, L, L). transformers returns a 4D
            mask unchanged (masking_utils: "If the mask is already 4D, simply return as-is"); sdpa takes the
            boolean mask directly (True = attend) and `modeling` turns it into an additive float mask for eager,
            which adds the mask to the scores. Dense kernels compute every masked-out score too, so rows are
            kept as short as the longest unit (first-fit decreasing into that width).
  "varlen"  flash_attention_2/3 on CUDA: one row without padding, position_ids restarting at every sequence,
            and cu_seq_lens_q/k + max_length_q/k handed to transformers' varlen path. Varlen kernels cannot
            express a tree (a branch must see a prefix that is not contiguous with it), so tree packing falls
            back to plain packing there.
  "flex"    flex_attention: the collator sends doc and branch ids and `modeling` builds a sparse BlockMask on
            the device from the same rule, so tree packing keeps its savings on GPU without a dense mask.

position_ids alone are never enough: with a 2D all-ones mask transformers does not look for sequence
boundaries at all, and without a mask it splits at position resets, which cuts a rejected branch off its
prefix (both measured in tests/test_packing.py).

The reward of each sequence is read at its last token, or, for PRM-style features, at every listed position
relative to the sequence. Reward positions come out in feature order whatever the physical layout, so for
pairs the first half is still chosen and the second half rejected.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

logger = logging.getLogger(__name__)

ATTENTION_MODES = ("segments", "mask", "varlen", "flex")
SEGMENTED_SDPA = "rm_segmented_sdpa"
PACKING_MODES = ("auto", "tree", "packed", "none")
# transformers' names for the flash-attention kernels, which take cu_seqlens instead of a mask.
VARLEN_IMPLEMENTATIONS = ("flash_attention_2", "flash_attention_3", "kernels-community/flash-attn")


def packing_attention_for(attn_implementation: str | None) -> str:
    """Which way a packed layout reaches the kernel for a model's attention implementation."""
    impl = attn_implementation or "sdpa"
    if impl in VARLEN_IMPLEMENTATIONS or "flash" in impl:
        return "varlen"
    if impl == "flex_attention":
        return "flex"
    if impl in ("sdpa", SEGMENTED_SDPA):
        return "segments"
    return "mask"


@dataclass
class PackUnit:
    """A shared prefix followed by branches. `rewards[b]` lists positions relative to the sequence
    prefix + branches[b] (so a position inside the prefix is allowed); `slots[b]` is the output slot of branch b:
    reward positions are emitted slot by slot, whatever the physical placement."""

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
    """Place units into rows and build token, position, doc and branch ids, the attention blocks and the reward
    positions.

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


def allowed_attention(doc_ids: torch.Tensor, branch_ids: torch.Tensor) -> torch.Tensor:
    """Boolean (rows, 1, L, L) mask from doc and branch ids: True where query q may attend to key k."""
    length = doc_ids.shape[-1]
    q_doc, k_doc = doc_ids[:, :, None], doc_ids[:, None, :]
    q_branch, k_branch = branch_ids[:, :, None], branch_ids[:, None, :]
    causal = torch.ones(length, length, dtype=torch.bool, device=doc_ids.device).tril()
    same = (q_doc == k_doc) & (q_doc >= 0) & causal
    visible = same & ((k_branch == 0) | (k_branch == q_branch))
    # Padding attends to itself, so no query row is fully masked (sdpa would return NaN there).
    visible |= torch.eye(length, dtype=torch.bool, device=doc_ids.device)
    return visible[:, None]


def tree_mask_mod(doc_ids: torch.Tensor, branch_ids: torch.Tensor):
    """The same rule as `allowed_attention`, as a flex-attention mask_mod over (batch, head, q, kv)."""

    def mask_mod(b, h, q_idx, kv_idx):
        same = (doc_ids[b, q_idx] == doc_ids[b, kv_idx]) & (doc_ids[b, q_idx] >= 0) & (kv_idx <= q_idx)
        branch_ok = (branch_ids[b, kv_idx] == 0) | (branch_ids[b, kv_idx] == branch_ids[b, q_idx])
        return (same & branch_ok) | (q_idx == kv_idx)

    return mask_mod


def flex_block_mask(doc_ids: torch.Tensor, branch_ids: torch.Tensor):
    """A flex-attention BlockMask for a packed layout, built on the ids' device (lazy torch import)."""
    from torch.nn.attention.flex_attention import create_block_mask

    rows, length = doc_ids.shape
    return create_block_mask(
        tree_mask_mod(doc_ids, branch_ids), B=rows, H=None, Q_LEN=length, KV_LEN=length, device=doc_ids.device
    )


def varlen_kwargs(sequence_lengths: list[int]) -> dict:
    """cu_seqlens and max lengths for transformers' flash-attention varlen path (one row, no padding)."""
    cu = torch.zeros(len(sequence_lengths) + 1, dtype=torch.int32)
    cu[1:] = torch.cumsum(torch.tensor(sequence_lengths, dtype=torch.int32), 0)
    longest = max(sequence_lengths)
    return {
        "cu_seq_lens_q": cu,
        "cu_seq_lens_k": cu.clone(),
        "max_length_q": longest,
        "max_length_k": longest,
    }


@dataclass
class _PackerBase:
    """`attention` says how the layout reaches the kernel (see the module docstring); `token_budget` caps the
    tokens of one row (None: no cap, one row for segments/varlen/flex)."""

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


def _margins(features: list[dict]) -> torch.Tensor | None:
    if not any("margin" in f for f in features):
        return None
    return torch.tensor([float(f.get("margin", 0.0)) for f in features], dtype=torch.float32)


@dataclass
class PackedPairCollator(_PackerBase):
    """Pairs (`prefix_ids`, `chosen_ids`, `rejected_ids`, optional `margin`) packed without padding.

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
        margin = _margins(features)
        if margin is not None:
            batch["margin"] = margin
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


@dataclass
class PackingChoice:
    mode: str  # tree | packed | none
    attention: str
    reason: str
    collator: object = field(repr=False, default=None)


def check_token_budget(token_budget: int | None, max_length: int | None) -> None:
    """Refuse a row cap below max_length before any work: a single sequence could not be placed."""
    if token_budget is not None and max_length is not None and token_budget < max_length:
        raise ValueError(
            f"--packing_token_budget ({token_budget}) must be at least --max_length ({max_length}), "
            "or a single sequence could not be placed"
        )


def make_pair_collator(
    packing: str,
    pad_token_id: int,
    attn_implementation: str | None,
    features: Sequence[dict] = (),
    token_budget: int | None = None,
    max_length: int | None = None,
) -> PackingChoice:
    """Pick the pair collator for a run.

    auto: tree when the data has shared prefixes and the attention kernel can run a tree, plain packing
    otherwise; none: the padded collator. tree under flash-attention varlen falls back to plain packing.
    """
    from rewardmodels.collators import PaddedPairCollator

    if packing not in PACKING_MODES:
        raise ValueError(f"--packing must be one of {PACKING_MODES}, got {packing!r}")
    attention = packing_attention_for(attn_implementation)
    if packing == "none":
        return PackingChoice("none", "padded", "packing switched off", PaddedPairCollator(pad_token_id))
    check_token_budget(token_budget, max_length)
    shared = has_shared_prefixes(features)
    if packing == "auto":
        want_tree, reason = (
            shared,
            ("pairs share token prefixes" if shared else "no shared prefixes in the data"),
        )
    else:
        want_tree, reason = packing == "tree", f"--packing {packing}"
    if want_tree and attention == "varlen":
        logger.warning(
            "tree packing needs a mask the flash-attention varlen kernel cannot express; using plain packing "
            "(choose --attn_implementation sdpa or flex_attention to keep the shared-prefix saving)"
        )
        want_tree, reason = False, reason + "; flash-attention varlen cannot run a tree"
    mode = "tree" if want_tree else "packed"
    collator = PackedPairCollator(
        pad_token_id=pad_token_id, token_budget=token_budget, attention=attention, tree=want_tree
    )
    return PackingChoice(mode, attention, reason, collator)


# ---------------------------------------------------------------- the segmented sdpa kernel


@dataclass
class _BlockGroup:
    q_index: torch.Tensor  # (n, max_q) flat token index of each query (0 where padded)
    k_index: torch.Tensor  # (n, max_k) flat token index of each key (0 where padded)
    mask: torch.Tensor  # (n, 1, max_q, max_k) True where the query may attend


# What one more group costs (an sdpa call and its gathers, forward and backward), in attention score
# entries: about a 256 x 256 block, from CPU profiles of SmolLM2-135M training steps.
_CALL_COST = 65536


def group_blocks(sizes: list[tuple[int, int]], call_cost: int = _CALL_COST) -> list[list[int]]:
    """Split attention blocks (n_queries, n_keys) into groups, each padded to its largest block, minimising
    padded score entries plus a fixed cost per group. Blocks are sorted by size and cut into runs by dynamic
    programming: one group for similar blocks, several when one long block would pad many short ones."""
    order = sorted(range(len(sizes)), key=lambda i: (-sizes[i][1], -sizes[i][0], i))
    best = [0] + [None] * len(order)  # best[i]: cheapest grouping of the first i blocks in `order`
    cut = [0] * (len(order) + 1)
    for i in range(1, len(order) + 1):
        max_q = 0
        for j in range(i - 1, -1, -1):  # the last group is order[j:i]
            max_q = max(max_q, sizes[order[j]][0])
            cost = best[j] + (i - j) * max_q * sizes[order[j]][1] + call_cost
            if best[i] is None or cost < best[i]:
                best[i], cut[i] = cost, j
    groups, i = [], len(order)
    while i > 0:
        groups.append(order[cut[i] : i])
        i = cut[i]
    return groups[::-1]


def _block_groups(plan: torch.Tensor, width: int) -> tuple[list[_BlockGroup], torch.Tensor]:
    """Gather indices for a segment plan. Blocks are grouped by size (`group_blocks`) and each group is padded
    to its own largest block, so padding exists inside attention only, never in the linear layers. Also
    returns `source`, the position of every token's output among the groups' outputs (padding tokens point
    at a zero row)."""
    blocks = plan.tolist()
    sizes = [(q_hi - q_lo, (a_hi - a_lo) + (b_hi - b_lo)) for _, q_lo, q_hi, a_lo, a_hi, b_lo, b_hi in blocks]
    groups = {g: [blocks[i] for i in members] for g, members in enumerate(group_blocks(sizes, _CALL_COST))}
    built, offset = [], 0
    n_tokens = (max(b[0] for b in blocks) + 1) * width if blocks else 0
    source = torch.full((n_tokens,), -1, dtype=torch.long)
    for members in groups.values():
        if not members:
            continue
        q_lists, k_lists = [], []
        for row, q_lo, q_hi, a_lo, a_hi, b_lo, b_hi in members:
            base = row * width
            q_lists.append(list(range(base + q_lo, base + q_hi)))
            k_lists.append(list(range(base + a_lo, base + a_hi)) + list(range(base + b_lo, base + b_hi)))
        max_q, max_k = max(map(len, q_lists)), max(map(len, k_lists))
        q_index = torch.zeros(len(members), max_q, dtype=torch.long)
        k_index = torch.zeros(len(members), max_k, dtype=torch.long)
        mask = torch.zeros(len(members), 1, max_q, max_k, dtype=torch.bool)
        for i, (qs, ks) in enumerate(zip(q_lists, k_lists, strict=True)):
            n_q, n_k = len(qs), len(ks)
            q_index[i, :n_q] = torch.tensor(qs)
            k_index[i, :n_k] = torch.tensor(ks)
            mask[i, 0, :n_q, :n_k] = _bottom_right_causal(n_q, n_k, "cpu")
            mask[i, 0, n_q:, 0] = True  # padded queries look at one key: no all-masked row, no NaN
            source[torch.tensor(qs)] = offset + i * max_q + torch.arange(n_q)
        offset += len(members) * max_q
        built.append(_BlockGroup(q_index, k_index, mask))
    source[source < 0] = offset  # the zero row appended after all groups
    return built, source


def _bottom_right_causal(n_q: int, n_k: int, device) -> torch.Tensor:
    """Query i (of the last n_q positions) sees keys 0 .. n_k - n_q + i."""
    q = torch.arange(n_q, device=device)[:, None]
    k = torch.arange(n_k, device=device)[None, :]
    return k <= q + (n_k - n_q)


def segmented_sdpa_forward(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    is_causal: bool | None = None,
    **kwargs,
):
    """transformers attention function: sdpa over the attention blocks of a packed layout.

    query (rows, heads, L, d), key/value (rows, kv_heads, L, d). `packed_segments` (blocks, 7) lists, per
    block, its row, its query span and the one or two key spans it sees. Queries and keys are gathered into
    per-block tensors (one sdpa call per group of blocks), so no query meets a key of another sequence and
    the cost is that of attention inside each sequence. Row padding gets a zero output: nothing reads it.
    Without a plan this is plain sdpa, so the same model also scores padded batches.
    """
    import torch.nn.functional as F
    from transformers.integrations.sdpa_attention import repeat_kv, sdpa_attention_forward

    plan = kwargs.pop("packed_segments", None)
    if plan is None:
        return sdpa_attention_forward(
            module,
            query,
            key,
            value,
            attention_mask,
            dropout=dropout,
            scaling=scaling,
            is_causal=is_causal,
            **kwargs,
        )
    if kwargs.get("sliding_window") is not None or kwargs.get("softcap") is not None:
        raise ValueError(
            "the segmented kernel supports neither sliding windows nor softcap; use packing 'mask'"
        )
    rows, heads, width, dim = query.shape
    # Built once per batch (the same plan tensor reaches every layer, and the recomputation under gradient
    # checkpointing) and kept on the tensor itself.
    cached = getattr(plan, "_rm_groups", None)
    if cached is None:
        groups, source = _block_groups(plan.cpu(), width)
        groups = [
            _BlockGroup(g.q_index.to(query.device), g.k_index.to(query.device), g.mask.to(query.device))
            for g in groups
        ]
        cached = (groups, source.to(query.device))
        plan._rm_groups = cached
    groups, source = cached
    groups_per_kv = getattr(module, "num_key_value_groups", 1)
    flat_q = query.transpose(1, 2).reshape(rows * width, heads, dim)
    flat_k = key.transpose(1, 2).reshape(rows * width, key.shape[1], dim)
    flat_v = value.transpose(1, 2).reshape(rows * width, value.shape[1], dim)
    outputs = []
    for g in groups:
        n, max_q = g.q_index.shape
        max_k = g.k_index.shape[1]
        q = flat_q[g.q_index.reshape(-1)].reshape(n, max_q, heads, dim).transpose(1, 2)
        k = flat_k[g.k_index.reshape(-1)].reshape(n, max_k, -1, dim).transpose(1, 2)
        v = flat_v[g.k_index.reshape(-1)].reshape(n, max_k, -1, dim).transpose(1, 2)
        if groups_per_kv > 1:
            k, v = repeat_kv(k, groups_per_kv), repeat_kv(v, groups_per_kv)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=g.mask, dropout_p=dropout, scale=scaling)
        outputs.append(out.transpose(1, 2).reshape(n * max_q, heads, dim))
    outputs.append(query.new_zeros(1, heads, dim))
    merged = torch.cat(outputs)[source]
    return merged.reshape(rows, width, heads, dim), None


def register_segmented_sdpa() -> str:
    """Register the kernel (and sdpa's mask builder, for batches without a plan) with transformers, once."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(SEGMENTED_SDPA, segmented_sdpa_forward)
    AttentionMaskInterface.register(SEGMENTED_SDPA, sdpa_mask)
    return SEGMENTED_SDPA
