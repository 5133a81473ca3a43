"""What every scorer kind shares: the manifest's file name, loading a model to score with, batching by length
and by group, the TRL reward-function adapter. What a scorer can do is in `capabilities.py`; models load
through `rewardmodels.modeling.load_backbone`."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import torch
from torch import nn

from rewardmodels.causal.logprobs import LogprobBatch, packed_batch, padded_batch, response_positions
from rewardmodels.modeling import (
    attn_implementation_of,
    load_backbone,
    load_tokenizer,
    pick_device,
    require_safetensors,
)
from rewardmodels.packing import group_trees, packing_attention_for, scoring_runs_trees
from rewardmodels.scorers.capabilities import ScoresTexts
from rewardmodels.scorers.reward_funcs import make_reward_func  # noqa: F401 (lives there; re-exported)

MANIFEST_NAME = "reward_model.json"

# Every scorer scores texts; older code names that capability `Scorer`.
Scorer = ScoresTexts


def load_for_scoring(
    name_or_path: str | Path,
    head: str,
    *,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    attn_implementation: str | None = None,
    trust_remote_code: bool = False,
    tokenizer=None,
) -> tuple[nn.Module, object, torch.device]:
    """(model, tokenizer, device): a scorer directory, Hub id, .gguf or the embedded alias loaded to score
    with, through `load_backbone` (classification heads with as many labels as saved) on
    `pick_device(device)`, in eval mode and without gradients; the tokenizer is `load_tokenizer`'s unless one
    is given. A classification head takes the tokenizer's pad id (which differs from EOS) and size; a causal
    LM keeps its tokenizer and vocabulary as saved: its log-probs are a softmax over the LM head's rows, which
    an added pad token would grow. A local directory with pickled weights only is refused before the
    tokenizer loads, so the error names the weights rather than whatever the tokenizer lacks."""
    require_safetensors(name_or_path)
    dev = pick_device(device)
    if tokenizer is None:
        tokenizer = load_tokenizer(
            str(name_or_path), trust_remote_code=trust_remote_code, distinct_pad=head != "causal_lm"
        )
    model = load_backbone(
        str(name_or_path),
        head,
        num_labels=None,  # as saved
        dtype=dtype,
        device=dev,
        attn_implementation=attn_implementation,
        trust_remote_code=trust_remote_code,
        tokenizer=None if head == "causal_lm" else tokenizer,
    )
    return model.eval().requires_grad_(False), tokenizer, dev


def count_cuts(scorer, encoded: Iterable[tuple[Sequence[int], bool]]) -> list:
    """The ids of (ids, was_cut) pairs, with the `ReportsTruncation` bookkeeping: `scorer.last_truncated`
    flags this call's cut sequences (evaluators count truncated rows from it), `scorer.truncated` counts
    every cut sequence so far."""
    pairs = list(encoded)
    scorer.last_truncated = [cut for _, cut in pairs]
    scorer.truncated += sum(scorer.last_truncated)
    return [ids for ids, _ in pairs]


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped so that each batch holds sequences of similar length (longest first)."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def group_batches(tokens: Sequence[int], members: Sequence[int], batch_size: int) -> list[list[int]]:
    """Group indices, biggest `tokens` first, packed so a batch holds at most `batch_size` members in all
    (a group bigger than that gets a batch of its own: its sequences are never split)."""
    batches: list[list[int]] = []
    count = 0
    for i in sorted(range(len(tokens)), key=lambda i: (-tokens[i], i)):
        if batches and count + members[i] <= batch_size:
            batches[-1].append(i)
            count += members[i]
        else:
            batches.append([i])
            count = members[i]
    return batches


def runs_prompt_trees(*models: nn.Module | None) -> bool:
    """Whether every model given (None: absent) runs prompt-sharing trees through the segmented sdpa kernel,
    the one kernel that scores a tree exactly like its sequences one by one."""
    present = [m for m in models if m is not None]
    return bool(present) and all(
        scoring_runs_trees(packing_attention_for(attn_implementation_of(m)), exact=True) for m in present
    )


def response_values(
    sequences: Sequence[Sequence[int]],
    values_of: Callable[[LogprobBatch], list],
    pad_id: int,
    device,
    batch_size: int,
) -> list:
    """`values_of(batch)` (one value per sequence of the batch) over length-sorted padded log-prob batches
    that predict every response token of `sequences` (`response_tokens.EncodedResponse`; a plain id list is
    all response after its first token), in the sequences' order."""
    out: list = [None] * len(sequences)
    for batch_idx in length_sorted_batches([len(s) for s in sequences], batch_size):
        items = [sequences[i] for i in batch_idx]
        positions = [response_positions(s, getattr(s, "response_start", 1)) for s in items]
        batch = padded_batch(items, positions, pad_id).to(device)
        for i, value in zip(batch_idx, values_of(batch), strict=True):
            out[i] = value
    return out


def group_response_values(
    scorer, groups: Sequence[Sequence], values_of: Callable[[LogprobBatch, list], list], batch_size: int
) -> list[list]:
    """`score_groups_ids` of a log-prob scorer (attributes policy, reference or None, pad_id, device, and a
    score_ids): when both models run the segmented kernel, each group of encoded responses to one prompt is
    one tree (its common token prefix once, then each response) and `values_of(batch, flat)` gives one value
    per `batch.slots` entry, a slot indexing `flat`, the groups flattened. Otherwise, and for a reference that
    is the policy itself, `score_ids` of `flat`. Values equal score_ids' up to float rounding."""
    flat = [s for g in groups for s in g]
    if not runs_prompt_trees(scorer.policy, scorer.reference) or scorer.reference is scorer.policy:
        return split_into_groups(scorer.score_ids(flat, batch_size), groups)
    values: list = [0.0] * len(flat)
    units = group_trees(groups, [[response_positions(s, s.response_start) for s in g] for g in groups])
    for take in group_batches([len(u) for u in units], [len(g) for g in groups], batch_size):
        batch = packed_batch([units[i] for i in take], scorer.pad_id, "segments").to(scorer.device)
        for slot, value in zip(batch.slots, values_of(batch, flat), strict=True):
            values[slot] = value
    return split_into_groups(values, groups)


def split_into_groups(values: Sequence, groups: Sequence[Sequence]) -> list[list]:
    """One value per sequence, in flattened order, cut back into the groups' shapes."""
    out, start = [], 0
    for group in groups:
        out.append(list(values[start : start + len(group)]))
        start += len(group)
    return out
