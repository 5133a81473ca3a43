"""What every scorer kind shares: the manifest's file name, batching by length and by group, the TRL
reward-function adapter. What a scorer can do is in `capabilities.py`; models load through
`rewardmodels.modeling.load_backbone`."""

from __future__ import annotations

from collections.abc import Callable, Sequence

# Re-exported for scorer modules that still import them from here; they live in modeling.
from rewardmodels.modeling import pick_device, pick_dtype  # noqa: F401
from rewardmodels.packing import PackUnit
from rewardmodels.scorers.capabilities import ScoresTexts
from rewardmodels.tokenization import shared_prefix_length

MANIFEST_NAME = "reward_model.json"

# Every scorer scores texts; older code names that capability `Scorer`.
Scorer = ScoresTexts


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


def split_into_groups(values: Sequence, groups: Sequence[Sequence]) -> list[list]:
    """One value per sequence, in flattened order, cut back into the groups' shapes."""
    out, start = [], 0
    for group in groups:
        out.append(list(values[start : start + len(group)]))
        start += len(group)
    return out


def make_reward_func(score: Callable[[list, list], list[float]], name: str) -> Callable[..., list[float]]:
    """Adapt a scorer to TRL's GRPO reward-function signature: f(prompts, completions, **kwargs)."""

    def reward_func(prompts, completions, **kwargs) -> list[float]:
        return score(list(prompts), list(completions))

    reward_func.__name__ = name
    return reward_func
