"""The filters of `rewardmodels curate`, each applied to the pairs' running decisions, in this order:

  1. decontamination   every pair; an overlapping one is flagged, and dropped with action `drop`
  2. consistency       the pairs still in, ties excepted; flagged when every scorer's margin < -tau, then
                       dropped, flipped or only reported
  3. LIM               scored over the pairs the run trained on (abar^k is the run's mean over them, those
                       an earlier filter dropped included), applied to the ones still in; flipped pairs are
                       exempt (their score describes the pair before the flip), and pairs the run never saw
                       get no score and are kept
  4. length            per source, over the pairs still in (flipped ones as flipped); rebalancing drops a
                       seeded sample of the majority side's distinct pairs

Every filter records what it found on the pair (`flags`), whether or not it acted; a dropped pair keeps the
reason of each filter that dropped it (`reasons`, in filter order). Pairs with the same `row_key` (a row
repeated in a source) share one decision, as a curated training run applies decisions by key.
The rules themselves are in `data_builders.curation`; scoring happens in `rewardmodels.eval.curate`.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from rewardmodels.data_builders.curation import (
    flipped,
    inconsistent,
    is_tie,
    length_share,
    length_sign,
    lim_keep,
    lim_scores,
    rebalance_drops,
    row_key,
)
from rewardmodels.data_builders.decontaminate import EvalIndex

REPORT_ACTIONS = ("drop", "report")
INCONSISTENT_ACTIONS = ("drop", "flip", "report")


@dataclass
class Pair:
    """One input pair, the source it counts under, and its running decision."""

    row: dict
    source: str
    key: str = ""
    action: str = "keep"  # keep, drop or flip
    reasons: list[str] = field(default_factory=list)
    flags: dict = field(default_factory=dict)

    def __post_init__(self):
        self.key = self.key or row_key(self.row)

    @property
    def active(self) -> bool:
        return self.action != "drop"

    def drop(self, reason: str) -> None:
        self.action = "drop"
        self.reasons.append(reason)

    def output_row(self) -> dict:
        """The row as training should see it: flipped when flipped, with its `source`."""
        row = flipped(self.row) if self.action == "flip" else dict(self.row)
        return {**row, "source": self.source}


def decontaminate(pairs: list[Pair], index: EvalIndex, action: str, check_responses: bool = False) -> dict:
    """Flag (and with `drop`, drop) every pair that overlaps an evaluation set. Returns counts per source,
    evaluation set and kind (exact or n-gram: a pair counts once per set, under its strongest kind)."""
    if action not in REPORT_ACTIONS:
        raise ValueError(
            f"the decontamination action must be one of {', '.join(REPORT_ACTIONS)}, got {action!r}"
        )
    counts: dict = defaultdict(lambda: defaultdict(Counter))
    flagged = 0
    for pair in pairs:
        overlaps = index.find(pair.row, check_responses)
        if not overlaps:
            continue
        flagged += 1
        pair.flags["overlaps"] = [o.to_dict() for o in overlaps]
        for name in sorted({o.eval for o in overlaps}):
            kinds = {o.kind for o in overlaps if o.eval == name}
            counts[pair.source][name]["exact" if "exact" in kinds else f"{index.n}-gram"] += 1
        if action == "drop":
            pair.drop("contaminated:" + ",".join(sorted({o.eval for o in overlaps})))
    return {
        "action": action,
        "pairs_flagged": flagged,
        "by_source": {s: {e: dict(c) for e, c in evals.items()} for s, evals in counts.items()},
    }


def consistency(pairs: list[Pair], margins: dict[str, list[float]], tau: float, action: str) -> dict:
    """`margins[scorer]` holds one margin per pair of `consistency_pairs(pairs)`, in order. A pair every
    scorer puts below -tau is flagged, then dropped, flipped or left (`report`)."""
    if action not in INCONSISTENT_ACTIONS:
        raise ValueError(
            f"the inconsistent action must be one of {', '.join(INCONSISTENT_ACTIONS)}, got {action!r}"
        )
    judged = consistency_pairs(pairs)
    names = list(margins)
    flags = inconsistent([margins[n] for n in names], tau)
    by_source: Counter = Counter()
    for i, (pair, bad) in enumerate(zip(judged, flags, strict=True)):
        pair.flags["margins"] = {n: margins[n][i] for n in names}
        if not bad:
            continue
        pair.flags["inconsistent"] = True
        by_source[pair.source] += 1
        if action == "drop":
            pair.drop("inconsistent")
        elif action == "flip":
            pair.action = "flip"
            pair.reasons.append("inconsistent_flipped")
    return {"action": action, "tau": tau, "scorers": names, "pairs_judged": len(judged),
            "pairs_flagged": sum(flags), "by_source": dict(by_source)}  # fmt: skip


def consistency_pairs(pairs: list[Pair]) -> list[Pair]:
    """The pairs the consistency filter judges: those still in, ties excepted."""
    return [p for p in pairs if p.active and not is_tie(p.row)]


def lim(pairs: list[Pair], signals: list[list[float]], threshold: float | None, top_fraction: float | None,
        action: str) -> dict:  # fmt: skip
    """`signals[i][k]`: pair i's signal at checkpoint k, for every pair. Records each pair's LIM score and
    drops (action `drop`) the kept pairs that `lim_keep` would not keep; flipped pairs are exempt."""
    if action not in REPORT_ACTIONS:
        raise ValueError(f"the LIM action must be one of {', '.join(REPORT_ACTIONS)}, got {action!r}")
    scores, means = lim_scores(signals)
    keep = lim_keep(scores, threshold, top_fraction)
    low: Counter = Counter()
    for pair, score, kept in zip(pairs, scores, keep, strict=True):
        pair.flags["lim"] = score
        if kept or pair.action != "keep":
            continue
        low[pair.source] += 1
        if action == "drop":
            pair.drop("low_lim")
    ordered = sorted(scores)
    return {"action": action, "threshold": None if top_fraction is not None else threshold, "top_fraction": top_fraction,
            "mean_signal_by_checkpoint": means, "pairs_below": sum(low.values()), "by_source": dict(low),
            "score_quantiles": {q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] for q in (0.1, 0.25, 0.5, 0.75, 0.9)}}  # fmt: skip


def length(pairs: list[Pair], target: float | None, seed: int) -> dict:
    """Per source, the chosen-longer share (characters) of the pairs still in, before and after rebalancing
    to `target` (None: report only). Distinct pairs are sampled with a seed made of `seed` and the source."""
    by_source: dict[str, list[Pair]] = defaultdict(list)
    for pair in pairs:
        if pair.active:
            by_source[pair.source].append(pair)
    before = {s: length_share([p.output_row() for p in group]).to_dict() for s, group in by_source.items()}
    dropped: Counter = Counter()
    if target is not None:
        for source, group in by_source.items():
            distinct: dict[str, Pair] = {}
            for pair in group:
                distinct.setdefault(pair.key, pair)
            keys = list(distinct)
            signs = [length_sign(distinct[k].output_row()) for k in keys]
            gone = {keys[i] for i in rebalance_drops(signs, target, random.Random(f"{seed}:{source}"))}
            for pair in group:
                if pair.key in gone:
                    pair.drop("length_rebalance")
                    dropped[source] += 1
    after = {
        s: length_share([p.output_row() for p in group if p.active]).to_dict()
        for s, group in by_source.items()
    }
    return {"unit": "characters", "target": target, "seed": seed, "before": before, "after": after,
            "dropped_by_source": dict(dropped)}  # fmt: skip


def counts(pairs: list[Pair]) -> dict:
    """Per source and in total: pairs read, kept (flipped included), flipped, dropped, and drops per reason."""
    table: dict[str, dict] = {}
    for pair in pairs:
        for name in (pair.source, "total"):
            entry = table.setdefault(
                name, {"read": 0, "kept": 0, "flipped": 0, "dropped": 0, "reasons": Counter()}
            )
            entry["read"] += 1
            if pair.action == "drop":
                entry["dropped"] += 1
                entry["reasons"][pair.reasons[-1].split(":")[0]] += 1  # the filter that dropped it: the last
            else:
                entry["kept"] += 1
                entry["flipped"] += pair.action == "flip"
    total = table.pop("total", None)
    ordered = {name: {**v, "reasons": dict(v["reasons"])} for name, v in table.items()}
    if total is not None:
        ordered["total"] = {**total, "reasons": dict(total["reasons"])}
    return ordered
