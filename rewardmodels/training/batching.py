"""The one collator decision of every training method.

`collator_for(method_kind, packing, model, tokenizer, features, token_budget, max_length)` decides tree,
packed or none and the attention mode (`packing.decide_packing`: one vocabulary for every config's
`--packing` and every manifest's `packing` and `attention`), then builds the method's collator for that
decision. What each method batches, by its manifest `kind`, is one line of `METHOD_ROWS`:

  bt            preference pairs (prefix, chosen, rejected): PackedPairCollator, as trees or plain;
                PaddedPairCollator for none
  prm           solutions with their step positions: packed_step_collator; PaddedStepCollator
  generative    chains with their completion start: CompletionCollator, packed or padded
  implicit_prm  k sequences a row (k = 2: a DPO pair): ImplicitPRMCollator, pairs as trees or not

Causal methods pad with an id inside the model's vocabulary (`logprobs.pad_id_within_vocab`), since their
tokenizer keeps its vocabulary as saved (`training.causal_lm`); reward-head methods pad with the tokenizer's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rewardmodels.causal.batches import CompletionCollator, ImplicitPRMCollator
from rewardmodels.causal.logprobs import pad_id_within_vocab
from rewardmodels.collators import PaddedPairCollator, PaddedStepCollator
from rewardmodels.modeling import attn_implementation_of
from rewardmodels.packing import (
    PackedPairCollator,
    PackingDecision,
    check_token_budget,
    decide_packing,
    has_shared_prefixes,
    packed_step_collator,
)
from rewardmodels.tokenization import shared_prefix_length

logger = logging.getLogger("rewardmodels")


def pair_collator(decision: PackingDecision, pad_token_id: int, token_budget: int | None):
    if decision.mode == "none":
        return PaddedPairCollator(pad_token_id)
    return PackedPairCollator(
        pad_token_id=pad_token_id,
        token_budget=token_budget,
        attention=decision.attention,
        tree=decision.mode == "tree",
    )


def step_collator(decision: PackingDecision, pad_token_id: int, token_budget: int | None):
    if decision.mode == "none":
        return PaddedStepCollator(pad_token_id=pad_token_id)
    return packed_step_collator(pad_token_id, token_budget, decision.attention)


def completion_collator(decision: PackingDecision, pad_token_id: int, token_budget: int | None):
    if decision.mode == "none":
        return CompletionCollator(pad_token_id, "none")
    return CompletionCollator(pad_token_id, "packed", decision.attention, token_budget)


def response_group_collator(decision: PackingDecision, pad_token_id: int, token_budget: int | None):
    budget = None if decision.mode == "none" else token_budget
    return ImplicitPRMCollator(pad_token_id, decision.attention, budget, tree=decision.mode == "tree")


def groups_are_pairs(features: Sequence[dict]) -> bool:
    """Whether implicit-PRM features hold pairs (DPO), not single outcome sequences (CE)."""
    return bool(features) and len(features[0]["sequences"]) > 1


def groups_share_prefixes(features: Sequence[dict]) -> bool:
    """Whether any pair's two sequences share a token prefix worth storing once."""
    return any(
        shared_prefix_length(f["sequences"][0], f["sequences"][1]) > 0
        for f in features
        if len(f["sequences"]) > 1
    )


@dataclass(frozen=True)
class MethodRows:
    """What one method batches: whether its rows are pairs and share prefixes (both read from its training
    features), the collator for a decision, and whether its model is a causal LM (the pad id it needs)."""

    pairs: Callable[[Sequence[dict]], bool]
    shared_prefixes: Callable[[Sequence[dict]], bool]
    build: Callable[[PackingDecision, int, int | None], object]
    causal: bool


def always(value: bool) -> Callable[[Sequence[dict]], bool]:
    return lambda features: value


METHOD_ROWS = {
    "bt": MethodRows(always(True), has_shared_prefixes, pair_collator, causal=False),
    "prm": MethodRows(always(False), always(False), step_collator, causal=False),
    "generative": MethodRows(always(False), always(False), completion_collator, causal=True),
    "implicit_prm": MethodRows(groups_are_pairs, groups_share_prefixes, response_group_collator, causal=True),
}


@dataclass(frozen=True)
class Batching:
    """A run's collator and the decision it was built for: `mode` (tree | packed | none), `attention` (a
    packed attention mode, or `packing.PADDED`) and why."""

    collator: object
    mode: str
    attention: str
    reason: str

    def record(self, manifest: dict) -> None:
        """Write the manifest's `packing` and `attention` (`packing.choice`'s vocabulary)."""
        manifest["packing"] = self.mode
        manifest["attention"] = self.attention


def collator_for(
    method_kind: str,
    packing: str,
    model,
    tokenizer,
    features: Sequence[dict] = (),
    token_budget: int | None = None,
    max_length: int | None = None,
) -> Batching:
    """The collator of a `method_kind` run (`METHOD_ROWS`) for `--packing packing`, on `model`'s attention
    kernel. `features`: the training features, read for whether rows are pairs that share prefixes. A packed
    row cap (`token_budget`) below `max_length` is refused before any work."""
    if method_kind not in METHOD_ROWS:
        raise ValueError(f"no batching for method {method_kind!r}; known: {', '.join(METHOD_ROWS)}")
    rows = METHOD_ROWS[method_kind]
    decision = decide_packing(
        packing, attn_implementation_of(model), rows.pairs(features), rows.shared_prefixes(features)
    )
    if decision.mode != "none":
        check_token_budget(token_budget, max_length)
    pad_token_id = pad_id_within_vocab(tokenizer, model) if rows.causal else tokenizer.pad_token_id
    collator = rows.build(decision, pad_token_id, token_budget)
    return Batching(collator, decision.mode, decision.attention, decision.reason)


def run_collator(method_kind: str, args, data_args, model, tokenizer, manifest: dict, features=()) -> object:
    """`collator_for` with a run's `--packing`, `--packing_token_budget` and `--max_length`; logs the choice
    and records it in the training manifest."""
    batching = collator_for(
        method_kind, args.packing, model, tokenizer, features, args.packing_token_budget, data_args.max_length
    )
    logger.info("batching: %s (%s; attention via %s)", batching.mode, batching.reason, batching.attention)
    batching.record(manifest)
    return batching.collator
