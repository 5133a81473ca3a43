"""Crome causal and neutral augmentations of a preference dataset (Srivastava et al. 2025, "Robust Reward
Modeling via Causal Rubrics"): `rewardmodels build crome`.

  1 rubric   the oracle lists the causal attributes of each prompt (`crome_oracle.parse_rubric`); a row whose
             reply is malformed gets `--default-attributes` (counted as a fallback), or no causal pairs
  2 causal   for each of a row's first `attributes_per_row` attributes a: the chosen answer degraded along
             a (chosen > degraded) and the rejected answer upgraded along a (upgraded > rejected)
  3 neutral  ties: the oracle's restyled chosen answer (its numbers must survive); every deterministic
             transform of `spurious` applied to the chosen (and/or rejected) answer; and the irrelevant-query
             pair, this row's chosen and rejected answers under the prompt of row (i + floor(N/2)) mod N,
             where neither answers the question asked, so only relevance could separate them and it does not
  4 filter   with a base scorer (`--filter-scorer`), each augmented pair's base-RM probability
             p = sigmoid(s_chosen - s_rejected) decides (`FilterRule`): causal pairs with p >= causal_high
             (already learnt) or p <= causal_low (the base RM confidently disagrees: more often a failed
             rewrite than a base-RM error) are dropped; ties with |p - 0.5| < neutral_gap (already
             invariant) are dropped when `neutral` is "sensitive". Human-labelled original pairs are kept.
  5 emit     at most `--emit` pairs of each type (original, causal, neutral), sources taken in turn, so a
             cap keeps every source (attribute direction, transform, irrelevant query) represented

Every oracle call goes through `rewardmodels.sampling` (a local model, default the embedded SmolLM2, or an
OpenAI-compatible server with --endpoint) and its on-disk cache, one committed batch per chunk of
`--oracle-batch` requests: an interrupted run resumes there, and a rerun asks the oracle nothing. Output
rows are canonical preference rows (`tie: true` on neutral pairs) plus `crome_type`, `crome_source`,
`attribute`, `source_row` and, when filtered, `base_prob`. The statistics file counts, per stage and per
attribute or source: requested, produced, malformed (by reason), filtered, kept and emitted.

The command line is `crome_cli`; choices and their reasons are in docs/crome.md.
"""

from __future__ import annotations

import logging
import math
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from rewardmodels.data_builders import crome_oracle as oracle
from rewardmodels.data_builders.schema import text_of
from rewardmodels.data_builders.spurious import TRANSFORMS, transform_response
from rewardmodels.sampling import Sampler

logger = logging.getLogger("rewardmodels")

PAIR_TYPES = ("original", "causal", "neutral")
FILTER_MODES = {"causal": ("none", "uncertain", "plausible", "band"), "neutral": ("none", "sensitive")}


@dataclass(frozen=True)
class CromeSettings:
    max_attributes: int = 3
    attributes_per_row: int = 2
    directions: tuple[str, ...] = oracle.DIRECTIONS
    oracle_neutral: bool = True
    transforms: tuple[str, ...] = tuple(TRANSFORMS)
    transform_sides: tuple[str, ...] = ("chosen",)
    irrelevant_query: bool = True
    default_attributes: tuple[str, ...] = ()
    prefill: bool = True
    max_context_chars: int = 2000
    oracle_batch: int = 16
    min_length_ratio: float = 0.2
    max_length_ratio: float = 4.0
    emit: dict[str, int | None] = field(default_factory=lambda: dict.fromkeys(PAIR_TYPES))


@dataclass(frozen=True)
class FilterRule:
    """Which augmented pairs survive the base RM's confidence p = sigmoid(s_chosen - s_rejected)."""

    causal: str = "band"  # none | uncertain (drop p >= high) | plausible (drop p <= low) | band (both)
    causal_low: float = 0.05
    causal_high: float = 0.95
    neutral: str = "none"  # none | sensitive (drop |p - 0.5| < gap)
    neutral_gap: float = 0.05

    def keeps(self, pair_type: str, prob: float) -> bool:
        if pair_type == "causal":
            if self.causal in ("uncertain", "band") and prob >= self.causal_high:
                return False
            return not (self.causal in ("plausible", "band") and prob <= self.causal_low)
        return self.neutral != "sensitive" or abs(prob - 0.5) >= self.neutral_gap


@dataclass
class Candidate:
    row: int
    type: str
    source: str
    prompt: object
    chosen: object
    rejected: object
    attribute: str | None = None
    tie: bool = False
    prob: float | None = None  # the base RM's p = sigmoid(s_chosen - s_rejected), when a filter scored it

    def as_row(self) -> dict:
        row = {"prompt": self.prompt, "chosen": self.chosen, "rejected": self.rejected}
        row.update(tie=self.tie, crome_type=self.type, crome_source=self.source)
        row.update(attribute=self.attribute, source_row=self.row)
        if self.prob is not None:
            row["base_prob"] = self.prob
        return row


