"""Crome causal and neutral augmentations of a preference dataset, with stage statistics (the flags).

The pipeline, its stages and every default's reason are in `rewardmodels.data_builders.crome` and
docs/crome.md. An oracle LLM (the embedded SmolLM2 by default, or an OpenAI-compatible server with
--endpoint) names each prompt's causal attributes and rewrites answers along them; deterministic transforms
and the irrelevant-query construction add ties; a base scorer can filter; every oracle call is cached.

    rewardmodels build crome --input hh_rlhf:../shared/data/hh_rlhf_harmless_base_test.jsonl.gz \\
        --limit 20 --max-new-tokens 96 -o outputs/crome/pairs.jsonl
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from rewardmodels.data_builders import crome_oracle as oracle
from rewardmodels.data_builders.crome import (
    FILTER_MODES,
    PAIR_TYPES,
    Candidate,
    CromeSettings,
    FilterRule,
    augment,
)
from rewardmodels.data_builders.spurious import TRANSFORMS, parse_transform_names
from rewardmodels.errors import InputError
from rewardmodels.sampling import add_sampling_arguments

logger = logging.getLogger("rewardmodels")


def parse_emit(text: str) -> dict[str, int | None]:
    """'original=all,causal=40,neutral=20' -> caps per pair type (None = all); unnamed types: all."""
    caps: dict[str, int | None] = dict.fromkeys(PAIR_TYPES)
    for item in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = item.partition("=")
        if name not in caps or not (value == "all" or value.isdigit()):
            raise InputError(
                None,
                None,
                "--emit",
                f"expected TYPE=N|all with TYPE in {', '.join(PAIR_TYPES)}, got {item!r}",
            )
        caps[name] = None if value == "all" else int(value)
    return caps


def _names(text: str) -> tuple[str, ...]:
    return tuple(n.strip() for n in text.split(",") if n.strip())


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The builder's flags, for `rewardmodels build crome`."""
    parser.add_argument(
        "--input",
        required=True,
        help="Preference data spec: hh_rlhf:PATH, sharegpt:PATH, a canonical file, hf:ID.",
    )
    parser.add_argument("--output", "-o", required=True, help="JSONL of emitted pairs (written atomically).")
    parser.add_argument("--stats", default=None, help="Statistics JSON (default: OUTPUT with .stats.json).")
    parser.add_argument("--limit", type=int, default=None, help="Augment only the first N rows.")
    parser.add_argument(
        "--invalid-rows",
        choices=["error", "drop"],
        default="error",
        help="Stop on bad input rows, or drop and count them.",
    )
    parser.add_argument("--max-attributes", type=int, default=3, help="Rubric attributes kept per prompt.")
    parser.add_argument(
        "--attributes-per-row", type=int, default=2, help="Attributes each row's causal pairs target."
    )
    parser.add_argument(
        "--directions",
        default="degrade,upgrade",
        help="Causal rewrites: degrade (chosen), upgrade (rejected).",
    )
    parser.add_argument(
        "--default-attributes",
        default="",
        help="Comma-separated attributes for rows whose rubric reply is malformed (default: none).",
    )
    parser.add_argument(
        "--no-oracle-neutral", action="store_true", help="Skip the oracle's restyled-answer ties."
    )
    parser.add_argument(
        "--transforms",
        default="all",
        help=f"Deterministic tie transforms ({', '.join(TRANSFORMS)}), or 'none'.",
    )
    parser.add_argument(
        "--transform-sides",
        default="chosen",
        help="Which answers the transforms rewrite: chosen, rejected or both.",
    )
    parser.add_argument("--no-irrelevant-query", action="store_true", help="Skip the irrelevant-query ties.")
    parser.add_argument(
        "--no-prefill",
        action="store_true",
        help="Do not start the oracle's JSON reply (for servers that cannot continue a message).",
    )
    parser.add_argument(
        "--max-context-chars",
        type=int,
        default=2000,
        help="Characters of the conversation shown to the oracle (its end).",
    )
    parser.add_argument("--oracle-batch", type=int, default=16, help="Oracle requests per cached batch.")
    parser.add_argument(
        "--emit",
        default="original=all,causal=all,neutral=all",
        help="At most N pairs of each type: original=N|all,causal=..,neutral=..",
    )
    group = parser.add_argument_group(
        "filter", "Drop augmentations by the base RM's confidence p = sigmoid(s_chosen - s_rejected)."
    )
    group.add_argument("--filter-scorer", default=None, help="Base scorer directory (no filter without it).")
    group.add_argument(
        "--filter-causal",
        choices=FILTER_MODES["causal"],
        default="band",
        help="uncertain: drop p >= high; plausible: drop p <= low; band: both.",
    )
    group.add_argument(
        "--causal-low", type=float, default=0.05, help="Lower confidence bound for causal pairs."
    )
    group.add_argument(
        "--causal-high", type=float, default=0.95, help="Upper confidence bound for causal pairs."
    )
    group.add_argument(
        "--filter-neutral",
        choices=FILTER_MODES["neutral"],
        default="none",
        help="sensitive: drop ties with |p - 0.5| < gap.",
    )
    group.add_argument("--neutral-gap", type=float, default=0.05, help="Gap for --filter-neutral sensitive.")
    group.add_argument(
        "--filter-device", default=None, help="Device for the base scorer (default: cuda when available)."
    )
    group.add_argument(
        "--filter-batch-size", type=int, default=None, help="Sequences per forward of the base scorer."
    )
    add_sampling_arguments(
        parser, "Tokens per oracle reply (rubrics are short; rewrites need the answer's length)."
    )


