"""The segmented sdpa kernel: sdpa run once per group of attention blocks of a packed layout, registered with
transformers as `rm_segmented_sdpa`. Exact (the same scores as a padded batch) and free of padding in the
linear layers; see `rewardmodels.packing` for the layout it reads."""

from __future__ import annotations

from dataclasses import dataclass

import torch

SEGMENTED_SDPA = "rm_segmented_sdpa"


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


def _cached_block_groups(plan: torch.Tensor, width: int, device) -> tuple[list[_BlockGroup], torch.Tensor]:
    """`_block_groups` on `device`, built once per batch (the same plan tensor reaches every layer, and the
    recomputation under gradient checkpointing) and kept on the plan tensor itself.

    The gather plan is built with inference mode switched off: a plan built inside `torch.inference_mode()`
    (a frozen reference's pass over the batch) would hold inference tensors, which a later gradient pass over
    the same batch may not save for backward. Ordinary tensors serve both kinds of pass.
    """
    cached = getattr(plan, "_rm_groups", None)
    if cached is None:
        with torch.inference_mode(False):
            groups, source = _block_groups(plan.cpu(), width)
            groups = [
                _BlockGroup(g.q_index.to(device), g.k_index.to(device), g.mask.to(device)) for g in groups
            ]
            cached = (groups, source.to(device))
        plan._rm_groups = cached
    return cached


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
    groups, source = _cached_block_groups(plan, width, query.device)
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
