"""The one batching vocabulary of every method: what `--packing` may ask, what a training manifest records,
the decision between them, and how manifests written before this vocabulary read.

  --packing (`PACKING_MODES`, every method's config; `packing_choices` drops `tree` where rows are single
  sequences):
    auto    tree where the rows are pairs that share a token prefix and the kernel can run a tree, else packed
    tree    pairs only: the shared prefix once, both continuations attending to it and to themselves
    packed  every sequence once, without padding, attending only to itself
    none    right-padded rows

  manifest `packing`    what the run used (`USED_PACKING`): tree, packed or none; never auto
  manifest `attention`  how its rows reached the attention kernel: a packed mode of `ATTENTION_MODES`
                        (segments, mask, varlen, flex; `packing_attention_for`), or `PADDED` for padded rows

Scoring makes the same tree-or-not decision per call, not per run (`scoring_runs_trees`): a scorer runs the
responses to one prompt as a tree only on a kernel whose tree scores equal the sequences' one by one.

Manifests written before this vocabulary hold other `packing` values; `manifest_batching` reads both, and
`LEGACY_PACKING` is the one place that lists the old ones.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from rewardmodels.errors import InputError
from rewardmodels.packing.attention import ATTENTION_MODES, packing_attention_for

logger = logging.getLogger(__name__)

PACKING_MODES = ("auto", "tree", "packed", "none")
USED_PACKING = ("tree", "packed", "none")
PADDED = "padded"  # the manifest's `attention` (and a collator's) for right-padded rows
# Old `packing` values that are not in USED_PACKING, and what they meant. The implicit PRM recorded its
# attention mode there (`padded` for padded rows); its DPO pairs ran as trees under every mode but varlen.
LEGACY_PACKING = {PADDED: "none", **{mode: "packed" for mode in ATTENTION_MODES}}


def packing_choices(pairs: bool) -> tuple[str, ...]:
    """The `--packing` values of a method whose rows are pairs (all of `PACKING_MODES`) or single sequences
    (all but tree: a single sequence has no prefix to share)."""
    return PACKING_MODES if pairs else tuple(mode for mode in PACKING_MODES if mode != "tree")


@dataclass(frozen=True)
class PackingDecision:
    """What a run's batches are: `mode` (tree | packed | none), `attention` (module docstring), and why."""

    mode: str
    attention: str
    reason: str


def decide_packing(
    requested: str, attn_implementation: str | None, pairs: bool, shared_prefixes: bool
) -> PackingDecision:
    """The batching for `--packing requested` on a model with `attn_implementation`, for rows that are pairs
    (or single sequences) and, for pairs, share a token prefix (or not).

    auto: tree when pairs share prefixes, packed otherwise. A tree under flash-attention varlen, which cannot
    express one, falls back to plain packing (same results, no shared-prefix saving)."""
    if requested not in PACKING_MODES:
        raise InputError(
            None, None, "packing", f"--packing must be one of {', '.join(PACKING_MODES)}, got {requested!r}"
        )
    if requested == "tree" and not pairs:
        raise InputError(None, None, "packing", "--packing tree needs pairs; these rows are single sequences")
    if requested == "none":
        return PackingDecision("none", PADDED, "packing switched off")
    attention = packing_attention_for(attn_implementation)
    if requested == "auto":
        want_tree = pairs and shared_prefixes
        reason = (
            "pairs share token prefixes"
            if want_tree
            else ("no shared prefixes" if pairs else "single sequences")
        )
    else:
        want_tree, reason = requested == "tree", f"--packing {requested}"
    if want_tree and attention == "varlen":
        logger.warning(
            "tree packing needs a mask the flash-attention varlen kernel cannot express; using plain packing "
            "(choose --attn_implementation sdpa or flex_attention to keep the shared-prefix saving)"
        )
        want_tree, reason = False, reason + "; flash-attention varlen cannot run a tree"
    return PackingDecision("tree" if want_tree else "packed", attention, reason)


# Kernels whose tree scores equal each sequence's own: the segmented sdpa kernel exactly (float64 sums of the
# causal scorers need that), and a dense tree mask up to float rounding (enough for a reward head's logit).
EXACT_TREE_KERNELS = ("segments",)
TREE_KERNELS = ("segments", "mask")


def scoring_runs_trees(attention: str, exact: bool) -> bool:
    """Whether a scorer on a model whose packed attention is `attention` scores a prompt's responses as one
    tree: `exact` for log-prob scorers (DPO, implicit PRM), whose scores are small differences of long sums;
    flash-attention varlen cannot express a tree, and flex is refused on CPU, so both score plain rows."""
    return attention in (EXACT_TREE_KERNELS if exact else TREE_KERNELS)


def manifest_batching(manifest: dict) -> tuple[str | None, str | None]:
    """(packing, attention) of a training or scorer manifest in this module's vocabulary, whatever version
    wrote it; (None, None) for a manifest that records no batching.

    Old values (`LEGACY_PACKING`): `padded` is (none, padded); an attention mode M is (packed, M), or
    (tree, M) for an implicit PRM trained on DPO pairs when M is not varlen."""
    packing, attention = manifest.get("packing"), manifest.get("attention")
    if packing is None or packing in USED_PACKING:
        if packing == "none" and attention is None:
            attention = PADDED  # padded rows have one attention however old the manifest
        return packing, attention
    if packing not in LEGACY_PACKING:
        reason = f"unknown packing {packing!r}; expected one of {', '.join(USED_PACKING)}"
        raise InputError(None, None, "packing", reason)
    mode = LEGACY_PACKING[packing]
    if mode == "packed" and manifest.get("objective") == "dpo" and packing != "varlen":
        mode = "tree"
    return mode, packing