def settings_from(args: argparse.Namespace) -> tuple[CromeSettings, FilterRule]:
    directions = _names(args.directions)
    if any(d not in oracle.DIRECTIONS for d in directions):
        raise InputError(
            None,
            None,
            "--directions",
            f"expected a subset of {', '.join(oracle.DIRECTIONS)}, got {args.directions!r}",
        )
    sides = ("chosen", "rejected") if args.transform_sides == "both" else _names(args.transform_sides)
    if not sides or any(s not in ("chosen", "rejected") for s in sides):
        raise InputError(
            None,
            None,
            "--transform-sides",
            f"expected chosen, rejected or both, got {args.transform_sides!r}",
        )
    try:
        transforms = () if args.transforms == "none" else tuple(parse_transform_names(args.transforms))
    except ValueError as e:
        raise InputError(None, None, "--transforms", str(e)) from None
    settings = CromeSettings(
        max_attributes=args.max_attributes,
        attributes_per_row=args.attributes_per_row,
        directions=directions,
        oracle_neutral=not args.no_oracle_neutral,
        transforms=transforms,
        transform_sides=sides,
        irrelevant_query=not args.no_irrelevant_query,
        default_attributes=tuple(map(oracle.normalise_attribute, _names(args.default_attributes))),
        prefill=not args.no_prefill,
        max_context_chars=args.max_context_chars,
        oracle_batch=args.oracle_batch,
        emit=parse_emit(args.emit),
    )
    rule = FilterRule(
        args.filter_causal, args.causal_low, args.causal_high, args.filter_neutral, args.neutral_gap
    )
    return settings, rule


def scorer_margins(
    path: str, device: str | None, batch_size: int | None
) -> Callable[[list[Candidate]], list[float]]:
    """s_chosen - s_rejected of each candidate under the scorer at `path`, loaded on first use; scored as
    groups through `rewardmodels.scorers.groups`, whatever the scorer kind."""

    def margins(candidates: list[Candidate]) -> list[float]:
        from rewardmodels.scorers import load_scorer
        from rewardmodels.scorers.groups import default_batch_size, score_response_groups

        scorer = load_scorer(path, device=device)
        groups = [[c.chosen, c.rejected] for c in candidates]
        size = batch_size or default_batch_size(scorer)
        scores = score_response_groups(scorer, [c.prompt for c in candidates], groups, size)
        return [a - b for a, b in scores]

    return margins


def run(args: argparse.Namespace) -> int:
    from rewardmodels.cli_common import setup_logging
    from rewardmodels.data_builders.schema import preference_row_errors, validate_rows
    from rewardmodels.data_builders.sources import load_rows
    from rewardmodels.io import write_json, write_jsonl
    from rewardmodels.sampling import open_sampler

    setup_logging()
    settings, rule = settings_from(args)
    rows, report = load_rows(
        args.input, "preference", drop_invalid=args.invalid_rows == "drop", max_rows=args.limit
    )
    logger.info("crome input %s: %s", args.input, report)
    margins = (
        scorer_margins(args.filter_scorer, args.filter_device, args.filter_batch_size)
        if args.filter_scorer
        else None
    )
    sampler = open_sampler(args)
    try:
        pairs, stats = augment(rows, sampler, settings, margins, rule)
    finally:
        sampler.cache.close()
    # Every emitted pair is valid by construction (rewrites differ from what they rewrite, inputs were
    # validated); checking again turns a bug into an error rather than a bad training file.
    validate_rows(pairs, preference_row_errors, source="crome pairs")
    stats.update(input=args.input, input_rows=str(report))
    stats["settings"] = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(settings).items()}
    stats["filter"] = {"scorer": args.filter_scorer, **asdict(rule)} if args.filter_scorer else None
    stats_path = Path(args.stats) if args.stats else Path(args.output).with_suffix(".stats.json")
    n = write_jsonl(args.output, pairs)
    write_json(stats_path, stats)
    print(summary_text(stats))
    print(f"wrote {n} pairs to {args.output}, statistics to {stats_path}")
    return 0


def summary_text(stats: dict) -> str:
    """One line per stage: requested, produced, malformed (by reason), filtered, kept, emitted."""
    lines = [f"crome: {stats['rows']} rows -> emitted {stats['emitted']}"]
    for name, s in stats["stages"].items():
        reasons = ", ".join(f"{k}: {v}" for k, v in s.get("malformed_by_reason", {}).items())
        lines.append(
            f"  {name:<8} requested {s['requested']}, produced {s['produced']}, malformed {s['malformed']}"
            + (f" ({reasons})" if reasons else "")
            + (f", not applicable {s['not_applicable']}" if s["not_applicable"] else "")
            + f", filtered {s['filtered']}, kept {s['kept']}, emitted {s['emitted']}"
        )
    o = stats["oracle"]
    lines.append(
        f"  oracle {o['fingerprint']}: {o['generated']} replies generated, {o['cache_hits']} from the cache"
    )
    return "\n".join(lines)
