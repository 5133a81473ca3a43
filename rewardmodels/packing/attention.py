"""How a packed layout reaches a model's attention kernel: the mode chosen for each attention implementation,
the masks built from doc and branch ids (dense boolean, flex BlockMask, flash-attention cu_seqlens), and the
dispatch that adapts a packed batch to the model it runs on (`packed_attention_kwargs`).

Import direction: `rewardmodels.modeling` imports this module, never the reverse. The dispatch therefore
takes the transformers model itself (what `modeling.unwrap` returns) and reads only its config, parameters
and `set_attn_implementation`; stripping DDP/peft wrappers stays in modeling, next to the loading code.
"""

from __future__ import annotations

import torch
from torch import nn

from rewardmodels.packing.kernels import SEGMENTED_SDPA, register_segmented_sdpa

ATTENTION_MODES = ("segments", "mask", "varlen", "flex")
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


def packing_mode_hint(impl: str) -> str:
    """The packing attention mode to name in an error about a batch built for another kernel."""
    return packing_attention_for(impl)


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


def packed_attention_kwargs(model: nn.Module, batch: dict) -> dict:
    """Adapt a packed batch (see `rewardmodels.packing`) to the model's attention kernel.

    `model` is the transformers model itself, not a DDP/peft wrapper (`modeling.unwrap` strips those;
    `modeling.token_logits` does so before calling).
    - eager adds the mask to the scores, so a boolean 4D mask becomes an additive one (0 / dtype minimum);
      sdpa takes the boolean mask as it is.
    - a segment plan (sdpa) runs through the registered segmented kernel; an sdpa model is switched to it
      on first use. It computes exactly what sdpa computes, and falls back to sdpa for batches without a plan.
    - flex_attention gets a sparse BlockMask built on the device from the layout's doc and branch ids.
    - flash-attention gets cu_seqlens and max lengths (varlen), and refuses a dense 4D mask.
    Returns the keyword arguments that replace or extend the model call's; empty for a padded batch.
    """
    config = getattr(model, "config", None)
    if config is None:
        raise TypeError(
            f"packed_attention_kwargs needs the transformers model itself, got {type(model).__name__}; "
            "strip DDP/accelerate wrappers with rewardmodels.modeling.unwrap first"
        )
    out: dict = {}
    impl = getattr(config, "_attn_implementation", None) or "sdpa"
    mask = batch.get("attention_mask")
    is_flash = "flash" in impl
    if batch.get("packed_segments") is not None:
        if impl == "sdpa":
            register_segmented_sdpa()
            model.set_attn_implementation(SEGMENTED_SDPA)
        elif impl != SEGMENTED_SDPA:
            raise ValueError(
                f"a segmented packed batch needs sdpa attention, the model uses {impl}; build the batch with "
                f"packing attention {packing_mode_hint(impl)!r}"
            )
        out["packed_segments"] = batch["packed_segments"]
    elif mask is not None and mask.dim() == 4:
        if is_flash:
            raise ValueError(
                f"a 4D packed attention mask cannot run with attn_implementation={impl}; build the batch "
                "with packing attention 'varlen' (plain packing) or load the model with sdpa"
            )
        if impl == "eager" and mask.dtype == torch.bool:
            dtype = next(model.parameters()).dtype
            dtype = dtype if dtype.is_floating_point else torch.float32
            out["attention_mask"] = torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(
                ~mask, torch.finfo(dtype).min
            )
    elif mask is None and batch.get("packed_doc_ids") is not None:
        if impl == "flex_attention":
            out["attention_mask"] = flex_block_mask(batch["packed_doc_ids"], batch["packed_branch_ids"])
        elif is_flash:
            if batch.get("cu_seq_lens_q") is None:
                raise ValueError(
                    "a packed batch for flash-attention needs cu_seq_lens_q/k (packing 'varlen')"
                )
            for key in ("cu_seq_lens_q", "cu_seq_lens_k", "max_length_q", "max_length_k"):
                out[key] = batch[key]
        else:
            raise ValueError(
                f"this packed batch carries no attention mask and attn_implementation={impl} needs one; "
                "use packing attention 'mask'"
            )
    return out