class StageStats:
    """Counts of one stage, in total and per group key (attribute, source)."""

    FIELDS = ("requested", "produced", "not_applicable", "filtered", "kept", "emitted")

    def __init__(self) -> None:
        self.total: Counter = Counter()
        self.groups: dict[str, dict[str, Counter]] = defaultdict(lambda: defaultdict(Counter))

    def add(
        self, what: str, n: int = 1, reason: str | None = None, total: bool = True, **keys: str | None
    ) -> None:
        """Count `n` under `what` (a FIELDS entry or "malformed" with its `reason`) in total (unless
        `total` is False) and for every group key given (e.g. attribute="safety", source="degrade")."""
        name = f"malformed:{reason}" if what == "malformed" else what
        if total:
            self.total[name] += n
        for group, key in keys.items():
            if key is not None:
                self.groups[group][key][name] += n

    @staticmethod
    def _block(counts: Counter) -> dict:
        out = {f: counts.get(f, 0) for f in StageStats.FIELDS}
        bad = {k.split(":", 1)[1]: v for k, v in sorted(counts.items()) if k.startswith("malformed:")}
        out["malformed"] = sum(bad.values())
        if bad:
            out["malformed_by_reason"] = bad
        return out

    def as_dict(self) -> dict:
        out = self._block(self.total)
        for group, keys in self.groups.items():
            out[f"by_{group}"] = {k: self._block(c) for k, c in sorted(keys.items())}
        return out


def like(template, text: str):
    """`text` as a response of the same shape as `template`: a string, or its messages with the last one's
    content replaced."""
    if isinstance(template, str):
        return text
    return [*template[:-1], {**template[-1], "content": text}]


def ask(sampler: Sampler, requests: Sequence[oracle.OracleRequest], chunk: int, desc: str) -> list[str]:
    """The oracle's reply (prefill + sample 0) to every request, `chunk` requests per cached batch."""
    from rewardmodels.cli_common import progress_bar

    replies: list[str] = []
    for start in progress_bar(
        range(0, len(requests), chunk), desc=desc, unit="batch", disable=len(requests) <= chunk
    ):
        part = requests[start : start + chunk]
        samples = sampler.complete_many([(r.messages, 1) for r in part])
        replies += [r.reply(s[0]) for r, s in zip(part, samples, strict=True)]
    return replies


def _rubrics(rows, sampler, settings: CromeSettings, stats: StageStats) -> list[list[str]]:
    requests = [
        oracle.rubric_request(r["prompt"], max_chars=settings.max_context_chars, prefill=settings.prefill)
        for r in rows
    ]
    stats.add("requested", len(requests))
    attributes = []
    for reply in ask(sampler, requests, settings.oracle_batch, "rubrics"):
        try:
            names = oracle.parse_rubric(reply, settings.max_attributes)
            stats.add("produced")
        except oracle.MalformedReply as e:
            stats.add("malformed", reason=e.reason)
            names = list(settings.default_attributes)
            if names:
                stats.add("fallback")
        if names:
            stats.add("kept")  # rows with attributes to target
        for name in names:
            stats.add("kept", total=False, attribute=name)  # prompts whose rubric holds this attribute
        attributes.append(names)
    return attributes


def _oracle_rewrites(
    rows, attributes, sampler, settings: CromeSettings, causal: StageStats, neutral: StageStats
):
    jobs: list[tuple[int, str, str | None]] = []  # (row, kind, attribute)
    for i, names in enumerate(attributes):
        jobs += [(i, d, a) for a in names[: settings.attributes_per_row] for d in settings.directions]
    if settings.oracle_neutral:
        jobs += [(i, "neutral", None) for i in range(len(rows))]
    requests = []
    for i, kind, attribute in jobs:
        answer = rows[i]["rejected" if kind == "upgrade" else "chosen"]
        requests.append(
            oracle.rewrite_request(
                kind, rows[i]["prompt"], answer, attribute,
                max_chars=settings.max_context_chars, prefill=settings.prefill,
            )
        )  # fmt: skip
    out: list[Candidate] = []
    for (i, kind, attribute), reply in zip(
        jobs, ask(sampler, requests, settings.oracle_batch, "rewrites"), strict=True
    ):
        row, stats = rows[i], neutral if kind == "neutral" else causal
        source = "oracle_rewrite" if kind == "neutral" else kind
        stats.add("requested", attribute=attribute, source=source)
        template = row["rejected" if kind == "upgrade" else "chosen"]
        try:
            text = oracle.parse_rewrite(
                reply, text_of(template), keep_numbers=kind == "neutral",
                min_ratio=settings.min_length_ratio, max_ratio=settings.max_length_ratio,
                echoes=oracle.instruction_echoes(kind, attribute),
            )  # fmt: skip
        except oracle.MalformedReply as e:
            stats.add("malformed", reason=e.reason, attribute=attribute, source=source)
            continue
        stats.add("produced", attribute=attribute, source=source)
        rewritten = like(template, text)
        pair = (rewritten, row["rejected"]) if kind == "upgrade" else (row["chosen"], rewritten)
        pair_type = "neutral" if kind == "neutral" else "causal"
        out.append(
            Candidate(i, pair_type, source, row["prompt"], *pair, attribute=attribute, tie=kind == "neutral")
        )
    return out


