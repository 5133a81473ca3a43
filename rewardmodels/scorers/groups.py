"""Scoring groups of responses that answer one prompt (a preference pair, a best-of-N set), with any scorer.

A caller hands over prompts and, per prompt, a group of responses; it gets one float per response back, in
the same shape. Which scorer API does the work is decided here, once, by the capability protocols, best
first:

  ScoresGroups    each group's encoded sequences go in as one group, so the scorer can run the prompt once
  ScoresTokenIds  the encoded sequences are scored one by one (length-sorted batches inside the scorer)
  ScoresTexts     the (prompt, response) texts, for scorers that do not tokenize for their callers

Identical work in one call is done once: a repeated group (ScoresGroups), a repeated sequence
(ScoresTokenIds) or a repeated (prompt, response) pair (texts). Encoding is a separate step
(`encode_groups`), so a caller can tokenize everything once, plan its chunks by token length, and then score
chunk by chunk on the token ids (`score_encoded_groups`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from rewardmodels.scorers.capabilities import (
    PrefersBatchSize,
    ReportsTruncation,
    RunsOnDevice,
    ScoresGroups,
    ScoresTokenIds,
)

ENCODE_STEP = 512  # sequences per `encode` call: keeps the tokenizer's batches, and its memory, bounded


@dataclass
class EncodedGroups:
    groups: list[list]  # per group, the scorer's token-id sequences (its own type, e.g. with response_start)
    truncated: list[bool] | None  # per group: was any sequence cut to max_length? None: the scorer never says


def takes_token_ids(scorer) -> bool:
    """True when the scorer encodes texts for its callers and scores the token ids (groups or sequences)."""
    return isinstance(scorer, ScoresGroups | ScoresTokenIds)


def default_batch_size(scorer) -> int:
    """Sequences per forward when the caller gives none: 1 on CPU (an example's sequences still share one
    forward), else the scorer's `preferred_batch_size`, else 16.

    On CPU a forward over one example's tokens ran about 1.5x faster per token than batches of 16 sequences
    (SmolLM2-135M on the RewardBench sample, docs/benchmarks.md). Scorers that do not say where they run get
    the off-CPU default.
    """
    if isinstance(scorer, RunsOnDevice) and str(getattr(scorer.device, "type", scorer.device)) == "cpu":
        return 1
    if isinstance(scorer, PrefersBatchSize):
        return int(scorer.preferred_batch_size)
    return 16


def encode_groups(
    scorer, prompts: Sequence, groups: Sequence[Sequence], progress: bool = False
) -> EncodedGroups:
    """Every response of every group through `scorer.encode` once, `ENCODE_STEP` sequences per call.

    Truncation is known per group when the scorer reports it (`ReportsTruncation`) for every call.
    """
    if not takes_token_ids(scorer):
        raise TypeError(
            f"{type(scorer).__name__} does not encode texts for its callers (no encode/score_ids)"
        )
    if len(prompts) != len(groups):
        raise ValueError(f"{len(prompts)} prompts but {len(groups)} response groups")
    from tqdm.auto import tqdm

    flat_prompts = [p for p, group in zip(prompts, groups, strict=True) for _ in group]
    flat_responses = [r for group in groups for r in group]
    items: list = []
    flags: list[bool] = []
    reported = isinstance(scorer, ReportsTruncation)
    quick = len(flat_prompts) < 2000  # a bar for a second of tokenizing is noise
    bar = tqdm(total=len(flat_prompts), desc="tokenizing", unit="seq", disable=not progress or quick)
    for start in range(0, len(flat_prompts), ENCODE_STEP):
        end = start + ENCODE_STEP
        chunk = scorer.encode(flat_prompts[start:end], flat_responses[start:end])
        if len(chunk) != len(flat_prompts[start:end]):
            raise RuntimeError(f"encode returned {len(chunk)} sequences for {len(flat_prompts[start:end])}")
        items.extend(chunk)
        cut = scorer.last_truncated if reported else None
        if cut is None or len(cut) != len(chunk):
            reported = False
        else:
            flags.extend(bool(c) for c in cut)
        bar.update(len(chunk))
    bar.close()
    encoded, truncated, at = [], [], 0
    for group in groups:
        encoded.append(items[at : at + len(group)])
        if reported:
            truncated.append(any(flags[at : at + len(group)]))
        at += len(group)
    return EncodedGroups(encoded, truncated if reported else None)


def _sequence_key(seq) -> tuple:
    # DPO sequences carry where the response starts; equal ids with another split are different work.
    return tuple(seq), getattr(seq, "response_start", None)


def score_encoded_groups(scorer, groups: Sequence[Sequence], batch_size: int = 16) -> list[list[float]]:
    """Scores for groups of the scorer's own encoded sequences: `score_groups_ids` on the distinct groups, or
    `score_ids` on the distinct sequences."""
    if isinstance(scorer, ScoresGroups):
        distinct: dict[tuple, int] = {}
        unique, where = [], []
        for group in groups:
            key = tuple(_sequence_key(s) for s in group)
            if key not in distinct:
                distinct[key] = len(unique)
                unique.append(list(group))
            where.append(distinct[key])
        scored = scorer.score_groups_ids(unique, batch_size=batch_size)
        if len(scored) != len(unique) or any(len(v) != len(g) for v, g in zip(scored, unique, strict=True)):
            raise RuntimeError("score_groups_ids returned a different shape than the groups it was given")
        flat = iter(to_floats([v for values in scored for v in values], sum(len(g) for g in unique)))
        floats = [[next(flat) for _ in group] for group in unique]
        return [floats[j] for j in where]
    if not isinstance(scorer, ScoresTokenIds):
        raise TypeError(f"{type(scorer).__name__} cannot score token ids (no score_groups_ids or score_ids)")
    seen: dict[tuple, int] = {}
    sequences, where_seq = [], []
    for group in groups:
        idx = []
        for seq in group:
            key = _sequence_key(seq)
            if key not in seen:
                seen[key] = len(sequences)
                sequences.append(seq)
            idx.append(seen[key])
        where_seq.append(idx)
    values = to_floats(scorer.score_ids(sequences, batch_size=batch_size), len(sequences))
    return [[values[j] for j in idx] for idx in where_seq]


def score_text_groups(
    scorer, prompts: Sequence, groups: Sequence[Sequence], batch_size: int = 16
) -> list[list[float]]:
    """Scores through `scorer.score(prompts, responses)`, one call for all the distinct (prompt, response)
    pairs of the groups. Every scorer has `score`; this is the path for those that take nothing else."""
    if len(prompts) != len(groups):
        raise ValueError(f"{len(prompts)} prompts but {len(groups)} response groups")
    seen: dict[tuple[str, str], int] = {}
    flat_prompts, flat_responses, where = [], [], []
    for prompt, group in zip(prompts, groups, strict=True):
        idx = []
        for response in group:
            key = (json.dumps(prompt, sort_keys=True), json.dumps(response, sort_keys=True))
            if key not in seen:
                seen[key] = len(flat_prompts)
                flat_prompts.append(prompt)
                flat_responses.append(response)
            idx.append(seen[key])
        where.append(idx)
    values = to_floats(scorer.score(flat_prompts, flat_responses, batch_size=batch_size), len(flat_prompts))
    return [[values[j] for j in idx] for idx in where]


def score_response_groups(
    scorer, prompts: Sequence, groups: Sequence[Sequence], batch_size: int = 16
) -> list[list[float]]:
    """One float per response of each group (`groups[i]` answers `prompts[i]`), through the best API the
    scorer has: groups of token ids, token ids, or texts."""
    if takes_token_ids(scorer):
        return score_encoded_groups(scorer, encode_groups(scorer, prompts, groups).groups, batch_size)
    return score_text_groups(scorer, prompts, groups, batch_size)


def to_floats(values, expected: int) -> list[float]:
    """One float per sequence (numpy and 0-d torch scalars welcome), or an error that says what went wrong."""
    values = list(values)
    if len(values) != expected:
        raise RuntimeError(f"scorer returned {len(values)} scores for {expected} sequences")
    out = []
    for v in values:
        try:
            if isinstance(v, bool | str | list | tuple | dict):
                raise TypeError
            out.append(float(v))
        except (TypeError, ValueError):
            raise TypeError(
                f"the scorer returned {v!r} where one number per response was expected; a reward model must "
                "have a single output (num_labels=1). A plain causal LM loaded as a sequence classifier gets "
                "a fresh 2-way classification head: train and export a scorer, or score it as a DPO policy "
                "(--ref-model / --ref-free)"
            ) from None
    return out


__all__ = [
    "ENCODE_STEP",
    "EncodedGroups",
    "default_batch_size",
    "encode_groups",
    "score_encoded_groups",
    "score_response_groups",
    "score_text_groups",
    "takes_token_ids",
    "to_floats",
]
