"""`rewardmodels build <builder>`: convert a raw source into validated canonical rows (JSONL, written atomically).

Every raw builder in rewardmodels.data_builders.sources.RAW_BUILDERS gets its own entry, plus `synthetic`
(the embedded default task), `generic` (files or Hub datasets with column mapping), and the generators that
sample a model: `mc-labels` (Monte Carlo step labels, data_builders/mc_labeller.py).
"""

from __future__ import annotations

import argparse
import json

from rewardmodels.cli_common import ArgumentParser, progress_bars
from rewardmodels.data_builders import crome_cli, mc_labeller, outcome, verification_cots
from rewardmodels.data_builders.sources import RAW_BUILDERS, SYNTHETIC_ROWS, load_rows
from rewardmodels.io import write_jsonl

# Builders that generate with a model: name -> module with add_arguments(parser) and run(args), so each
# subcommand's flags are the module's own, defined once.
GENERATORS = {
    "mc-labels": mc_labeller,
    "crome": crome_cli,
    "outcome-samples": outcome,
    "verification-cots": verification_cots,
}


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--output", "-o", required=True, help="JSONL file to write (atomically).")
    p.add_argument(
        "--invalid-rows",
        choices=["error", "drop"],
        default="error",
        help="Stop on the first bad rows, or drop and count them.",
    )
    p.add_argument("--max-rows", type=int, default=None, help="Keep at most this many rows.")


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="rewardmodels build", description=__doc__)
    sub = parser.add_subparsers(
        dest="builder", required=True, metavar="BUILDER", help="What to build (each has its own --help)."
    )
    for name, (schema, build) in RAW_BUILDERS.items():
        doc = (build.__doc__ or "").strip().splitlines()[0] if build.__doc__ else ""
        p = sub.add_parser(name.replace("_", "-"), help=f"{doc} -> {schema} rows", description=doc)
        p.add_argument("input", help="Path to the raw source file.")
        p.set_defaults(spec_prefix=name, schema=schema)
        _common(p)
    p = sub.add_parser("synthetic", help="The embedded default task (seeded arithmetic with known slips).")
    p.add_argument(
        "--schema", choices=sorted(SYNTHETIC_ROWS), default="preference", help="Which rows to generate."
    )
    p.add_argument("--n", type=int, default=2000, help="Number of rows.")
    p.add_argument(
        "--seed", type=int, default=0, help="Seed; different seeds give disjoint draws for held-out sets."
    )
    _common(p)
    p = sub.add_parser(
        "generic", help="Canonical rows from .jsonl/.json/.parquet, a save_to_disk dir or hf:ID[:SPLIT]."
    )
    p.add_argument("input", help="File, directory, or hf:DATASET_ID[:SPLIT].")
    p.add_argument("--schema", default="preference", help="Row schema to validate against.")
    p.add_argument(
        "--column-map",
        default=None,
        help='JSON object renaming source columns, e.g. \'{"question": "prompt"}\'.',
    )
    _common(p)
    for name, module in GENERATORS.items():
        summary = module.__doc__.strip().splitlines()[0]
        p = sub.add_parser(name, help=summary, description=module.__doc__)
        module.add_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.builder in GENERATORS:
        with progress_bars(not args.no_progress):  # every generator takes the sampling flags
            return GENERATORS[args.builder].run(args)
    column_map = json.loads(args.column_map) if getattr(args, "column_map", None) else None
    if args.builder == "synthetic":
        spec, schema = f"synthetic:n={args.n},seed={args.seed}", args.schema
    elif args.builder == "generic":
        spec, schema = args.input, args.schema
    else:
        spec, schema = f"{args.spec_prefix}:{args.input}", args.schema
    rows, report = load_rows(
        spec, schema, column_map, drop_invalid=args.invalid_rows == "drop", max_rows=args.max_rows
    )
    n = write_jsonl(args.output, rows)
    print(f"{args.builder}: {report}; wrote {n} {schema} rows to {args.output}")
    return 0