def _deterministic_neutrals(rows, settings: CromeSettings, stats: StageStats) -> list[Candidate]:
    out: list[Candidate] = []
    for i, row in enumerate(rows):
        for name in settings.transforms:
            for side in settings.transform_sides:
                source = f"transform:{name}"
                stats.add("requested", source=source)
                changed = transform_response(name, row[side])
                if changed is row[side] or text_of(changed) == text_of(row[side]):
                    stats.add("not_applicable", source=source)  # nothing to change, or content at stake
                    continue
                stats.add("produced", source=source)
                out.append(Candidate(i, "neutral", source, row["prompt"], row[side], changed, tie=True))
    if settings.irrelevant_query:
        n = len(rows)
        for i, row in enumerate(rows):
            stats.add("requested", source="irrelevant_query")
            others = [(i + n // 2 + k) % n for k in range(n)]
            j = next(
                (j for j in others if j != i and text_of(rows[j]["prompt"]) != text_of(row["prompt"])), None
            )
            if j is None:
                stats.add("not_applicable", source="irrelevant_query")  # every prompt is this one
                continue
            stats.add("produced", source="irrelevant_query")
            out.append(
                Candidate(
                    i,
                    "neutral",
                    "irrelevant_query",
                    rows[j]["prompt"],
                    row["chosen"],
                    row["rejected"],
                    tie=True,
                )
            )
    return out


def _filter(
    candidates: list[Candidate], margins, rule: FilterRule, stats: dict[str, StageStats]
) -> list[Candidate]:
    if margins is not None and candidates:
        values = margins(candidates)
        for c, m in zip(candidates, values, strict=True):
            c.prob = 0.5 * (1.0 + math.tanh(m / 2))  # sigmoid(m), without overflow for large |m|
    kept = []
    for c in candidates:
        if c.prob is not None and not rule.keeps(c.type, c.prob):
            stats[c.type].add("filtered", attribute=c.attribute, source=c.source)
            continue
        stats[c.type].add("kept", attribute=c.attribute, source=c.source)
        kept.append(c)
    return kept


def _round_robin(candidates: list[Candidate], cap: int | None) -> list[Candidate]:
    by_source: dict[str, list[Candidate]] = defaultdict(list)
    for c in candidates:
        by_source[c.source].append(c)
    queues = list(by_source.values())
    out: list[Candidate] = []
    while queues and (cap is None or len(out) < cap):
        queues = [q for q in queues if q]
        for q in queues:
            if cap is not None and len(out) >= cap:
                break
            out.append(q.pop(0))
    return out


def augment(
    rows: Sequence[dict],
    sampler: Sampler,
    settings: CromeSettings = CromeSettings(),
    margins: Callable[[list[Candidate]], list[float]] | None = None,
    rule: FilterRule = FilterRule(),
) -> tuple[list[dict], dict]:
    """The emitted pairs and the statistics of every stage, for validated preference rows. `margins` gives
    the base RM's s_chosen - s_rejected of each candidate pair (None: no filter)."""
    stats = {name: StageStats() for name in ("rubric", "causal", "neutral")}
    attributes = _rubrics(rows, sampler, settings, stats["rubric"])
    candidates = _oracle_rewrites(rows, attributes, sampler, settings, stats["causal"], stats["neutral"])
    candidates += _deterministic_neutrals(rows, settings, stats["neutral"])
    kept = _filter(candidates, margins, rule, stats)
    originals = [
        Candidate(i, "original", "original", r["prompt"], r["chosen"], r["rejected"], tie=bool(r.get("tie")))
        for i, r in enumerate(rows)
    ]
    emitted: list[Candidate] = []
    for pair_type in PAIR_TYPES:
        pool = originals if pair_type == "original" else [c for c in kept if c.type == pair_type]
        chosen = _round_robin(pool, settings.emit.get(pair_type))
        for c in chosen:
            if pair_type != "original":
                stats[pair_type].add("emitted", attribute=c.attribute, source=c.source)
        emitted += chosen
    emitted.sort(key=lambda c: (c.row, PAIR_TYPES.index(c.type)))
    counts = Counter(c.type for c in emitted)
    summary = {
        "rows": len(rows),
        "emitted": {t: counts.get(t, 0) for t in PAIR_TYPES},
        "stages": {name: s.as_dict() for name, s in stats.items()},
        "oracle": {
            "fingerprint": sampler.generator.fingerprint,
            "generated": sampler.generated,
            "cache_hits": sampler.hits,
        },
    }
    summary["stages"]["rubric"]["fallback"] = stats["rubric"].total.get("fallback", 0)
    return [c.as_row() for c in emitted], summary
