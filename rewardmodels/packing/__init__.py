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
            boolean mask directly (True = attend) and the dispatch turns it into an additive float mask for
            eager, which adds the mask to the scores. Dense kernels compute every masked-out score too, so
            rows are kept as short as the longest unit (first-fit decreasing into that width).
  "varlen"  flash_attention_2/3 on CUDA: one row without padding, position_ids restarting at every sequence,
            and cu_seq_lens_q/k + max_length_q/k handed to transformers' varlen path. Varlen kernels cannot
            express a tree (a branch must see a prefix that is not contiguous with it), so tree packing falls
            back to plain packing there.
  "flex"    flex_attention: the collator sends doc and branch ids and the dispatch builds a sparse BlockMask
            on the device from the same rule, so tree packing keeps its savings on GPU without a dense mask.

position_ids alone are never enough: with a 2D all-ones mask transformers does not look for sequence
boundaries at all, and without a mask it splits at position resets, which cuts a rejected branch off its
prefix (both measured in tests/test_packing.py).

The reward of each sequence is read at its last token, or, for PRM-style features, at every listed position
relative to the sequence. Reward positions come out in feature order whatever the physical layout, so for
pairs the first half is still chosen and the second half rejected.

The package, one concern per module (every public name is re-exported here):

  layout      PackUnit, PackedLayout, first_fit_decreasing, layout_units, group_trees: where each token goes
  attention   ATTENTION_MODES, packing_attention_for, the masks (allowed_attention, tree_mask_mod,
              flex_block_mask, varlen_kwargs) and packed_attention_kwargs, the dispatch `modeling` calls
  kernels     the segmented sdpa kernel (group_blocks, segmented_sdpa_forward, register_segmented_sdpa)
  collators   PackedPairCollator, PackedSequenceCollator, packed_step_collator, check_token_budget
  choice      the one batching vocabulary: PACKING_MODES (every config's --packing), packing_choices,
              decide_packing (tree, packed or none, and the attention mode), and manifest_batching, which
              reads the `packing` and `attention` of any manifest, old vocabulary included
              (`training.batching.collator_for` builds a run's collator from the decision)
"""

from rewardmodels.packing.attention import (
    ATTENTION_MODES,
    VARLEN_IMPLEMENTATIONS,
    allowed_attention,
    flex_block_mask,
    packed_attention_kwargs,
    packing_attention_for,
    packing_mode_hint,
    tree_mask_mod,
    varlen_kwargs,
)
from rewardmodels.packing.choice import (
    LEGACY_PACKING,
    PACKING_MODES,
    PADDED,
    USED_PACKING,
    PackingDecision,
    decide_packing,
    manifest_batching,
    packing_choices,
    scoring_runs_trees,
)
from rewardmodels.packing.collators import (
    PackedPairCollator,
    PackedSequenceCollator,
    check_token_budget,
    has_shared_prefixes,
    packed_step_collator,
)
from rewardmodels.packing.kernels import (
    SEGMENTED_SDPA,
    group_blocks,
    register_segmented_sdpa,
    segmented_sdpa_forward,
)
from rewardmodels.packing.layout import (
    PackedLayout,
    PackUnit,
    first_fit_decreasing,
    group_trees,
    layout_units,
)

__all__ = [
    "ATTENTION_MODES",
    "LEGACY_PACKING",
    "PACKING_MODES",
    "PADDED",
    "PackUnit",
    "PackedLayout",
    "PackedPairCollator",
    "PackedSequenceCollator",
    "PackingDecision",
    "SEGMENTED_SDPA",
    "USED_PACKING",
    "VARLEN_IMPLEMENTATIONS",
    "allowed_attention",
    "check_token_budget",
    "decide_packing",
    "scoring_runs_trees",
    "first_fit_decreasing",
    "flex_block_mask",
    "group_blocks",
    "group_trees",
    "has_shared_prefixes",
    "layout_units",
    "manifest_batching",
    "packed_attention_kwargs",
    "packed_step_collator",
    "packing_attention_for",
    "packing_choices",
    "packing_mode_hint",
    "register_segmented_sdpa",
    "segmented_sdpa_forward",
    "tree_mask_mod",
    "varlen_kwargs",
]
